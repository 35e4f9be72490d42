"""Profile the PRESS echo-time split (TE1/TE2) on the data (issue 9).

A PRESS basis depends on more than TE: the J-evolution of coupled spins (Glu, Gln, GSH, the
NAA aspartyl group, mI) during the two echo periods, and so the multiplet shapes at a given
TE, change with how TE is split into TE1 and TE2 (Thompson & Allen, MRM 41:1162, 1999). The
headers do not say it: the Siemens RDA and DICOM protocol give only TE, the Philips SPAR only
`echo_time` (docs/lcm.md, log item 9), and gabaapp's basis assumes TE1 = 10 ms
(`MegaPressSequence.for_te`). On the real spectra of issue 9 the residual at 2.2-3.0 ppm
(the Glu/Gln/NAA multiplets) is the largest structured part of the misfit, and it depends on
the assumed split (docs/lcm.md, log item 12).

`te1_profile` simulates the PRESS basis for each candidate TE1 (same TE, pulses and sampling)
and fits the spectrum with each: every candidate has the same number of parameters, so the
residual SD is a profile of the misfit over TE1 and its minimum the best-fitting split. The
result is an *effective* TE1 for the simulated refocusing pulses: the scanner's pulse shapes
and durations are not known either, and the estimate absorbs part of that difference. It is a
protocol property: estimate it on one scan (or a few) of a protocol and use it for the
others, never per spectrum, and check it on a scan it was not estimated on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gabaapp.config import LcmConfig
from gabaapp.errors import UsageError
from gabaapp.lcm.fit import LcmResult, fit_spectrum
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import available_metabolites, load_spin_system
from gabaapp.spectra import Acquisition, Basis


@dataclass(frozen=True)
class Te1Profile:
    """Residual SD / noise SD of the fit for each candidate TE1 (ms), and the minimum.

    `best_te1_ms` is the grid point with the least residual, refined by a parabola through it
    and its two neighbours where it is not at the end of the grid (then `at_grid_edge`).
    """

    te_ms: float
    te1_ms: tuple[float, ...]
    residual_to_noise: tuple[float, ...]
    best_te1_ms: float
    at_grid_edge: bool
    fits: tuple[LcmResult, ...]


def press_sequence(acquisition: Acquisition, te1_ms: float, **sequence_kwargs) -> MegaPressSequence:
    """Return the unedited (PRESS) sequence of `acquisition` with its TE split as TE1 = `te1_ms`,
    TE2 = TE - TE1, at its field and sampling; `sequence_kwargs` go to `MegaPressSequence`."""
    if acquisition.te_s is None or not acquisition.te_s > 0:
        raise UsageError("the acquisition has no echo time: a PRESS basis needs TE")
    return MegaPressSequence.for_te(
        acquisition.te_s * 1e3,
        te1_ms=te1_ms,
        editing=False,
        f0_mhz=acquisition.f0_mhz,
        spectral_width_hz=acquisition.spectral_width_hz,
        n_points=acquisition.n_points,
        **sequence_kwargs,
    )


def press_basis(
    acquisition: Acquisition,
    te1_ms: float,
    names: tuple[str, ...] | None = None,
    **sequence_kwargs,
) -> Basis:
    """Return the gabaapp.physics PRESS basis for the acquisition's TE split as TE1 = `te1_ms`,
    its field and sampling; `sequence_kwargs` go to `MegaPressSequence` (e.g. pulses)."""
    seq = press_sequence(acquisition, te1_ms, **sequence_kwargs)
    names = tuple(names) if names is not None else tuple(available_metabolites())
    off = np.array([simulate_spin_system(load_spin_system(n), seq)[0] for n in names])
    return Basis(names, off, off.copy(), seq.acquisition(), seq.hash(), {"te1_ms": te1_ms})


def te1_profile(
    fid: np.ndarray,
    acquisition: Acquisition,
    te1_grid_ms: tuple[float, ...] | list[float],
    names: tuple[str, ...] | None = None,
    config: LcmConfig | None = None,
    **sequence_kwargs,
) -> Te1Profile:
    """Fit `fid` with the PRESS basis of each TE1 in `te1_grid_ms` and return the profile.

    `names`: spin systems of the basis (default: all bundled); `config`: the fit's options
    (default LcmConfig()); `sequence_kwargs` go to `MegaPressSequence` (pulse shapes etc.).
    A TE1 outside (0, TE) raises UsageError (from `MegaPressSequence.for_te`).
    """
    grid = tuple(float(t) for t in sorted(te1_grid_ms))
    if len(grid) < 1:
        raise UsageError("te1_grid_ms is empty: give at least one TE1 (ms)")
    config = config or LcmConfig()
    fits = []
    for te1 in grid:
        basis = press_basis(acquisition, te1, names, **sequence_kwargs)
        fits.append(fit_spectrum(fid, acquisition, basis, basis.names, config))
    ratios = tuple(float(r.residual_to_noise["single"]) for r in fits)
    k = int(np.argmin(ratios))
    edge = k in (0, len(grid) - 1)
    best = grid[k]
    if not edge:
        x, y = np.array(grid[k - 1 : k + 2]), np.array(ratios[k - 1 : k + 2])
        a, b, _ = np.polyfit(x, y, 2)
        if a > 0:
            best = float(np.clip(-b / (2 * a), x[0], x[-1]))
    return Te1Profile(
        te_ms=acquisition.te_s * 1e3,
        te1_ms=grid,
        residual_to_noise=ratios,
        best_te1_ms=float(best),
        at_grid_edge=edge,
        fits=tuple(fits),
    )
