"""Gaussian macromolecule (MM) components for the linear-combination fit.

MEGA-PRESS literature models MM as broad Gaussians: the 0.9 and 1.7 ppm MM in the edit-OFF
spectrum, and the 3.0 ppm MM that the 1.9 ppm editing pulse co-edits (through its coupling to
the 1.7 ppm resonance), which is why a DIFF fit without MM reports "GABA+" (GABA + MM):
Mullins et al., NeuroImage 86:43 (2014); Edden et al., JMRI 40:1445 (2014) (Gannet).
Short-TE single spectra (PRESS) also get the 1.2, 1.4 and 2.0 ppm MM lines that LCModel models
as Gaussians (Provencher, LCModel manual; Seeger et al., MRM 49:19, 2003), and the 2.26 ppm and
3.8-4.0 ppm macromolecule resonances that the metabolite-nulled human brain spectrum shows
(Behar et al., MRM 32:294, 1994; Hofmann et al., MRM 48:440, 2002); on the real 3 T PRESS
spectra of tests/unit/test_lcm_realdata.py they lower the residual SD by 2-7 %.

SHORT_TE_COMPONENTS is the macromolecule and lipid set that LCModel simulates by default for
short-TE brain spectra, with the positions, widths, relative areas of composite lines and the
prior SDs of the shifts tabulated in the LCModel manual (Provencher, "LCModel & LCMgui
User's Manual", Sec. 11.7): MM09, MM12, MM14, MM17, MM20 (2.08 ppm with lines at 2.25, 1.95
and 3.0 ppm in fixed ratios), Lip09, Lip13a-d (a broad and three narrow 1.3 ppm lines) and
Lip20 (2.04 ppm with 2.25 and 2.8 ppm). The widths are the manual's minimum FWHM; the
fit's common Voigt broadening (a few Hz) adds to every column, as LCModel broadens them
further. MM39 (3.9 ppm, Behar et al. 1994) is kept from the set above: LCModel's set stops
at 3.0 ppm, the measured MM spectrum does not. On the real spectra this set fits no better
than the Gaussian set (docs/lcm.md), so it is an option (LcmConfig.mm_set), not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gabaapp.spectra import Acquisition


@dataclass(frozen=True)
class MMComponent:
    """One MM/lipid component: name, main Gaussian line (centre, FWHM in ppm), sub-spectra it
    appears in, the prior SD of its individual shift (used where the fit gives components
    their own shifts) and further Gaussian lines (ppm, FWHM ppm, area relative to the main
    line) fixed to it, as in LCModel's composite MM20 and Lip20."""

    name: str
    ppm: float
    fwhm_ppm: float
    groups: tuple[str, ...]  # "off" (edit-OFF), "diff" (edited difference), "single" (PRESS)
    shift_sd_ppm: float = 0.02  # LCModel's MM/lipid shift SDs span 0.005-0.03 ppm
    satellites: tuple[tuple[float, float, float], ...] = ()

    def fid(self, acq: Acquisition) -> np.ndarray:
        """Return the component's FID [N]: main line of unit area plus its satellites."""
        out = gaussian_fid(acq, self.ppm, self.fwhm_ppm)
        for ppm, fwhm, rel in self.satellites:
            out = out + rel * gaussian_fid(acq, ppm, fwhm)
        return out

    def span_ppm(self) -> tuple[float, float]:
        """Return (lowest, highest) ppm of its lines, each widened by its FWHM."""
        lines = [(self.ppm, self.fwhm_ppm)] + [(p, w) for p, w, _ in self.satellites]
        return min(p - w for p, w in lines), max(p + w for p, w in lines)


MM_COMPONENTS: tuple[MMComponent, ...] = (
    MMComponent("MM09", 0.90, 0.10, ("off", "single")),
    MMComponent("MM12", 1.21, 0.15, ("single",)),
    MMComponent("MM14", 1.43, 0.17, ("single",)),
    MMComponent("MM17", 1.70, 0.15, ("off", "single")),
    MMComponent("MM20", 2.08, 0.15, ("single",)),
    MMComponent("MM22", 2.26, 0.15, ("single",)),
    MMComponent("MM30", 3.00, 0.15, ("diff", "single")),
    MMComponent("MM39", 3.90, 0.20, ("single",)),
)

_S = ("single",)
# LCModel manual, Sec. 11.7 (default simulated MM and lipids): centre ppm, minimum FWHM ppm,
# shift prior SD ppm; composite lines as (ppm, FWHM, area relative to the main line).
SHORT_TE_COMPONENTS: tuple[MMComponent, ...] = (
    MMComponent("MM09", 0.91, 0.14, _S, 0.02),
    MMComponent("MM12", 1.21, 0.15, _S, 0.01),
    MMComponent("MM14", 1.43, 0.17, _S, 0.02),
    MMComponent("MM17", 1.67, 0.15, _S, 0.03),
    MMComponent(
        "MM20",
        2.08,
        0.15,
        _S,
        0.005,
        ((2.25, 0.20, 0.33 / 1.33), (1.95, 0.15, 0.33 / 1.33), (3.0, 0.20, 0.40 / 1.33)),
    ),
    MMComponent("Lip09", 0.89, 0.14, _S, 0.02),
    MMComponent("Lip13a", 1.28, 0.15, _S, 0.01),
    MMComponent("Lip13b", 1.28, 0.089, _S, 0.01),
    MMComponent("Lip13c", 1.30, 0.089, _S, 0.01),
    MMComponent("Lip13d", 1.26, 0.089, _S, 0.01),
    MMComponent(
        "Lip20", 2.04, 0.15, _S, 0.005, ((2.25, 0.15, 0.67 / 1.33), (2.8, 0.20, 0.87 / 1.33))
    ),
    MMComponent("MM39", 3.90, 0.20, _S, 0.02),
)


def gaussian_fid(acq: Acquisition, ppm: float, fwhm_ppm: float) -> np.ndarray:
    """Return the FID of a unit-area Gaussian line at `ppm` with FWHM `fwhm_ppm`, shape [N].

    A Gaussian of FWHM w Hz in frequency decays as exp(-(pi w t)^2 / (4 ln 2)) in time.
    """
    t_s = acq.time_axis()
    hz = (ppm - acq.centre_ppm) * acq.f0_mhz
    w_hz = fwhm_ppm * acq.f0_mhz
    return np.exp(2j * np.pi * hz * t_s - (np.pi * w_hz * t_s) ** 2 / (4 * math.log(2)))
