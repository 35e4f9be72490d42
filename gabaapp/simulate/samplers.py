"""Concentration samplers: Sobol (the paper), uniform, in-vivo-like priors, and with exact zeros.

All return float64 arrays [n, n_metabolites] of relative concentrations in the order of the
`metabolites` argument (gabaapp uses METABOLITES = [Cr, GABA, Gln, Glu, NAA]).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import qmc

from gabaapp.errors import UsageError

# In vivo ranges of concentration relative to NAA in healthy adult brain, derived from the mM
# ranges of Govindaraju, Young & Maudsley, NMR Biomed 13:129 (2000), Table 1
# (NAA 7.9-16.6, total Cr 5.1-10.6, Glu 6.0-12.5, Gln 3.0-5.8, GABA 1.3-1.9 mM) and de Graaf,
# "In Vivo NMR Spectroscopy", 3rd ed. (2019), Table 2.1 (GABA 1-2 mM), each taken against a
# typical NAA of ~11-13 mM. NAA itself is drawn in [0.5, 1.0) as overall scale.
INVIVO_RATIO_TO_NAA: dict[str, tuple[float, float]] = {
    "Cr": (0.45, 0.90),
    "GABA": (0.08, 0.20),
    "Gln": (0.20, 0.55),
    "Glu": (0.45, 1.00),
    "NAA": (1.0, 1.0),
}
INVIVO_NAA_SCALE = (0.5, 1.0)


def sobol_skip(n_spectra: int, n_metabolites: int = 5) -> int:
    """Return the paper's Sobol skip: floor(log2(n_spectra * n_metabolites)) (18 for 100 000)."""
    return int(math.floor(math.log2(n_spectra * n_metabolites)))


def make_sobol_engine(n_metabolites: int, n_spectra: int) -> qmc.Sobol:
    """Return an unscrambled Sobol engine over [0,1)^d already advanced by the paper's skip."""
    engine = qmc.Sobol(d=n_metabolites, scramble=False)
    engine.fast_forward(sobol_skip(n_spectra, n_metabolites))
    return engine


def sample_sobol(n: int, engine: qmc.Sobol) -> np.ndarray:
    """Return the next `n` Sobol points of `engine` (advancing it), shape [n, d]."""
    with warnings.catch_warnings():  # balance warning for n not a power of 2: we want the stream
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)


def sample_uniform(n: int, n_metabolites: int, rng: np.random.Generator) -> np.ndarray:
    """Return independent U[0, 1) concentrations, shape [n, n_metabolites]."""
    return rng.random((n, n_metabolites))


def sample_invivo(n: int, metabolites: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """Return in-vivo-like concentrations: NAA ~ U(0.5, 1), others = NAA x literature ratio.

    Metabolites without a literature ratio (not in INVIVO_RATIO_TO_NAA) are drawn in U[0, 1).
    """
    naa = rng.uniform(*INVIVO_NAA_SCALE, size=n)
    out = np.empty((n, len(metabolites)))
    for j, name in enumerate(metabolites):
        if name in INVIVO_RATIO_TO_NAA:
            lo, hi = INVIVO_RATIO_TO_NAA[name]
            out[:, j] = naa * rng.uniform(lo, hi, size=n)
        else:
            out[:, j] = rng.random(n)
    return out


def sample_with_zeros(
    n: int, n_metabolites: int, zero_probability: float, rng: np.random.Generator
) -> np.ndarray:
    """Return U[0, 1) concentrations with each entry set exactly to 0 with `zero_probability`.

    At least one metabolite per spectrum stays non-zero (phantom series contain zeros of some
    metabolites, never an empty phantom).
    """
    conc = rng.random((n, n_metabolites))
    zero = rng.random((n, n_metabolites)) < zero_probability
    all_zero = zero.all(axis=1)
    keep = rng.integers(0, n_metabolites, size=n)
    zero[all_zero, keep[all_zero]] = False
    conc[zero] = 0.0
    return conc


def sample_concentrations(
    n: int,
    sampler: str,
    metabolites: tuple[str, ...],
    rng: np.random.Generator,
    *,
    sobol_engine: qmc.Sobol | None = None,
    zero_probability: float = 0.3,
) -> np.ndarray:
    """Return [n, len(metabolites)] concentrations from `sampler`.

    "sobol" needs `sobol_engine` (see make_sobol_engine), which it advances.
    """
    d = len(metabolites)
    if sampler == "sobol":
        if sobol_engine is None:
            raise UsageError("sampler 'sobol' needs a Sobol engine (make_sobol_engine)")
        return sample_sobol(n, sobol_engine)
    if sampler == "uniform":
        return sample_uniform(n, d, rng)
    if sampler == "invivo":
        return sample_invivo(n, metabolites, rng)
    if sampler == "zeros":
        return sample_with_zeros(n, d, zero_probability, rng)
    raise UsageError(f"unknown sampler {sampler!r}; choose sobol, uniform, invivo or zeros")
