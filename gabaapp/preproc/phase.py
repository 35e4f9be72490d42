"""Zero-order phasing on the Cr/NAA singlets, and frequency referencing.

A singlet exp(i phi) * L(f) has the phase phi at its maximum |S|, so the zero-order phase is
the angle of the sum of the complex spectrum values at the NAA (2.01 ppm) and Cr (3.015 ppm)
maxima of edit-OFF (the stronger peak weighs more). Frequency referencing reuses
`features.b0_shift_hz`, so the written spectra are referenced exactly as the network input.
"""

from __future__ import annotations

import numpy as np

from gabaapp.constants import CR_PPM, NAA_PPM
from gabaapp.preproc.features import b0_shift_hz
from gabaapp.spectra import Acquisition, fid_to_spectrum

ZERO_FILL = 4
PEAK_HALF_WIDTH_PPM = 0.1


def zero_filled_spectrum(fid: np.ndarray, acquisition: Acquisition, factor: int = ZERO_FILL):
    """Return (ppm [m], spectrum [..., m]) of `fid` zero-filled to factor * n_points."""
    n = fid.shape[-1] * factor
    pad = [(0, 0)] * (fid.ndim - 1) + [(0, n - fid.shape[-1])]
    spec = fid_to_spectrum(np.pad(fid, pad))
    hz = np.fft.fftshift(np.fft.fftfreq(n, acquisition.dwell_s))
    return acquisition.centre_ppm + hz / acquisition.f0_mhz, spec


def zero_order_phase(
    fid: np.ndarray, acquisition: Acquisition, peaks_ppm: tuple[float, ...] = (NAA_PPM, CR_PPM)
) -> float:
    """Return phi (rad) such that fid * exp(-1j phi) has its NAA/Cr singlets in absorption."""
    ppm, spec = zero_filled_spectrum(fid, acquisition)
    total = 0j
    for p in peaks_ppm:
        band = np.nonzero(np.abs(ppm - p) <= PEAK_HALF_WIDTH_PPM)[0]
        if len(band):
            total += spec[band[np.argmax(np.abs(spec[band]))]]
    return float(np.angle(total)) if abs(total) > 0 else 0.0


def reference_shift_hz(off_fid: np.ndarray, acquisition: Acquisition) -> float:
    """Return the shift (Hz) that puts the stronger of NAA/Cr of `off_fid` on its reference."""
    return float(b0_shift_hz(off_fid[None], acquisition)[0])
