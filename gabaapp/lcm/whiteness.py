"""Is a fit residual white? Autocorrelation and the Ljung-Box test on a complex spectrum.

A residual SD at the noise SD is necessary for a noise-like residual but not sufficient: a
few narrow structures (a missing line, a misplaced one, an echo's ripple) can hide in a
ratio near 1 while adjacent points are correlated. White noise of a spectrum is
uncorrelated from point to point (an FID of independent samples, no zero-filling; the
signal-free ranges of the real spectra of docs/lcm.md show lag-1 autocorrelations of
-0.1 to +0.03 after local detrending).

For a complex residual x of n points the autocorrelation at lag k is
rho_k = sum(conj(x_t) x_{t+k}) / sum(|x_t|^2) (mean removed), unchanged by a constant
phase. For circular complex white noise sqrt(n) rho_k is asymptotically complex Gaussian
with E|.|^2 = 1, so n |rho_k|^2 is exponential (chi-square with 2 degrees of freedom, / 2).
The Ljung-Box statistic (Ljung & Box, Biometrika 65:297, 1978)
Q = n (n + 2) sum_{k=1..m} |rho_k|^2 / (n - k) then has 2Q ~ chi-square(2m).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

# Lags tested: ~0.1 ppm at 3 T with 1-2k points over the spectral width, the width of the
# misfit structures seen on the real spectra (a line, a shift error, an echo's ripple)
WHITENESS_LAGS = 10


def autocorrelation(x: np.ndarray, lags: int) -> np.ndarray:
    """Return the complex autocorrelation rho_1..rho_lags of x (mean removed) [lags]."""
    x = np.asarray(x, dtype=complex)
    x = x - x.mean()
    energy = float(np.vdot(x, x).real)
    if energy == 0:
        return np.zeros(lags, complex)
    return np.array([np.vdot(x[:-k], x[k:]) / energy for k in range(1, lags + 1)])


def expected_autocorrelation(noise_map: np.ndarray, lags: int) -> np.ndarray:
    """Return E[rho_1..rho_lags] of x = noise_map @ e for white e of unit variance [lags].

    noise_map [n, m] (complex, e.g. gabaapp.lcm.crlb.residual_map): x has covariance
    M M^H, so E[sum_t conj(x_t) x_(t+k)] = sum_t M[t+k] . conj(M[t]) (ratio of expectations,
    good to O(1/n)). For a fit residual this is what a correct model leaves (the fit's
    degrees of freedom correlate neighbours slightly): the test measures deviations from it.
    """
    m = np.asarray(noise_map)
    energy = float(np.sum(np.abs(m) ** 2))
    return np.array([np.sum(m[k:] * np.conj(m[:-k])) / energy for k in range(1, lags + 1)])


def ljung_box(
    x: np.ndarray, lags: int = WHITENESS_LAGS, expected: np.ndarray | None = None
) -> tuple[float, float]:
    """Return (Q, p-value) of the Ljung-Box test of the complex series x for whiteness.

    Small p: x is autocorrelated (not noise-like). p is from 2Q ~ chi-square(2 lags).
    `expected`: the autocorrelation [lags] x has when it is noise-like (e.g. a correct
    fit's residual, `expected_autocorrelation`); Q then sums |rho_k - expected_k|^2.
    """
    n = np.asarray(x).size
    lags = int(min(lags, n - 1))
    rho = autocorrelation(x, lags)
    if expected is not None:
        rho = rho - np.asarray(expected)[:lags]
    k = np.arange(1, lags + 1)
    q = float(n * (n + 2) * np.sum(np.abs(rho) ** 2 / (n - k)))
    return q, float(chi2.sf(2.0 * q, 2 * lags))


def whiteness(
    x: np.ndarray, lags: int = WHITENESS_LAGS, expected: np.ndarray | None = None
) -> dict[str, float]:
    """Return {"lag1_acf", "lag1_acf_expected", "ljung_box_q", "lags", "p_value"} of a
    complex residual (`expected`: see `ljung_box`; None: white, zeros).

    lag1_acf is the real part of rho_1: > 0 when neighbouring points move together (a
    structure wider than a point), ~0 (SD 1/sqrt(2n)) for white noise.
    """
    lags = int(min(lags, np.asarray(x).size - 1))
    exp = np.zeros(lags, complex) if expected is None else np.asarray(expected)[:lags]
    q, p = ljung_box(x, lags, exp)
    return {
        "lag1_acf": float(autocorrelation(x, 1)[0].real),
        "lag1_acf_expected": float(exp[0].real),
        "ljung_box_q": q,
        "lags": lags,
        "p_value": p,
    }
