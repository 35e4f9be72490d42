"""LCModel-style free line shape of the linear-combination fit (LcmConfig.lineshape="free").

Data carry a known non-Voigt line shape (a Voigt line convolved with an asymmetric kernel on
the DFT grid, i.e. the FID times that kernel's inverse FT), built from the analytic multiplet
basis of test_lcm_fit.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_fit import DATA_ACQ, TRUE, synth_megapress, synthetic_basis, voigt

from gabaapp.config import LcmConfig
from gabaapp.constants import METABOLITES
from gabaapp.errors import UsageError
from gabaapp.lcm.fit import fit_megapress, fit_spectrum
from gabaapp.lcm.model import Observation, Problem


def central_differences(p, theta: np.ndarray, amps: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Return d(design(theta) @ amps)/d theta by central differences, one column per parameter
    (the independent reference for the analytic model derivatives)."""
    return np.stack(
        [
            (p.design(theta + step * e) - p.design(theta - step * e)) @ amps / (2 * step)
            for e in np.eye(theta.size)
        ],
        axis=1,
    )


def test_model_derivatives_with_kernel_match_finite_differences():
    rng = np.random.default_rng(3)
    n = 256
    t = np.arange(n) * 1e-3
    cols = (rng.normal(size=(2, 3, n)) + 1j * rng.normal(size=(2, 3, n))) * np.exp(-20 * t)
    win = np.arange(40, 210)
    ppm = np.linspace(1.0, 4.0, win.size)
    data = rng.normal(size=win.size) + 1j * rng.normal(size=win.size)
    obs = (Observation("a", data, 1.0, (0,)), Observation("b", data, 2.0, (0, 1)))
    offsets = np.array([-2.0, -1.0, 1.0, 2.0]) * 1e3 / n  # DFT grid: 1 / (n dwell)
    p = Problem(t, win, ppm, 2.5, cols, obs, None, None, offsets, kernel_penalty=0.5)
    theta = np.array([3.0, 10.0, 1.0, 0.1, 0.05, -2.0, 0.2, 0.01, 0.1, -0.05, 0.02, 0.03])
    amps = np.array([1.0, 2.0, 0.5])
    analytic = p.model_derivatives(theta, amps)
    numeric = central_differences(p, theta, amps)
    np.testing.assert_allclose(analytic, numeric, atol=1e-6 * np.abs(numeric).max())
    # the kernel is a convolution on the DFT grid: area 1 whatever its free values
    off_hz, k = p.kernel(theta)
    assert k.sum() == pytest.approx(1.0)
    assert np.all(np.diff(off_hz) > 0)


def _shoulder_kernel(acq) -> tuple[np.ndarray, np.ndarray]:
    """Return (offsets_hz, weights): 65 % delta plus a smooth shoulder 5 bins up-field."""
    df_hz = 1.0 / (acq.n_points * acq.dwell_s)
    j = np.arange(-12, 13)
    shoulder = np.exp(-0.5 * ((j - 5) / 2.0) ** 2)
    w = 0.35 * shoulder / shoulder.sum() + 0.65 * (j == 0)
    return j * df_hz, w


def test_free_lineshape_recovers_amplitudes_of_non_voigt_lines():
    rng = np.random.default_rng(5)
    basis = synthetic_basis(DATA_ACQ)
    a = np.array([TRUE[m] for m in METABOLITES])
    off_hz, w = _shoulder_kernel(DATA_ACQ)
    t = DATA_ACQ.time_axis()
    shape = w @ np.exp(2j * np.pi * np.outer(off_hz, t))
    noise = 0.05 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    fid = (a @ basis.off) * voigt(DATA_ACQ, 3.0, 2.0, 2.0, 0.3) * shape + noise
    free = fit_spectrum(fid, DATA_ACQ, basis, METABOLITES, LcmConfig(lineshape="free"))
    plain = fit_spectrum(fid, DATA_ACQ, basis, METABOLITES, LcmConfig())
    assert free.converged, free.flags
    for m in METABOLITES:
        assert free.ratio(m) == pytest.approx(TRUE[m] / TRUE["Cr"], rel=0.02), m
    # the Voigt model cannot follow the shoulder: its residual is far above the free one's
    assert free.residual_to_noise["single"] < 0.6 * plain.residual_to_noise["single"]
    assert free.lineshape_kernel.sum() == pytest.approx(1.0)
    assert plain.lineshape_kernel is None


def test_free_lineshape_keeps_voigt_data_exact():
    rng = np.random.default_rng(0)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    config = LcmConfig(lineshape="free")
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), config)
    assert r.converged, r.flags
    for m in METABOLITES:
        assert r.amplitudes[m] == pytest.approx(TRUE[m], rel=0.02), m
    # a Voigt line needs no kernel: the penalised deviation from a delta stays small
    k = r.lineshape_kernel
    assert k[np.argmin(np.abs(r.lineshape_offsets_hz))] > 0.9


@pytest.mark.parametrize(
    "kwargs",
    [{"lineshape": "gaussian"}, {"lineshape_halfwidth_ppm": 0.0}, {"lineshape_stiffness": -1.0}],
)
def test_lineshape_options_validated(kwargs):
    with pytest.raises(UsageError):
        LcmConfig(**kwargs)
