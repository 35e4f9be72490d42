"""Soft constraints on amplitude ratios (LcmConfig.amplitude_priors, LCModel-style).

Synthetic single spectra from the analytic multiplet basis of test_lcm_fit. The expectation
is the Gaussian combination of two estimates: a prior of mean r_p and SD s_p and the data's
own ratio r_d with SD s_d (its CRLB) give the MAP estimate w r_d + (1 - w) r_p with
w = s_p^2 / (s_d^2 + s_p^2). Its SD over noise realisations (the prior is fixed) is w s_d:
what the CRLB in sandwich form reports (not the posterior SD (1/s_d^2 + 1/s_p^2)^-1/2).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_fit import DATA_ACQ, LINES_OFF, multiplet_fid, voigt

from gabaapp.config import LcmConfig
from gabaapp.errors import UsageError
from gabaapp.lcm.fit import fit_spectrum

NAMES = ("Cr", "Glu", "NAA")
TRUTH = np.array([8.0, 9.0, 10.0])


def _spectrum(noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (fid, basis FIDs) of NAMES with TRUTH amplitudes, Voigt 5/2 Hz, shift -3 Hz."""
    t = DATA_ACQ.time_axis()
    basis = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])
    fid = (TRUTH @ basis) * voigt(DATA_ACQ, 5.0, 2.0, -3.0, 0.3)
    rng = np.random.default_rng(seed)
    return fid + noise * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size)), basis


def _ratio_and_sd(r, name: str = "Glu", ref: str = "Cr") -> tuple[float, float]:
    """Return amplitude(name) / amplitude(ref) and its first-order CRLB."""
    i, j = r.names.index(name), r.names.index(ref)
    c = r.amplitude_covariance
    a, b = r.amplitudes[name], r.amplitudes[ref]
    var = c[i, i] / a**2 + c[j, j] / b**2 - 2 * c[i, j] / (a * b)
    return a / b, abs(a / b) * float(np.sqrt(var))


def test_consistent_prior_leaves_the_fit_exact():
    fid, basis = _spectrum(0.02, 41)
    prior = (("Glu", ("Cr",), 9.0 / 8.0, 0.1),)
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig(amplitude_priors=prior))
    assert r.converged, r.flags
    np.testing.assert_allclose([r.amplitudes[m] for m in NAMES], TRUTH, rtol=0.02)


def test_prior_and_data_combine_as_two_gaussian_estimates():
    """A prior 3 data-SDs away with the data's own SD lands half-way; the estimator's SD
    halves (w = 1/2)."""
    fid, basis = _spectrum(3.0, 42)
    free = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    r_d, s_d = _ratio_and_sd(free)
    assert s_d > 0.01  # the data leave room for a prior to matter
    r_p, s_p = r_d + 3 * s_d, s_d
    config = LcmConfig(amplitude_priors=(("Glu", ("Cr",), r_p, s_p),))
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, config)
    assert r.converged, r.flags
    ratio, sd = _ratio_and_sd(r)
    expected = (r_d / s_d**2 + r_p / s_p**2) / (1 / s_d**2 + 1 / s_p**2)
    assert ratio == pytest.approx(expected, abs=0.25 * s_d)
    assert sd == pytest.approx(s_d / 2, rel=0.15)
    # a very loose prior changes nothing, a very tight one wins
    loose = LcmConfig(amplitude_priors=(("Glu", ("Cr",), r_p, 100 * s_d),))
    tight = LcmConfig(amplitude_priors=(("Glu", ("Cr",), r_p, 0.01 * s_d),))
    r_loose = fit_spectrum(fid, DATA_ACQ, basis, NAMES, loose)
    r_tight = fit_spectrum(fid, DATA_ACQ, basis, NAMES, tight)
    assert _ratio_and_sd(r_loose)[0] == pytest.approx(r_d, abs=0.05 * s_d)
    assert _ratio_and_sd(r_tight)[0] == pytest.approx(r_p, abs=0.1 * s_d)


def test_prior_naming_an_unfitted_amplitude_is_ignored():
    fid, basis = _spectrum(0.02, 43)
    prior = (("PE", ("Cr",), 0.15, 0.1),)
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig(amplitude_priors=prior))
    plain = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    assert r.amplitudes == pytest.approx(plain.amplitudes)


@pytest.mark.parametrize(
    "entry",
    [
        ("PE", (), 0.1, 0.1),
        ("PE", ("PE",), 0.1, 0.1),
        ("PE", ("Cr",), -1.0, 0.1),
        ("PE", ("Cr",), 0.1, 0.0),
    ],
)
def test_bad_prior_is_a_usage_error(entry):
    with pytest.raises(UsageError, match="amplitude_priors"):
        LcmConfig(amplitude_priors=(entry,))
