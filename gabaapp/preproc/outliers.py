"""Rejection of corrupted transients by their deviation from the median spectrum.

After alignment, each transient's deviation is the RMS of |S_n - median_n S| over the
1.8-4.2 ppm band (the metabolite region, as in Gannet and Osprey: Edden et al. 2014, JMRI
40:1445; Oeltzschner et al. 2020, J Neurosci Methods 343:108827). A transient is rejected
when its robust z-score, (d - median d) / (1.4826 MAD d), exceeds a threshold (default 3).
Arrays: [n_transients, n_points], time last.
"""

from __future__ import annotations

import numpy as np

from gabaapp.spectra import Acquisition, fid_to_spectrum

# Fewer transients than this: no rejection (median and MAD are meaningless).
MIN_TRANSIENTS = 4
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its SD


def deviation_from_median(
    fids: np.ndarray,
    acquisition: Acquisition,
    ppm_range: tuple[float, float] = (1.8, 4.2),
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Return d [N]: RMS over ppm_range of |S_n - median S| (median over valid transients).

    Invalid transients get NaN.
    """
    n = fids.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    ppm = acquisition.ppm_axis()
    band = (ppm >= ppm_range[0]) & (ppm <= ppm_range[1])
    spec = fid_to_spectrum(fids[valid])[:, band]
    med = np.median(spec.real, axis=0) + 1j * np.median(spec.imag, axis=0)
    d = np.full(n, np.nan)
    d[valid] = np.sqrt(np.mean(np.abs(spec - med) ** 2, axis=-1))
    return d


def robust_z(metric: np.ndarray) -> np.ndarray:
    """Return (metric - median) / (1.4826 MAD) over the finite values (NaN stays NaN).

    Zeros when there are fewer than MIN_TRANSIENTS finite values or the MAD is zero.
    """
    metric = np.asarray(metric, float)
    finite = np.isfinite(metric)
    z = np.where(finite, 0.0, np.nan)
    m = metric[finite]
    if len(m) < MIN_TRANSIENTS:
        return z
    med = np.median(m)
    mad = np.median(np.abs(m - med))
    if mad == 0:
        return z
    z[finite] = (m - med) / (MAD_TO_SD * mad)
    return z


def find_outliers(metric: np.ndarray, z: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (rejected [N] bool, robust z-scores [N]): z-score of `metric` above `z`.

    NaN entries (invalid transients) are not flagged here; the caller tracks them.
    """
    scores = robust_z(metric)
    with np.errstate(invalid="ignore"):
        rejected = np.isfinite(scores) & (scores > z)
    return rejected, scores
