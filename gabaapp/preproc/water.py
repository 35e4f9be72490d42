"""Residual water removal by HLSVD (Hankel-Lanczos singular value decomposition).

The FID is modelled as a sum of K exponentially damped complex sinusoids; their poles come
from the shift invariance of the dominant left singular vectors of the Hankel data matrix
(Kung et al. 1983; Barkhuijsen et al. 1987, J Magn Reson 73:553; Pijnappel et al. 1992,
J Magn Reson 97:122; HLSVD-PRO: Laudadio et al. 2002, J Magn Reson 157:292) and their complex
amplitudes from a least-squares fit. Components whose frequency falls in the water band
(default 4.2-5.2 ppm) are subtracted; everything else is left untouched.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from gabaapp.spectra import Acquisition

logger = logging.getLogger(__name__)

# Points of the FID used to build the Hankel matrix (the SVD costs O(n^3)).
HLSVD_POINTS = 512


def hlsvd(
    fid: np.ndarray, dwell_s: float, rank: int = 25, n_fit: int = HLSVD_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (freq_hz [K], damping_per_s [K], amplitude [K]) of a K-component model of `fid`.

    Component k contributes amplitude_k * exp((-damping_k + 2j pi freq_k) t); K <= rank.
    """
    with threadpool_limits(1, user_api="blas"):  # small matrices: BLAS threads only contend
        return _hlsvd(fid, dwell_s, rank, n_fit)


def _hlsvd(fid, dwell_s, rank, n_fit):
    m = int(min(len(fid), n_fit))
    rows = m // 2
    hankel = scipy.linalg.hankel(fid[:rows], fid[rows - 1 : m])
    u, _, _ = scipy.linalg.svd(hankel, full_matrices=False, lapack_driver="gesdd")
    uk = u[:, : min(rank, u.shape[1] - 1)]
    shift_op = np.linalg.lstsq(uk[:-1], uk[1:], rcond=None)[0]
    poles = np.linalg.eigvals(shift_op)
    poles = poles[np.abs(poles) > 0]
    k = np.arange(m)[:, None]
    vander = np.exp(k * np.log(poles)[None, :])
    amplitude = np.linalg.lstsq(vander, fid[:m], rcond=None)[0]
    freq_hz = np.angle(poles) / (2 * np.pi * dwell_s)
    damping = -np.log(np.abs(poles)) / dwell_s
    return freq_hz, damping, amplitude


def water_model(
    fid: np.ndarray,
    acquisition: Acquisition,
    ppm_range: tuple[float, float] = (4.2, 5.2),
    rank: int = 25,
) -> np.ndarray:
    """Return the HLSVD model [n_points] of the components of `fid` in ppm_range."""
    freq, damping, amp = hlsvd(fid, acquisition.dwell_s, rank)
    ppm = acquisition.centre_ppm + freq / acquisition.f0_mhz
    sel = (ppm >= ppm_range[0]) & (ppm <= ppm_range[1])
    t = acquisition.time_axis()[: fid.shape[-1]]
    # A growing component (damping < 0) is a poor fit of noise: keep it on the fitted span only.
    m = min(len(fid), HLSVD_POINTS)
    model = np.zeros(fid.shape[-1], dtype=complex)
    for f, d, a in zip(freq[sel], damping[sel], amp[sel], strict=True):
        comp = a * np.exp((-d + 2j * np.pi * f) * t)
        if d < 0:
            comp[m:] = 0
        model += comp
    return model


def remove_residual_water(
    fid: np.ndarray,
    acquisition: Acquisition,
    ppm_range: tuple[float, float] = (4.2, 5.2),
    rank: int = 25,
) -> np.ndarray:
    """Return `fid` [..., n_points] minus its HLSVD components in ppm_range (each FID alone)."""
    flat = fid.reshape(-1, fid.shape[-1])
    out = np.stack([x - water_model(x, acquisition, ppm_range, rank) for x in flat])
    return out.reshape(fid.shape)
