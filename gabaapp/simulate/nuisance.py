"""Non-metabolite signals of synthetic spectra as sets of model lines: macromolecules (MM),
smooth baseline and residual water.

Each function returns line parameters [n, K] (ppm, Lorentzian FWHM Hz, Gaussian FWHM Hz, phase
rad, height); `gabaapp.simulate.lines.line_fids` turns them into FIDs. Heights are relative to
the NAA singlet peak of the spectrum (the generator scales them), so 0.3 means 30 % of NAA.
"""

from __future__ import annotations

import math

import torch

# Macromolecule resonances visible at 3 T (ppm, Gaussian FWHM Hz, height relative to MM 0.9).
# Positions after Behar et al., MRM 32:294 (1994) and the MM consensus of Cudalbu et al.,
# NMR Biomed 34:e4393 (2021); heights and widths are rough TE-68 values chosen by us.
MM_LINES: tuple[tuple[float, float, float], ...] = (
    (0.93, 15.0, 1.00),
    (1.21, 20.0, 0.55),
    (1.43, 20.0, 0.35),
    (1.67, 18.0, 0.25),
    (2.01, 20.0, 0.40),
    (2.26, 25.0, 0.30),
    (2.99, 18.0, 0.25),
    (3.21, 20.0, 0.15),
    (3.91, 25.0, 0.25),
)
MM_MIN_FWHM_HZ = min(line[1] for line in MM_LINES)
# The co-edited MM: edit-ON at 1.9 ppm also hits the MM at ~1.7 ppm that is J-coupled to the MM
# at 3.0 ppm, so DIFF shows an MM peak under GABA at 3.0 ppm ("GABA+": Edden et al., MRM 68:657
# (2012); Mullins et al., NeuroImage 86:43 (2014)). Modelled as an extra ON line.
MM_COEDITED_PPM = 3.00
MM_COEDITED_FWHM_HZ = 18.0
# The co-edited MM is the same macromolecule pool as the MM lines visible in edit-OFF (Edden et
# al. 2012; Cudalbu et al. 2021), so its height scales with the MM amplitude: the sampled
# co-edited fraction is its share of the GABA+ peak at this in vivo MM level (0.9 ppm MM line
# height relative to NAA; the centre of the in vivo range of `simulate.bids_dataset`, 0.15-0.35).
# MM-free spectra (mm_amplitude 0: phantoms, the paper's data) then have no co-edited MM.
MM_INVIVO_AMPLITUDE = 0.25

# Smooth baseline: a few very broad lines (0.5-1.5 ppm at 3 T) anywhere in 0-5 ppm.
BASELINE_COMPONENTS = 4
BASELINE_PPM = (0.0, 5.0)
BASELINE_FWHM_HZ = (60.0, 180.0)

Lines = dict[str, torch.Tensor]


def mm_lines(height: torch.Tensor, phase_rad: float) -> Lines:
    """Return the MM lines of every spectrum: MM_LINES with the 0.9 ppm line at `height` [n].

    `phase_rad` is the absorptive phase of the basis, so MM peaks look like metabolite peaks.
    """
    n = height.shape[0]
    table = torch.tensor(MM_LINES, device=height.device, dtype=height.dtype)
    ppm = table[:, 0].expand(n, -1)
    return {
        "ppm": ppm,
        "lorentz_hz": torch.zeros_like(ppm),
        "gauss_hz": table[:, 1].expand(n, -1),
        "phase_rad": torch.full_like(ppm, phase_rad),
        "height": table[:, 2] * height.unsqueeze(-1),
    }


def mm_coedited_line(height: torch.Tensor, phase_rad: float) -> Lines:
    """Return the co-edited 3.0 ppm MM line (added to edit-ON only) of `height` [n]."""
    col = height.unsqueeze(-1)
    return {
        "ppm": torch.full_like(col, MM_COEDITED_PPM),
        "lorentz_hz": torch.zeros_like(col),
        "gauss_hz": torch.full_like(col, MM_COEDITED_FWHM_HZ),
        "phase_rad": torch.full_like(col, phase_rad),
        "height": col,
    }


def baseline_lines(height: torch.Tensor, generator: torch.Generator) -> Lines:
    """Return BASELINE_COMPONENTS broad Gaussian lines per spectrum making a smooth baseline.

    Each line has a random position in BASELINE_PPM, FWHM in BASELINE_FWHM_HZ, random phase and
    a height in [0.25, 1] x `height` [n] (like lipid/MM tails and water-suppression residue).
    `generator` must live on height's device.
    """
    n, k = height.shape[0], BASELINE_COMPONENTS
    dev, dt = height.device, height.dtype

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand((n, k), generator=generator, device=dev, dtype=dt)

    ppm = u(*BASELINE_PPM)
    return {
        "ppm": ppm,
        "lorentz_hz": torch.zeros_like(ppm),
        "gauss_hz": u(*BASELINE_FWHM_HZ),
        "phase_rad": u(-math.pi, math.pi),
        "height": u(0.25, 1.0) * height.unsqueeze(-1),
    }


def water_line(
    height: torch.Tensor, ppm: torch.Tensor, lorentz_hz: torch.Tensor, phase_rad: torch.Tensor
) -> Lines:
    """Return one residual-water Lorentzian line per spectrum (all parameters [n])."""
    col = lambda x: x.unsqueeze(-1)  # noqa: E731
    return {
        "ppm": col(ppm),
        "lorentz_hz": col(lorentz_hz),
        "gauss_hz": torch.zeros_like(col(ppm)),
        "phase_rad": col(phase_rad),
        "height": col(height),
    }


def concat_lines(*parts: Lines) -> Lines:
    """Return the lines of all `parts` side by side ([n, K1 + K2 + ...])."""
    return {key: torch.cat([p[key] for p in parts], dim=1) for key in parts[0]}
