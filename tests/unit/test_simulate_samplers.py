"""Concentration samplers: the paper's Sobol skip rule, in-vivo ratios, exact zeros."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from gabaapp.constants import METABOLITES
from gabaapp.errors import UsageError
from gabaapp.simulate.samplers import (
    INVIVO_RATIO_TO_NAA,
    make_sobol_engine,
    sample_concentrations,
    sample_with_zeros,
    sobol_skip,
)


@pytest.mark.parametrize(("n", "skip"), [(100_000, 18), (10_000, 15)])
def test_sobol_skip_matches_the_paper(n, skip):
    assert sobol_skip(n) == skip


def test_sobol_points_are_the_unscrambled_sequence_after_the_skip():
    engine = make_sobol_engine(5, 10_000)
    got = sample_concentrations(
        7, "sobol", METABOLITES, np.random.default_rng(), sobol_engine=engine
    )
    full = qmc.Sobol(d=5, scramble=False).random_base2(5)  # 32 points from the start
    np.testing.assert_array_equal(got, full[15:22])
    assert got.min() >= 0 and got.max() < 1


def test_sobol_without_engine_is_a_usage_error():
    with pytest.raises(UsageError, match="Sobol"):
        sample_concentrations(3, "sobol", METABOLITES, np.random.default_rng())


def test_invivo_ratios_to_naa_lie_in_the_literature_ranges():
    conc = sample_concentrations(5000, "invivo", METABOLITES, np.random.default_rng(0))
    naa = conc[:, METABOLITES.index("NAA")]
    assert naa.min() >= 0.5 and naa.max() <= 1.0
    for j, name in enumerate(METABOLITES):
        lo, hi = INVIVO_RATIO_TO_NAA[name]
        ratio = conc[:, j] / naa
        assert ratio.min() >= lo - 1e-12 and ratio.max() <= hi + 1e-12
    # GABA is the smallest, NAA the largest on average, as in brain
    means = conc.mean(axis=0)
    assert np.argmin(means) == METABOLITES.index("GABA")
    assert np.argmax(means) == METABOLITES.index("NAA")


def test_with_zeros_has_exact_zeros_but_never_an_empty_spectrum():
    conc = sample_with_zeros(20_000, 5, 0.5, np.random.default_rng(1))
    zero_fraction = (conc == 0).mean()
    assert 0.45 < zero_fraction < 0.5  # p = 0.5 minus the rescued all-zero rows (1/32)
    assert (conc.max(axis=1) > 0).all()


def test_uniform_is_uniform():
    conc = sample_concentrations(20_000, "uniform", METABOLITES, np.random.default_rng(2))
    assert conc.shape == (20_000, 5)
    np.testing.assert_allclose(conc.mean(axis=0), 0.5, atol=0.01)
