"""Noise standard deviation of a spectrum from signal-free ppm ranges."""

from __future__ import annotations

import numpy as np

from gabaapp.spectra import Acquisition, fid_to_spectrum

MIN_NOISE_POINTS = 32
_EDGE_FRACTION = 0.03  # skip spectrum edges, where anti-alias filters attenuate the noise


def noise_sd(
    fid: np.ndarray, acq: Acquisition, ppm_ranges: tuple[tuple[float, float], ...]
) -> float | None:
    """Return the SD of the real (= imaginary) part of the spectrum noise, or None.

    Each range is detrended with a quadratic (residual water tails, broad baselines) before
    pooling the real and imaginary parts. Ranges are clipped to the spectral width minus its
    outer 3 %. Returns None when fewer than MIN_NOISE_POINTS points remain.
    """
    spec = fid_to_spectrum(np.asarray(fid))
    ppm = acq.ppm_axis()
    n_edge = int(_EDGE_FRACTION * ppm.size)
    inner = np.zeros(ppm.size, bool)
    inner[n_edge : ppm.size - n_edge] = True
    pieces = []
    for lo, hi in ppm_ranges:
        sel = inner & (ppm >= lo) & (ppm <= hi)
        if sel.sum() < 8:
            continue
        x = ppm[sel] - ppm[sel].mean()
        for part in (spec[sel].real, spec[sel].imag):
            coef = np.polyfit(x, part, 2)
            pieces.append(part - np.polyval(coef, x))
    if not pieces or sum(p.size for p in pieces) < 2 * MIN_NOISE_POINTS:
        return None
    # ddof 3 per detrended piece (quadratic), pooled
    res = np.concatenate(pieces)
    dof = res.size - 3 * len(pieces)
    return float(np.sqrt(np.sum(res**2) / dof))
