"""Smooth baseline: cubic B-splines with a second-difference penalty (P-splines).

Eilers & Marx, Stat. Sci. 11:89 (1996); LCModel uses the same idea of a regularised spline
baseline with knots about 0.15 ppm apart (Provencher, MRM 30:672, 1993).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

_DEGREE = 3


def spline_design(
    ppm: np.ndarray, ppm_range: tuple[float, float], spacing_ppm: float
) -> np.ndarray:
    """Return the cubic B-spline design matrix [n_points, n_splines] on `ppm`.

    Knots are uniform over `ppm_range` with a spacing close to `spacing_ppm` and extend three
    intervals beyond each end, so every point inside the range sees four full splines.
    """
    lo, hi = ppm_range
    n_int = max(1, round((hi - lo) / spacing_ppm))
    step = (hi - lo) / n_int
    knots = lo + step * np.arange(-_DEGREE, n_int + _DEGREE + 1)
    x = np.clip(np.asarray(ppm, dtype=float), lo, hi)
    return BSpline.design_matrix(x, knots, _DEGREE).toarray()


def second_difference(n: int) -> np.ndarray:
    """Return the [n - 2, n] matrix of second differences of n coefficients."""
    return np.diff(np.eye(n), n=2, axis=0)
