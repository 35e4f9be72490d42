"""The faster evaluation paths of gabaapp.lcm.model (issue 9, free line shape within budget).

Individual shifts use derivatives built from FFT(t x each column) and the kernel's shift
theorem; one-group single spectra project the baseline per real/imaginary block; the
individual-shift exponentials come from block products. Each is checked here against an
independent computation: central finite differences of the design, a direct penalised
least-squares baseline fit, np.exp.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_lineshape import central_differences

from gabaapp.lcm.baseline import second_difference, spline_design
from gabaapp.lcm.model import Observation, Problem, _exponentials


def _problem(n_groups: int, mask, kernel: str, with_width: bool, baseline: bool):
    rng = np.random.default_rng(11)
    n, n_amp = 256, 4
    t = np.arange(n) * 1e-3
    cols = rng.normal(size=(n_groups, n_amp, n)) + 1j * rng.normal(size=(n_groups, n_amp, n))
    cols *= np.exp(-20 * t)
    win = np.arange(40, 210)
    ppm = np.linspace(1.0, 4.0, win.size)
    data = rng.normal(size=win.size) + 1j * rng.normal(size=win.size)
    if n_groups == 1:
        obs = (Observation("a", data, 1.5, (0,)),)
    else:
        obs = (Observation("a", data, 1.0, (0,)), Observation("b", data, 2.0, (0, 1)))
    df = 1e3 / n  # DFT grid: 1 / (n dwell)
    offsets = {
        "none": None,
        "grid": np.array([-2.0, -1.0, 1.0, 2.0]) * df,
        "off_grid": np.array([-1.7, -0.6, 0.9, 2.3]) * df,
    }[kernel]
    bl = pen = None
    if baseline:
        bl = spline_design(ppm, (1.0, 4.0), 0.5)
        pen = 0.3 * second_difference(bl.shape[1])
    p = Problem(
        t,
        win,
        ppm,
        2.5,
        cols,
        obs,
        bl,
        pen,
        offsets,
        kernel_penalty=0.5 if offsets is not None else 0.0,
        column_shift_mask=np.array(mask),
        column_shift_sd_hz=np.array([1.0, 2.0, 1.5, 3.0]),
        column_width_sd_hz=1.0 if with_width else 0.0,
    )
    theta = 0.05 * rng.normal(size=p.n_theta)
    theta[0], theta[1] = 3.0, 10.0
    for g in range(n_groups):
        theta[2 + 3 * g : 5 + 3 * g] = (1.0 + g, 0.1, 0.05)
    if p.n_cs:
        theta[p.cs_start : p.cs_start + p.n_cs] = rng.normal(size=p.n_cs)
    if p.n_cw:
        theta[p.cw_start : p.cw_start + p.n_cw] = np.abs(rng.normal(size=p.n_cw))
    return p, theta


@pytest.mark.parametrize(
    ("n_groups", "mask", "kernel", "with_width"),
    [
        (1, [True] * 4, "grid", False),
        (1, [True] * 4, "off_grid", True),
        (1, [True, False, True, False], "none", False),
        (2, [True, True, False, True], "grid", True),
    ],
)
def test_derivatives_with_individual_shifts_match_finite_differences(
    n_groups, mask, kernel, with_width
):
    p, theta = _problem(n_groups, mask, kernel, with_width, baseline=False)
    assert p.n_cs == sum(mask)
    assert (p.kernel_take is not None) == (kernel == "grid")
    amps = np.array([1.0, 2.0, 0.5, 0.8])
    analytic = p.model_derivatives(theta, amps)
    numeric = central_differences(p, theta, amps)
    np.testing.assert_allclose(analytic, numeric, atol=1e-6 * np.abs(numeric).max())
    # the cache of the column products must not leak into another theta
    other = theta + 0.01
    again = p.model_derivatives(other, amps)
    fresh, _ = _problem(n_groups, mask, kernel, with_width, baseline=False)
    np.testing.assert_allclose(again, fresh.model_derivatives(other, amps), rtol=0, atol=1e-12)


def test_blockwise_baseline_projection_equals_the_penalised_fit():
    p, _ = _problem(1, [True] * 4, "grid", False, baseline=True)
    assert p.q_block is not None
    rng = np.random.default_rng(5)
    x = rng.normal(size=(p.n_rows, 3))
    # independent: penalised least squares of x on the baseline, residual rows appended
    z, pen = p.z_data, p.z_pen
    stacked = np.vstack([z, pen])
    coef, *_ = np.linalg.lstsq(stacked, np.vstack([x, np.zeros((pen.shape[0], 3))]), rcond=None)
    expected = np.vstack([x - z @ coef, -(pen @ coef)])
    np.testing.assert_allclose(p.project(x), expected, atol=1e-12 * np.abs(x).max())
    np.testing.assert_allclose(p.project(x[:, 0]), expected[:, 0], atol=1e-12 * np.abs(x).max())


@pytest.mark.parametrize("n", [2048, 1000, 7])
def test_block_exponentials_match_exp(n):
    t = np.arange(n) * 5e-4
    rates = np.array([2j * np.pi * 12.3 - 3.0, -2j * np.pi * 40.0, 0.0, -np.pi * 5.0])
    got = _exponentials(rates, t, 5e-4)
    np.testing.assert_allclose(got, np.exp(np.outer(rates, t)), rtol=1e-13, atol=1e-15)
    # a non-uniform grid falls back to np.exp
    t2 = np.sort(np.random.default_rng(0).uniform(0, 1, n))
    np.testing.assert_array_equal(_exponentials(rates, t2, None), np.exp(np.outer(rates, t2)))
