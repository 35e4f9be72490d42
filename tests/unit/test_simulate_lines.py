"""simulate.lines: fast complex exponentials and line sums against direct formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gabaapp.simulate.lines import cexp, exp_linear, line_fids, polar, voigt_envelope

DWELL_S = 0.5e-3


def test_polar_and_cexp_equal_torch():
    g = torch.Generator().manual_seed(0)
    mag = torch.rand(3, 50, generator=g)
    ang = 200 * torch.rand(3, 50, generator=g) - 100
    torch.testing.assert_close(polar(mag, ang), torch.polar(mag, ang))
    z = torch.complex(-3 * torch.rand(3, 50, generator=g), ang)
    torch.testing.assert_close(cexp(z), torch.exp(z))
    assert polar(mag.double(), ang.double()).dtype == torch.complex128


@pytest.mark.parametrize("n_points", [4096, 1000, 7])
def test_exp_linear_equals_the_direct_exponential(n_points):
    t = torch.arange(n_points, dtype=torch.float32) * DWELL_S
    rate = torch.complex(torch.tensor([-3.0, 0.0]), torch.tensor([2 * math.pi * 40.0, -50.0]))
    phase = torch.complex(torch.tensor([0.5, 0.0]), torch.tensor([1.0, -2.0]))
    got = exp_linear(rate, phase, t, 64).numpy()
    tt = t.double().numpy()
    expected = np.exp(phase.numpy()[:, None] + rate.numpy()[:, None] * tt)
    np.testing.assert_allclose(got, expected, atol=3e-5 * np.abs(expected).max())


def _direct_lines(t, offset, lor, gau, phase, height):
    """float64 line sum straight from the definition in simulate.lines."""
    t = t[None, None, :]
    env = np.exp(-np.pi * lor[..., None] * t - (np.pi * gau[..., None] * t) ** 2 / (4 * np.log(2)))
    env = env * (height / env.sum(-1))[..., None]
    return (env * np.exp(1j * (phase[..., None] + 2 * np.pi * offset[..., None] * t))).sum(1)


@pytest.mark.parametrize("gauss", [False, True])
def test_line_fids_equal_the_definition(gauss):
    # Lorentzian-only lines take the separable, closed-form path; Voigt lines the direct one.
    rng = np.random.default_rng(3)
    n, k, points = 4, 3, 1800
    t = np.arange(points) * DWELL_S
    offset = rng.uniform(-300, 300, (n, k))
    lor = rng.uniform(0.0, 12.0, (n, k))
    lor[0, 0] = 0.0  # L = 0: the envelope sum is the number of points
    gau = rng.uniform(10.0, 60.0, (n, k)) if gauss else np.zeros((n, k))
    phase = rng.uniform(-np.pi, np.pi, (n, k))
    height = rng.uniform(0.1, 2.0, (n, k))
    height[1, 1], height[2, 0] = -0.7, 0.0  # negative and zero heights are lines too
    args = [torch.as_tensor(a, dtype=torch.float32) for a in (offset, lor, gau, phase, height)]
    got = line_fids(torch.as_tensor(t, dtype=torch.float32), *args).numpy()
    expected = _direct_lines(t, offset, lor, gau, phase, height)
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())


def test_voigt_envelope_tail_is_zero_not_subnormal():
    t = torch.arange(4096, dtype=torch.float32) * DWELL_S
    env = voigt_envelope(t, torch.tensor([8.0]), torch.tensor([50.0]))
    assert float(env[0, 0]) == 1.0
    assert float(env[0, -1]) < 1e-20 and float(env[0, -1]) >= torch.finfo(torch.float32).tiny
