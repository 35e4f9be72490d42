"""Physical constants and fixed conventions shared by every layer (no side effects on import)."""

# Quantified metabolites, always in this (alphabetical) order: model outputs, targets, tables.
METABOLITES: tuple[str, ...] = ("Cr", "GABA", "Gln", "Glu", "NAA")

# Proton gyromagnetic ratio / 2 pi, MHz per tesla (CODATA 2018).
GAMMA_1H_MHZ_PER_T = 42.577478518

# Reference chemical shifts (ppm) used for B0 alignment (paper-notes §2.3).
NAA_PPM = 2.01
CR_PPM = 3.015
# Water resonance at body temperature: centre of the ppm axis of an on-resonance acquisition.
WATER_PPM = 4.65

# Edit frequencies of the paper's simulation (paper-notes §2.1).
EDIT_ON_PPM = 1.90
EDIT_OFF_PPM = 7.50

# The network input grid (DESIGN.md "Network input").
GRID_PPM_LOW = 1.0
GRID_PPM_HIGH = 4.5
GRID_POINTS = 2048
# Row order of the network input.
GRID_ROWS: tuple[str, ...] = ("OFF-imag", "OFF-real", "ON-imag", "ON-real")

# NIfTI-MRS dimension tags (NIfTI-MRS standard v0.x).
DIM_COIL = "DIM_COIL"
DIM_DYN = "DIM_DYN"
DIM_EDIT = "DIM_EDIT"
DIM_TIME = "time"
