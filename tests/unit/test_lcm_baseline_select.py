"""Baseline stiffness chosen per spectrum by Akaike's criterion (gabaapp.lcm.fit)."""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_fit import DATA_ACQ, LINES_OFF, multiplet_fid, voigt

from gabaapp.config import LcmConfig
from gabaapp.errors import UsageError
from gabaapp.lcm.fit import fit_spectrum
from gabaapp.lcm.mm import gaussian_fid

NAMES = ("Cr", "Glu", "NAA")
TRUTH = np.array([8.0, 9.0, 10.0])


def _spectrum(rng, background: np.ndarray | None) -> np.ndarray:
    basis_fids = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])
    fid = (TRUTH @ basis_fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
    if background is not None:
        fid = fid + background
    return fid + 0.05 * (rng.normal(size=2048) + 1j * rng.normal(size=2048))


def _fit(fid, steps: int):
    basis_fids = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])
    return fit_spectrum(fid, DATA_ACQ, basis_fids, NAMES, LcmConfig(baseline_stiffness_steps=steps))


def test_wiggly_background_gets_a_more_flexible_baseline_and_a_noise_like_residual():
    # two narrower humps (FWHM 0.35 ppm) that the default stiffness cannot follow
    bg = 12.0 * gaussian_fid(DATA_ACQ, 1.6, 0.35) - 8.0 * gaussian_fid(DATA_ACQ, 3.5, 0.35)
    fid = _spectrum(np.random.default_rng(21), bg)
    fixed, chosen = _fit(fid, 1), _fit(fid, 4)
    assert fixed.converged and chosen.converged, (fixed.flags, chosen.flags)
    assert fixed.baseline_stiffness == pytest.approx(LcmConfig().baseline_stiffness)
    assert chosen.baseline_stiffness < fixed.baseline_stiffness
    assert chosen.residual_to_noise["single"] < fixed.residual_to_noise["single"]
    assert chosen.residual_to_noise["single"] < 1.15
    np.testing.assert_allclose([chosen.amplitudes[n] for n in NAMES], TRUTH, rtol=0.03)


def test_flat_background_stays_exact():
    fid = _spectrum(np.random.default_rng(22), None)
    r = _fit(fid, 4)
    assert r.converged, r.flags
    assert r.residual_to_noise["single"] < 1.1
    # nothing for a flexible baseline to explain: parsimony keeps the stiffest candidate
    assert r.baseline_stiffness == pytest.approx(LcmConfig().baseline_stiffness)
    np.testing.assert_allclose([r.amplitudes[n] for n in NAMES], TRUTH, rtol=0.02)


def test_stiffness_steps_validated():
    with pytest.raises(UsageError, match="baseline_stiffness_steps"):
        LcmConfig(baseline_stiffness_steps=0)
