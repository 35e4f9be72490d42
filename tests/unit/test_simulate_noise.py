"""The synthesiser's counter-based normal draws (gabaapp.simulate.noise, compiled in
gabaapp.simulate.fused): N(0, 1), independent, a function of (seed, index) only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gabaapp.simulate import fused
from gabaapp.simulate.noise import normal_pairs

N_PAIRS = 1_000_000


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    """2 x 10^6 normals of one stream (numpy reference; the compiled loop is compared below)."""
    return normal_pairs(20261126, 0, N_PAIRS).astype(np.float64)


def test_draws_are_standard_normal(draws):
    n = draws.size
    assert abs(draws.mean()) < 5 / np.sqrt(n)
    assert abs(draws.var() - 1.0) < 5 * np.sqrt(2.0 / n)
    assert abs(stats.skew(draws)) < 5 * np.sqrt(6.0 / n)
    assert abs(stats.kurtosis(draws)) < 5 * np.sqrt(24.0 / n)
    # Kolmogorov-Smirnov against N(0, 1): below the 0.1 % critical value
    assert stats.kstest(draws, "norm").statistic < 1.95 / np.sqrt(n)
    for a in (2.0, 3.0, 4.0):  # two-sided tail frequencies within 5 binomial SDs
        p = 2 * stats.norm.sf(a)
        assert abs((np.abs(draws) > a).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_draws_are_uncorrelated(draws):
    bound = 5 / np.sqrt(N_PAIRS)
    assert abs(np.corrcoef(draws[0::2], draws[1::2])[0, 1]) < bound  # within a pair
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < bound  # neighbours
    assert abs(np.corrcoef(draws[0::2] ** 2, draws[1::2] ** 2)[0, 1]) < 2 * bound
    other = normal_pairs(20261127, 0, N_PAIRS // 4).astype(np.float64)
    assert abs(np.corrcoef(draws[: other.size], other)[0, 1]) < 2 * bound  # another seed


def test_stream_is_a_function_of_seed_and_index_only():
    whole = normal_pairs(99, 0, 5000)
    np.testing.assert_array_equal(normal_pairs(99, 1234, 100), whole[2468:2668])
    assert not np.array_equal(normal_pairs(98, 0, 5000), whole)


@pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("start", [0, 77, 10**9])
def test_compiled_draws_equal_the_numpy_reference(start):
    out = np.empty(2 * 3001, dtype=np.float32)  # not a multiple of the 128-pair blocks
    fused.fill_normal_pairs(123456789, start, out)
    ref = normal_pairs(123456789, start, 3001)
    # float32 series for ln, cos and sin (truncation < 2e-9) against float64 libm
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-6)
