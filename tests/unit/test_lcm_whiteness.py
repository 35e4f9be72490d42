"""Whiteness of the fit residual (gabaapp.lcm.whiteness) and its report by the fit.

Independent expectations: for circular complex white noise 2Q ~ chi-square(2 lags), so the
Ljung-Box p-values are uniform; a moving average of 3 points has rho_1 = 2/3; a correct
model fitted to model + white noise leaves a residual that passes; a missing line does not.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_fit import DATA_ACQ, LINES_OFF, multiplet_fid, voigt

from gabaapp.config import LcmConfig
from gabaapp.lcm.fit import WHITENESS_FLAG_P, fit_spectrum
from gabaapp.lcm.whiteness import (
    WHITENESS_LAGS,
    autocorrelation,
    expected_autocorrelation,
    ljung_box,
    whiteness,
)

NAMES = ("Cr", "Glu", "NAA")
TRUTH = np.array([8.0, 9.0, 10.0])


def _complex_noise(rng, n: int) -> np.ndarray:
    return rng.normal(size=n) + 1j * rng.normal(size=n)


def test_white_noise_gives_uniform_p_values():
    rng = np.random.default_rng(0)
    out = [ljung_box(_complex_noise(rng, 400)) for _ in range(1000)]
    q = np.array([o[0] for o in out])
    p = np.array([o[1] for o in out])
    # E[Q] = lags (each n|rho_k|^2 has mean ~1); rejection rates at their nominal levels
    assert np.mean(q) == pytest.approx(WHITENESS_LAGS, rel=0.05)
    assert 0.035 <= np.mean(p < 0.05) <= 0.065
    assert np.mean(p < 0.01) <= 0.02


def test_correlated_noise_is_detected_and_the_phase_does_not_matter():
    rng = np.random.default_rng(1)
    x = np.convolve(_complex_noise(rng, 402), np.ones(3) / 3, mode="valid")  # rho_1 = 2/3
    w = whiteness(x)
    assert w["lag1_acf"] == pytest.approx(2 / 3, abs=0.07)
    assert w["p_value"] < 1e-12
    rotated = np.exp(0.7j) * x
    assert whiteness(rotated)["ljung_box_q"] == pytest.approx(w["ljung_box_q"])
    np.testing.assert_allclose(autocorrelation(rotated, 3), autocorrelation(x, 3), atol=1e-12)


def _basis() -> np.ndarray:
    return np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])


def test_a_correct_model_leaves_a_white_residual():
    """Model + white noise, fitted with the right basis: the residual passes at the flag
    level in (nearly) every realisation, and its p-values are not piled up near 0."""
    fids = _basis()
    p = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        fid = (TRUTH @ fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
        fid = fid + 0.05 * _complex_noise(rng, DATA_ACQ.n_points)
        r = fit_spectrum(fid, DATA_ACQ, fids, NAMES, LcmConfig())
        assert r.converged, r.flags
        p.append(r.residual_whiteness["single"]["p_value"])
        assert not any("not white" in f for f in r.flags), r.flags
    assert np.median(p) > 0.1, p


def test_a_missing_line_leaves_a_correlated_residual_and_a_flag():
    fids = _basis()
    rng = np.random.default_rng(7)
    fid = (TRUTH @ fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
    fid = fid + 0.05 * _complex_noise(rng, DATA_ACQ.n_points)
    r = fit_spectrum(fid, DATA_ACQ, fids[[0, 2]], ("Cr", "NAA"), LcmConfig())  # no Glu
    w = r.residual_whiteness["single"]
    assert w["p_value"] < WHITENESS_FLAG_P
    assert w["lag1_acf"] > 0.3
    assert any("not white" in f for f in r.flags)
    s = r.summary()
    assert s["residual_ljung_box_p_single"] == pytest.approx(w["p_value"])


def test_expected_autocorrelation_fast_form_equals_the_dense_one():
    """The fit's O(n p) expected autocorrelation equals the one from the dense residual map
    M = G (I - H), for a single spectrum and for MEGA-PRESS DIFF (= ON - OFF rows)."""
    from test_lcm_fit import synth_megapress, synthetic_basis

    from gabaapp.lcm import crlb, fit

    captured = {}
    real = crlb.expected_residual_autocorrelation

    def spy(problem, basis, coeffs, lags):
        captured.setdefault("calls", []).append((problem, basis, coeffs))
        return real(problem, basis, coeffs, lags)

    fit.expected_residual_autocorrelation = spy
    try:
        off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(13), noise=0.05)
        on = LcmConfig(residual_whiteness="on")
        r = fit.fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), on)
        assert set(r.residual_whiteness) == {"off", "diff"}
        fids = _basis()
        rng = np.random.default_rng(3)
        fid = (TRUTH @ fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
        fit.fit_spectrum(fid + 0.05 * _complex_noise(rng, 2048), DATA_ACQ, fids, NAMES)
    finally:
        fit.expected_residual_autocorrelation = real
    assert len(captured["calls"]) == 3  # OFF, DIFF, single
    for problem, basis, coeffs in captured["calls"]:
        dense = expected_autocorrelation(crlb.residual_map(problem, basis, coeffs), 10)
        fast = real(problem, basis, coeffs, 10)
        np.testing.assert_allclose(fast, dense, atol=1e-10)


def test_whiteness_is_on_for_single_spectra_and_off_for_megapress_by_default():
    from test_lcm_fit import synth_megapress, synthetic_basis

    from gabaapp.errors import UsageError
    from gabaapp.lcm.fit import fit_megapress

    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(13), noise=0.05)
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig())
    assert r.residual_whiteness == {}
    assert "residual_ljung_box_p_off" not in r.summary()
    fids = _basis()
    fid = (TRUTH @ fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
    fid = fid + 0.05 * _complex_noise(np.random.default_rng(4), DATA_ACQ.n_points)
    assert "single" in fit_spectrum(fid, DATA_ACQ, fids, NAMES).residual_whiteness
    off_cfg = LcmConfig(residual_whiteness="off")
    assert fit_spectrum(fid, DATA_ACQ, fids, NAMES, off_cfg).residual_whiteness == {}
    with pytest.raises(UsageError, match="residual_whiteness"):
        LcmConfig(residual_whiteness="maybe")
