"""Linear-combination model fit of MEGA-PRESS (edit-OFF + DIFF) and single spectra.

`fit_megapress` fits edit-OFF and DIFF jointly (shared amplitudes and Voigt widths, shift and
phases per sub-spectrum) or separately; `fit_spectrum` fits one sub-spectrum (PRESS). Both
return an `LcmResult` with amplitudes in basis units (a = 1 means the data equal that basis
FID), Cramér-Rao lower bounds, the fitted nonlinear parameters, model/baseline/residual
spectra over the fit window and quality flags. Method: see gabaapp.lcm.model and
gabaapp.lcm.crlb; anchor: LCModel (Provencher, MRM 30:672, 1993).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from gabaapp.config import LcmConfig
from gabaapp.constants import METABOLITES
from gabaapp.errors import DataError
from gabaapp.lcm.baseline import second_difference, spline_design
from gabaapp.lcm.crlb import (
    covariance,
    expected_residual_autocorrelation,
    jacobian,
    normal_inverse,
    residual_basis,
    theta_index,
)
from gabaapp.lcm.mm import MM_COMPONENTS, SHORT_TE_COMPONENTS, MMComponent
from gabaapp.lcm.model import N_PER_GROUP, N_SHARED, Observation, Problem
from gabaapp.lcm.noise import noise_sd
from gabaapp.lcm.resample import resample_fids
from gabaapp.lcm.whiteness import WHITENESS_LAGS, whiteness
from gabaapp.spectra import Acquisition, Basis, fid_to_spectrum

log = logging.getLogger(__name__)

RESIDUAL_NOISE_FLAG = 1.5  # residual SD / noise SD above which the fit is flagged
# Ljung-Box p-value below which the residual is flagged as not white (structure left)
WHITENESS_FLAG_P = 1e-3
_WINDOW_MARGIN_POINTS = 4
_INIT_LORENTZ_HZ = (3.0, 8.0)
_INIT_SHIFT_STEP_HZ = 2.5
_INIT_CANDIDATES = 6  # best complex-fit grid points re-ranked by the non-negative fit
# Individual shifts stop at this many prior SDs: under a misspecified model the misfit can
# outweigh the Gaussian prior, and a broad MM line then wanders off to mimic a water tail
# (measured: MM39 moved 0.31 ppm on the Philips PRESS spectrum in a one-stage fit).
INDIVIDUAL_SHIFT_LIMIT = 3.0
_TOL = 1e-6  # relative tolerance of least_squares (cost, step, gradient)
_WARM_NFEV = 30  # evaluations for a fit warm-started from a neighbouring baseline stiffness


@dataclass(frozen=True)
class LcmResult:
    """Outcome of one linear-combination fit.

    Amplitudes and CRLBs are in basis units; ratios (e.g. to Cr) are unit-free. Per
    sub-spectrum entries are keyed "off", "diff" (MEGA-PRESS) or "single" (PRESS). Spectra are
    complex arrays over `ppm` (the fit window, ascending), on the data's own scale.
    """

    names: tuple[str, ...]
    amplitudes: dict[str, float]
    crlb_abs: dict[str, float]
    crlb_percent: dict[str, float]
    lorentz_hz: float
    gauss_hz: float
    shift_hz: dict[str, float]
    phase0_deg: dict[str, float]
    phase1_deg_per_ppm: dict[str, float]
    ppm: np.ndarray
    data: dict[str, np.ndarray]
    model: dict[str, np.ndarray]
    baseline: dict[str, np.ndarray]
    residual: dict[str, np.ndarray]
    residual_sd: dict[str, float]
    noise_sd: dict[str, float | None]
    converged: bool
    flags: tuple[str, ...]
    nfev: int
    amplitude_covariance: np.ndarray = field(repr=False)
    source: dict[str, str] = field(default_factory=dict)  # which fit gave each amplitude
    baseline_stiffness: float = math.nan  # the stiffness chosen (Akaike) for this fit
    # free line shape ("free"): kernel values (area 1) at offsets_hz; None for "voigt"
    lineshape_offsets_hz: np.ndarray | None = field(default=None, repr=False)
    lineshape_kernel: np.ndarray | None = field(default=None, repr=False)
    # individual shift (Hz) of each column beyond the common shift, where fitted (else empty)
    individual_shift_hz: dict[str, float] = field(default_factory=dict)
    # individual extra Lorentzian width (Hz) of each column, where fitted (else empty)
    individual_width_hz: dict[str, float] = field(default_factory=dict)
    # per sub-spectrum: lag-1 autocorrelation and Ljung-Box test of the residual
    # (gabaapp.lcm.whiteness): noise-like needs residual_to_noise near 1 AND a large p
    residual_whiteness: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def amplitude_array(self) -> np.ndarray:
        """Return amplitudes in METABOLITES order, NaN for metabolites not fitted."""
        return np.array([self.amplitudes.get(m, np.nan) for m in METABOLITES])

    @property
    def crlb_percent_array(self) -> np.ndarray:
        """Return percent CRLBs in METABOLITES order, NaN for metabolites not fitted."""
        return np.array([self.crlb_percent.get(m, np.nan) for m in METABOLITES])

    @property
    def residual_to_noise(self) -> dict[str, float]:
        """Return residual SD / noise SD per sub-spectrum (NaN where noise is unmeasurable)."""
        return {
            k: (v / self.noise_sd[k]) if self.noise_sd.get(k) else math.nan
            for k, v in self.residual_sd.items()
        }

    def ratio(self, name: str, reference: str = "Cr") -> float:
        """Return amplitude(name) / amplitude(reference)."""
        return self.amplitudes[name] / self.amplitudes[reference]

    def summary(self) -> dict[str, object]:
        """Return a flat, JSON-ready dict: per amplitude name `<name>`, `<name>_crlb`,
        `<name>_crlb_percent`, `<name>_to_cr` (when Cr was fitted); then the fit parameters,
        residual/noise ratios, `converged` and `flags` (inf CRLBs become None)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        out: dict[str, object] = {}
        cr = self.amplitudes.get("Cr", 0.0)
        for n in self.names:
            out[n] = self.amplitudes[n]
            out[f"{n}_crlb"] = num(self.crlb_abs[n])
            out[f"{n}_crlb_percent"] = num(self.crlb_percent[n])
            if cr > 0:
                out[f"{n}_to_cr"] = self.amplitudes[n] / cr
        out["lorentz_hz"], out["gauss_hz"] = self.lorentz_hz, self.gauss_hz
        for k in self.shift_hz:
            out[f"shift_hz_{k}"] = self.shift_hz[k]
            out[f"phase0_deg_{k}"] = self.phase0_deg[k]
            out[f"phase1_deg_per_ppm_{k}"] = self.phase1_deg_per_ppm[k]
        for k, v in self.residual_to_noise.items():
            out[f"residual_to_noise_{k}"] = num(v)
        for k, w in self.residual_whiteness.items():
            out[f"residual_lag1_acf_{k}"] = w["lag1_acf"]
            out[f"residual_ljung_box_p_{k}"] = w["p_value"]
        out["converged"] = self.converged
        out["flags"] = list(self.flags)
        return out


# ----- public API ------------------------------------------------------------------------------


def fit_megapress(
    off_fid: np.ndarray,
    diff_fid: np.ndarray,
    acquisition: Acquisition,
    basis: Basis,
    config: LcmConfig | None = None,
) -> LcmResult:
    """Fit edit-OFF and DIFF (= ON - OFF) FIDs [N] with `basis`; return an LcmResult.

    config.mode "joint": one fit of the OFF and ON (= OFF + DIFF) spectra, whose noise is
    independent, with shared amplitudes and widths. "separate": an OFF fit and a DIFF fit;
    GABA (and MM30) come from the DIFF fit, everything else from the OFF fit.
    Raises DataError for unusable input (sampling, window, missing metabolites).
    """
    config = config or LcmConfig()
    off = _as_fid(off_fid, acquisition, "edit-OFF")
    diff = _as_fid(diff_fid, acquisition, "DIFF")
    names = tuple(config.metabolites)
    sub = _subset(basis, names)
    both = np.stack([sub.off, sub.diff])
    off_cols, diff_cols = resample_fids(both, sub.acquisition, acquisition, config.max_f0_mismatch)
    _check_window(acquisition, sub.acquisition, config)
    if config.mode == "joint":
        return _fit(
            groups={"off": off_cols, "diff": diff_cols},
            observations=[("off", off, ("off",)), ("on", off + diff, ("off", "diff"))],
            sub_spectra={"off": (off, ("off",)), "diff": (diff, ("diff",))},
            acq=acquisition,
            names=names,
            config=config,
            individual_shifts=config.individual_shifts == "on",
        )
    r_off = _fit(
        groups={"off": off_cols},
        observations=[("off", off, ("off",))],
        sub_spectra={"off": (off, ("off",))},
        acq=acquisition,
        names=names,
        config=config,
        individual_shifts=config.individual_shifts == "on",
    )
    # Metabolites without signal in the DIFF window cannot be fitted there (e.g. Cr).
    edited = _edited_names(diff_cols, off_cols, names, acquisition, config)
    keep = [names.index(n) for n in edited]
    r_diff = _fit(
        groups={"diff": diff_cols[keep]},
        observations=[("diff", diff, ("diff",))],
        sub_spectra={"diff": (diff, ("diff",))},
        acq=acquisition,
        names=edited,
        config=config,
        individual_shifts=config.individual_shifts == "on",
    )
    return _merge(r_off, r_diff, from_diff=("GABA", "MM30"))


def fit_spectrum(
    fid: np.ndarray,
    acquisition: Acquisition,
    basis_fids: np.ndarray | Basis,
    names: tuple[str, ...] | list[str],
    config: LcmConfig | None = None,
    basis_acquisition: Acquisition | None = None,
) -> LcmResult:
    """Fit one spectrum (e.g. PRESS) with `basis_fids` [n_met, N_b] named `names`.

    `basis_fids` may also be a Basis (its edit-OFF FIDs are used, `names` selects rows).
    `basis_acquisition` gives the basis sampling when it differs from the data's (the basis
    is then resampled in the time domain); None means the basis is sampled like the data.
    config.metabolites is ignored here: `names` says what to fit.
    """
    config = config or LcmConfig()
    names = tuple(names)
    data = _as_fid(fid, acquisition, "spectrum")
    if isinstance(basis_fids, Basis):
        sub = _subset(basis_fids, names)
        cols, basis_acq = sub.off, sub.acquisition
    else:
        cols = np.asarray(basis_fids, dtype=complex)
        basis_acq = basis_acquisition or acquisition
        if cols.ndim != 2 or cols.shape[0] != len(names) or cols.shape[1] != basis_acq.n_points:
            raise DataError(
                f"basis_fids has shape {cols.shape}; expected ({len(names)}, "
                f"{basis_acq.n_points}) for names {names} and the basis sampling"
            )
    cols = resample_fids(cols, basis_acq, acquisition, config.max_f0_mismatch)
    _check_window(acquisition, basis_acq, config)
    return _fit(
        groups={"single": cols},
        observations=[("single", data, ("single",))],
        sub_spectra={"single": (data, ("single",))},
        acq=acquisition,
        names=names,
        config=config,
        individual_shifts=config.individual_shifts != "off",
    )


# ----- input checks ----------------------------------------------------------------------------


def _as_fid(fid, acq: Acquisition, label: str) -> np.ndarray:
    x = np.asarray(getattr(fid, "data", fid))
    x = np.squeeze(x)
    if x.ndim != 1 or x.size != acq.n_points:
        raise DataError(
            f"{label} FID has shape {np.shape(fid)}; expected one averaged FID of "
            f"{acq.n_points} points (combine coils and average transients first)"
        )
    if not np.all(np.isfinite(x)):
        raise DataError(f"{label} FID contains NaN or infinite values")
    if not np.any(x):
        raise DataError(f"{label} FID is all zeros")
    return x.astype(complex)


def _subset(basis: Basis, names: tuple[str, ...]) -> Basis:
    try:
        return basis.subset(names)
    except KeyError as err:
        raise DataError(
            f"{err.args[0]}: simulate a basis with these metabolites or drop them from the "
            f"LCM metabolite list"
        ) from None


def _check_window(acq: Acquisition, basis_acq: Acquisition, config: LcmConfig) -> None:
    lo, hi = config.ppm_range
    for label, a in (("data", acq), ("basis", basis_acq)):
        ppm = a.ppm_axis()
        margin = _WINDOW_MARGIN_POINTS * (ppm[1] - ppm[0])
        if lo < ppm[0] + margin or hi > ppm[-1] - margin:
            raise DataError(
                f"the {label} spectral window {ppm[0]:.2f}-{ppm[-1]:.2f} ppm "
                f"(centre {a.centre_ppm} ppm, {a.spectral_width_hz:.0f} Hz at {a.f0_mhz:.2f} "
                f"MHz) does not cover the fit range {lo}-{hi} ppm: narrow the LCM ppm_range "
                f"or check the acquisition's centre frequency"
            )
    n_win = np.count_nonzero((acq.ppm_axis() >= lo) & (acq.ppm_axis() <= hi))
    if n_win < 32:
        raise DataError(
            f"only {n_win} spectral points fall in {lo}-{hi} ppm: the data sampling is too "
            f"coarse for a linear-combination fit"
        )


def _edited_names(diff_cols, off_cols, names, acq, config) -> tuple[str, ...]:
    window = _window(acq, config)
    e_diff = np.abs(fid_to_spectrum(diff_cols)[:, window]).sum(axis=1)
    e_off = np.abs(fid_to_spectrum(off_cols)[:, window]).sum(axis=1)
    return tuple(n for n, d, o in zip(names, e_diff, e_off, strict=True) if d > 0.05 * o)


def _window(acq: Acquisition, config: LcmConfig) -> np.ndarray:
    ppm = acq.ppm_axis()
    lo, hi = config.ppm_range
    return np.flatnonzero((ppm >= lo) & (ppm <= hi))


# ----- the fit ---------------------------------------------------------------------------------


def _fit(groups, observations, sub_spectra, acq, names, config, individual_shifts) -> LcmResult:
    """Run `_fit_impl` with single-threaded BLAS.

    The matrices are small (a few thousand rows, tens of columns): BLAS threads only add
    contention, measured 5-10x slower on a shared 2-core machine.
    """
    with threadpool_limits(1, user_api="blas"):
        return _fit_impl(groups, observations, sub_spectra, acq, names, config, individual_shifts)


def _fit_impl(
    groups, observations, sub_spectra, acq, names, config, individual_shifts
) -> LcmResult:
    """Build the Problem, initialise, solve, compute CRLBs and assemble the result.

    `individual_shifts`: give every basis column its own shift beyond the common one, with a
    Gaussian prior (SD config.individual_shift_sd_ppm for metabolites, the component's own
    for MM/lipid lines) and a hard limit at INDIVIDUAL_SHIFT_LIMIT prior SDs.
    """
    group_names = list(groups)
    window = _window(acq, config)
    ppm = acq.ppm_axis()[window]
    lo, hi = config.ppm_range

    # Amplitude columns: metabolites, then MM components present in any group of this fit.
    mm = [
        c
        for c in mm_components(config, group_names)
        if config.include_mm and _mm_in_fit(c, group_names, lo, hi)
    ]
    amp_names = tuple(names) + tuple(c.name for c in mm)
    columns = np.zeros((len(group_names), len(amp_names), acq.n_points), complex)
    for g, gname in enumerate(group_names):
        columns[g, : len(names)] = groups[gname]
        for k, c in enumerate(mm):
            if gname in c.groups:
                columns[g, len(names) + k] = c.fid(acq)
    # Scale: data / max |edit-OFF (or single) spectrum in the window|, for conditioning.
    first = observations[0][1]
    scale = float(np.abs(fid_to_spectrum(first)[window]).max())
    if scale == 0:
        raise DataError("the spectrum is zero over the fit window")

    flags: list[str] = []
    sds = {
        name: noise_sd(fid / scale, acq, config.noise_ppm_ranges) for name, fid, _ in observations
    }
    if all(v is not None and v > 0 for v in sds.values()):
        weights = {k: 1.0 / v for k, v in sds.items()}
        noise_known = True
    else:
        weights = dict.fromkeys(sds, 1.0)
        noise_known = False
        flags.append(
            "noise SD not measurable (no signal-free range in the spectral width): "
            "observations weighted equally, CRLBs from the residual alone"
        )
    obs = tuple(
        Observation(
            name,
            fid_to_spectrum(fid / scale)[window],
            weights[name],
            tuple(group_names.index(g) for g in gs),
        )
        for name, fid, gs in observations
    )

    # Individual shifts: every column, metabolites with the configured prior SD, MM/lipid
    # components with their own (their positions are known less well).
    shift_mask = np.ones(len(amp_names), bool) if individual_shifts else None
    shift_sd_ppm = [config.individual_shift_sd_ppm] * len(names) + [c.shift_sd_ppm for c in mm]
    shift_sd_hz = np.array(shift_sd_ppm) * acq.f0_mhz

    prior_rows: list[np.ndarray] = []  # amplitude priors, set once the start is known

    def make_problem(stiffness: float, with_shifts: bool = True) -> Problem:
        baseline = penalty = None
        if config.baseline_knot_spacing_ppm > 0:
            baseline = spline_design(ppm, config.ppm_range, config.baseline_knot_spacing_ppm)
            d2 = second_difference(baseline.shape[1])
            # penalty per fitted point, times the weight of the data it competes with
            mean_w2 = np.mean([o.weight**2 for o in obs])
            penalty = math.sqrt(stiffness * window.size * mean_w2) * d2
        offsets, k_pen = _kernel_offsets(acq, config), 0.0
        if offsets is not None:
            k_pen = config.lineshape_stiffness * sum(
                float(np.sum(np.abs(o.weight * o.data) ** 2)) for o in obs
            )
        return Problem(
            time_s=acq.time_axis(),
            window=window,
            ppm=ppm,
            ppm_ref=0.5 * (lo + hi),
            columns=columns,
            observations=obs,
            baseline=baseline,
            penalty=penalty,
            kernel_offsets_hz=offsets,
            kernel_penalty=k_pen,
            column_shift_mask=shift_mask if with_shifts else None,
            column_shift_sd_hz=shift_sd_hz,
            column_width_sd_hz=config.individual_width_sd_hz,
            amplitude_prior=np.array(prior_rows) if prior_rows else None,
        )

    stiffnesses = _stiffness_candidates(config)
    problem = make_problem(stiffnesses[0])
    y = problem.target()

    # Starting values of each group come from the sub-spectrum holding that group alone.
    init_obs = [
        Observation(name, fid_to_spectrum(fid / scale)[window], 1.0, (group_names.index(gs[0]),))
        for name, (fid, gs) in sub_spectra.items()
        if len(gs) == 1
    ]
    theta0, lower, upper, free = _initial_theta(problem, init_obs, config, len(names))
    if problem.n_cs:
        # Two stages: the common parameters first, then the individual shifts from there.
        # From a start far off (the grid's, e.g. +15 Hz on the Siemens PRESS with PE added)
        # the fit without them finds the true shift; with them it was led to the +20 Hz bound.
        common = make_problem(stiffnesses[0], with_shifts=False)
        n0 = common.n_theta
        pre = _solve(common, y, theta0[:n0], lower[:n0], upper[:n0], free[:n0], config.max_nfev)
        theta0[:n0][free[:n0]] = pre.x
    prior_rows += _amplitude_prior_rows(problem, theta0, y, amp_names, config)
    if prior_rows:
        problem = make_problem(stiffnesses[0])
    sol = _solve(problem, y, theta0, lower, upper, free, config.max_nfev)
    first_converged, first_message = bool(sol.success and sol.status > 0), sol.message
    stiffness = stiffnesses[0]
    if len(stiffnesses) > 1:
        # Baseline stiffness by Akaike's criterion over candidates from stiff to flexible,
        # each fit warm-started from the best so far: a more flexible baseline is kept only
        # when its misfit drop exceeds twice the effective dimensions it adds (LCModel chooses
        # its baseline regularisation by a comparable parsimony criterion, Provencher 1993).
        best = (_aic(problem, sol, theta0, free, y, noise_known), problem, sol, stiffness)
        for s in stiffnesses[1:]:
            cand = make_problem(s)
            warm_nfev = min(_WARM_NFEV, config.max_nfev)
            c_sol = _solve(cand, y, best[2].x, lower, upper, free, warm_nfev, theta0)
            aic = _aic(cand, c_sol, theta0, free, y, noise_known)
            if aic < best[0]:
                best = (aic, cand, c_sol, s)
        _, problem, sol, stiffness = best
    theta = theta0.copy()
    theta[free] = sol.x
    amps, _ = problem.solve_linear(theta, y)
    coef = problem.baseline_coefficients(theta, amps, y)
    converged = first_converged and bool(sol.success and sol.status > 0)
    if not converged:
        flags.append(f"not converged: {sol.message if first_converged else first_message}")

    # Noise of one weighted real residual; never below the measured noise (LCModel inflates
    # CRLBs by misfit, it does not shrink them when the residual is small by chance).
    res_data = y - problem.design(theta) @ amps - problem.z_data @ coef
    n_eff = amps.size + free.sum() + float(np.sum(problem.q_data**2))
    dof = max(res_data.size - n_eff, 1.0)
    sigma2 = float(res_data @ res_data / dof)
    if noise_known:
        sigma2 = max(sigma2, 1.0)
    jac = jacobian(problem, theta, free, amps)
    normal = normal_inverse(problem, jac, free)
    cov = covariance(problem, theta, free, amps, sigma2, jac, normal)
    # the fit's hat matrix, for the autocorrelation a correct model's residual has
    test_whiteness = config.residual_whiteness == "on" or (
        config.residual_whiteness == "auto" and group_names == ["single"]
    )
    hat = residual_basis(problem, jac, free, amps, normal[0]) if test_whiteness else None
    amp_sd = np.sqrt(np.diag(cov)[: amps.size])

    amplitudes = {n: float(a * scale) for n, a in zip(amp_names, amps, strict=True)}
    crlb_abs = {n: float(s * scale) for n, s in zip(amp_names, amp_sd, strict=True)}
    crlb_pct = {
        n: (100.0 * crlb_abs[n] / amplitudes[n]) if amplitudes[n] > 0 else math.inf
        for n in amp_names
    }
    for n in amp_names:
        if amplitudes[n] == 0:
            flags.append(f"{n} amplitude is zero (non-negativity bound active)")

    # Per sub-spectrum spectra over the window, back on the data scale.
    cols_w = problem.group_columns(theta)
    bls = problem.group_baselines(coef)
    data_d, model_d, base_d, res_d, res_sd, noise_d, white_d = {}, {}, {}, {}, {}, {}, {}
    for name, (fid, gs) in sub_spectra.items():
        gi = [group_names.index(g) for g in gs]
        dat = fid_to_spectrum(fid)[window]
        bl = bls[gi].sum(axis=0) * scale
        mod = (cols_w[gi].sum(axis=0).T @ amps) * scale + bl
        data_d[name], model_d[name], base_d[name] = dat, mod, bl
        res_d[name] = dat - mod
        res_sd[name] = float(np.sqrt(np.mean(np.abs(dat - mod) ** 2) / 2))
        nsd = noise_sd(fid, acq, config.noise_ppm_ranges)
        noise_d[name] = nsd
        if nsd and res_sd[name] > RESIDUAL_NOISE_FLAG * nsd:
            flags.append(
                f"{name}: residual SD is {res_sd[name] / nsd:.2f} x the noise SD "
                f"(model misfit: check basis, baseline, artefacts)"
            )
        if hat is None:
            continue
        # what a correct model's residual looks like: the fit's own degrees of freedom
        # correlate neighbouring points a little (baseline above all)
        coeffs = _observation_coefficients(obs, [group_names.index(g) for g in gs])
        expected = expected_residual_autocorrelation(problem, hat, coeffs, WHITENESS_LAGS)
        white_d[name] = whiteness(res_d[name], expected=expected)
        if white_d[name]["p_value"] < WHITENESS_FLAG_P:
            flags.append(
                f"{name}: residual not white (Ljung-Box p = {white_d[name]['p_value']:.1e}, "
                f"lag-1 autocorrelation {white_d[name]['lag1_acf']:.2f}): structure left"
            )

    idx = theta_index(len(group_names))
    flags += _bound_flags(theta, lower, upper, free, group_names, idx)
    return LcmResult(
        names=amp_names,
        amplitudes=amplitudes,
        crlb_abs=crlb_abs,
        crlb_percent=crlb_pct,
        lorentz_hz=float(theta[idx["lorentz_hz"]]),
        gauss_hz=float(math.sqrt(max(theta[idx["gauss_var_hz2"]], 0.0))),
        shift_hz={g: float(theta[idx[f"shift_hz_{i}"]]) for i, g in enumerate(group_names)},
        phase0_deg={
            g: float(np.rad2deg(_wrap(theta[idx[f"phase0_rad_{i}"]])))
            for i, g in enumerate(group_names)
        },
        phase1_deg_per_ppm={
            g: float(np.rad2deg(theta[idx[f"phase1_rad_per_ppm_{i}"]]))
            for i, g in enumerate(group_names)
        },
        ppm=ppm,
        data=data_d,
        model=model_d,
        baseline=base_d,
        residual=res_d,
        residual_sd=res_sd,
        noise_sd=noise_d,
        converged=converged,
        flags=tuple(flags),
        nfev=int(sol.nfev),
        amplitude_covariance=cov[: amps.size, : amps.size] * scale**2,
        source=dict.fromkeys(amp_names, "+".join(group_names)),
        baseline_stiffness=float(stiffness),
        lineshape_offsets_hz=problem.kernel(theta)[0] if problem.n_k else None,
        lineshape_kernel=problem.kernel(theta)[1] if problem.n_k else None,
        individual_shift_hz={
            amp_names[k]: float(problem.column_shifts_hz(theta)[k]) for k in problem.shifted
        },
        individual_width_hz={
            amp_names[k]: float(problem.column_widths_hz(theta)[k])
            for k in (problem.shifted if problem.n_cw else ())
        },
        residual_whiteness=white_d,
    )


def _observation_coefficients(obs, group_idx: list[int]) -> np.ndarray:
    """Return c [n_obs] with sum_o c_o (observation o's weighted rows) = the sub-spectrum
    made of groups `group_idx`, on the weighted scale of each observation divided out
    (c_o = combination coefficient / weight_o). E.g. OFF = obs "off"; DIFF = "on" - "off"."""
    n_groups = 1 + max(max(o.groups) for o in obs)
    member = np.zeros((len(obs), n_groups))
    for i, o in enumerate(obs):
        member[i, list(o.groups)] = 1.0
    target = np.zeros(n_groups)
    target[group_idx] = 1.0
    comb, *_ = np.linalg.lstsq(member.T, target, rcond=None)
    return np.array([c / o.weight for c, o in zip(comb, obs, strict=True)])


def _amplitude_prior_rows(problem, theta0, y, amp_names, config) -> list[np.ndarray]:
    """Return the rows (a_k - r sum(a_ref)) / (SD sum(a_ref_start)) of config.amplitude_priors.

    The ratio prior is made linear in the amplitudes by fixing its scale at the reference
    amplitude of the fit without priors at the start values `theta0` (the fit's objective
    stays one fixed function). Entries naming an amplitude that is not fitted are skipped,
    as are entries whose reference is zero at the start (no scale to put the prior on).
    """
    active = [
        e
        for e in config.amplitude_priors
        if e[0] in amp_names and all(r in amp_names for r in e[1])
    ]
    if not active:
        return []
    start, _ = problem.solve_linear(theta0, y)
    rows = []
    for name, refs, ratio, sd in active:
        ref_start = sum(start[amp_names.index(r)] for r in refs)
        if not ref_start > 0:
            continue
        row = np.zeros(len(amp_names))
        row[amp_names.index(name)] = 1.0
        for r in refs:
            row[amp_names.index(r)] -= ratio
        rows.append(row / (sd * ref_start))
    return rows


def _solve(problem, y, theta0, lower, upper, free, max_nfev, template=None):
    """Return scipy's least_squares result for the free nonlinear parameters of `problem`.

    `theta0` holds the start of the free entries (or, with `template`, is the free vector
    itself and `template` gives the fixed entries).
    """
    theta = (theta0 if template is None else template).copy()
    x0 = theta0[free] if template is None else np.asarray(theta0)
    last: dict[str, np.ndarray] = {}

    def residual(x_free: np.ndarray) -> np.ndarray:
        theta[free] = x_free
        amps, res = problem.solve_linear(theta, y)
        last["x"], last["amps"] = x_free.copy(), amps
        return res

    def jac(x_free: np.ndarray) -> np.ndarray:
        theta[free] = x_free
        if "x" not in last or not np.array_equal(last["x"], x_free):
            residual(x_free)
        return problem.varpro_jacobian(theta, last["amps"])[:, free]

    return least_squares(
        residual,
        x0,
        jac=jac,
        bounds=(lower[free], upper[free]),
        method="trf",
        x_scale="jac",
        max_nfev=max_nfev,
        ftol=_TOL,
        xtol=_TOL,
        gtol=_TOL,
    )


def _kernel_offsets(acq: Acquisition, config: LcmConfig) -> np.ndarray | None:
    """Return the offsets (Hz) of the free kernel points j != 0, or None for "voigt"."""
    if config.lineshape != "free":
        return None
    df_hz = 1.0 / (acq.n_points * acq.dwell_s)
    half = max(1, round(config.lineshape_halfwidth_ppm * acq.f0_mhz / df_hz))
    j = np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)])
    return j * df_hz


def _stiffness_candidates(config: LcmConfig) -> tuple[float, ...]:
    """Return baseline stiffnesses to try, stiffest first (one when the baseline is off)."""
    if config.baseline_knot_spacing_ppm <= 0 or config.baseline_stiffness == 0:
        return (config.baseline_stiffness,)
    return tuple(
        config.baseline_stiffness * 10.0**-k for k in range(config.baseline_stiffness_steps)
    )


def _aic(problem: Problem, sol, template, free, y, noise_known: bool) -> float:
    """Return Akaike's criterion of a fit: misfit + 2 x effective number of parameters.

    The penalised baseline counts by its effective dimension, the trace of its hat matrix
    (Hastie & Tibshirani 1990), the sum of squares of the data rows of its Q factor. With a
    measured noise SD the weighted misfit is a chi-square; otherwise n log(RSS / n).
    """
    theta = template.copy()
    theta[free] = sol.x
    amps, _ = problem.solve_linear(theta, y)
    coef = problem.baseline_coefficients(theta, amps, y)
    res = y - problem.design(theta) @ amps - problem.z_data @ coef
    k = float(np.sum(problem.q_data**2)) + np.count_nonzero(amps) + free.sum()
    rss = float(res @ res)
    misfit = rss if noise_known else res.size * math.log(max(rss, 1e-300) / res.size)
    return misfit + 2.0 * k


def mm_components(config: LcmConfig, group_names) -> tuple[MMComponent, ...]:
    """Return the MM/lipid components a fit may use (before the fit-window check).

    MEGA-PRESS groups ("off", "diff") always use the MM_COMPONENTS lines. A single spectrum
    uses config.mm_set: "gaussian" (the "single" lines of MM_COMPONENTS) or "lcmodel"
    (LCModel's short-TE MM/lipid set, SHORT_TE_COMPONENTS).
    """
    if "single" in group_names and config.mm_set == "lcmodel":
        return SHORT_TE_COMPONENTS
    return MM_COMPONENTS


def _mm_in_fit(c: MMComponent, group_names, lo: float, hi: float) -> bool:
    span_lo, span_hi = c.span_ppm()
    return any(g in c.groups for g in group_names) and span_lo < hi and span_hi > lo


def _wrap(rad: float) -> float:
    return (rad + np.pi) % (2 * np.pi) - np.pi


def _initial_theta(problem: Problem, init_obs, config: LcmConfig, n_met: int):
    """Return (theta0, lower, upper, free mask): shifts by correlation, phases by a linear fit.

    Starting values use the first `n_met` (metabolite) columns only: broad MM components
    would let a wrong shift or phase look acceptable.
    """
    n_g = problem.n_groups
    n = problem.n_theta  # kernel values (if any) start at zero: a delta, pure Voigt
    theta0 = np.zeros(n)
    theta0[0] = 4.0
    lower = np.full(n, -np.inf)
    upper = np.full(n, np.inf)
    lower[0:2] = 0.0
    upper[0], upper[1] = config.max_lorentz_hz, config.max_gauss_hz**2
    free = np.ones(n, bool)
    ph1_max = np.deg2rad(config.max_phase1_deg_per_ppm)
    for g in range(n_g):
        base = N_SHARED + N_PER_GROUP * g
        lower[base], upper[base] = -config.max_shift_hz, config.max_shift_hz
        lower[base + 2], upper[base + 2] = -ph1_max, ph1_max
        free[base + 2] = config.fit_phase1
    # The first group (edit-OFF or the single spectrum) searches the whole shift range; later
    # groups (DIFF: same scan) search near it.
    centre, half = 0.0, config.max_shift_hz
    for g in range(n_g):
        o = next(o for o in init_obs if o.groups == (g,))
        base = N_SHARED + N_PER_GROUP * g
        theta0[base], theta0[base + 1], theta0[0] = _initial_shift_phase(
            problem, g, o, n_met, centre, half, config.max_shift_hz
        )
        centre, half = theta0[base], 2 * _INIT_SHIFT_STEP_HZ
    if problem.n_cs:  # individual shifts: prior SD, and a hard limit at INDIVIDUAL_SHIFT_LIMIT SDs
        cs = slice(problem.cs_start, problem.cs_start + problem.n_cs)
        lower[cs] = -INDIVIDUAL_SHIFT_LIMIT * problem.shift_sd_hz
        upper[cs] = INDIVIDUAL_SHIFT_LIMIT * problem.shift_sd_hz
    if problem.n_cw:  # individual widths: extra broadening only, up to the same limit
        cw = slice(problem.cw_start, problem.cw_start + problem.n_cw)
        lower[cw] = 0.0
        upper[cw] = INDIVIDUAL_SHIFT_LIMIT * problem.column_width_sd_hz
    theta0 = np.clip(theta0, lower, upper)
    return theta0, lower, upper, free


def _initial_shift_phase(
    problem: Problem, g: int, o: Observation, n_met: int, centre_hz, half_hz, max_shift_hz
):
    """Return (shift_hz, phase0, lorentz_hz) to start group g from, fitted to observation o.

    Shifts from centre_hz - half_hz to centre_hz + half_hz (within +-max_shift_hz) are tried.

    A grid over shift and Lorentzian width ranks candidates by a complex linear fit, whose
    cost does not depend on the phase; the phase then comes from that fit, checked against
    its opposite with the non-negative fit (mixed-sign amplitudes can flip it). The
    _INIT_CANDIDATES best grid points are re-ranked by that non-negative fit: with free
    complex amplitudes a larger basis can fit a wrong shift well (measured: adding PE to the
    16-metabolite basis sent the real Siemens PRESS fit to the +20 Hz shift bound, residual
    8.8 x noise, without this re-ranking).
    """
    single = Problem(
        time_s=problem.time_s,
        window=problem.window,
        ppm=problem.ppm,
        ppm_ref=problem.ppm_ref,
        columns=problem.columns[g : g + 1, :n_met],
        observations=(Observation(o.name, o.data, o.weight, (0,)),),
        baseline=problem.baseline,
        penalty=problem.penalty,
    )
    y = single.target()
    th = np.zeros(N_SHARED + N_PER_GROUP)
    n_half = math.ceil(half_hz / _INIT_SHIFT_STEP_HZ)
    shifts = centre_hz + _INIT_SHIFT_STEP_HZ * np.arange(-n_half, n_half + 1)
    shifts = np.clip(shifts, -max_shift_hz, max_shift_hz)
    grid = []
    for lw in _INIT_LORENTZ_HZ:
        for shift in np.unique(shifts):
            th[0], th[N_SHARED] = lw, shift
            cost, ph = single.complex_fit(th, y)
            grid.append((cost, shift, ph, lw))
    grid.sort(key=lambda c: c[0])
    best = (np.inf, 0.0, 0.0, 0.0)
    for _, shift, ph, lw in grid[:_INIT_CANDIDATES]:
        th[0], th[N_SHARED] = lw, shift
        for cand in (ph, ph + np.pi):
            th[N_SHARED + 1] = _wrap(cand)
            _, r = single.solve_linear(th, y)
            if float(r @ r) < best[0]:
                best = (float(r @ r), shift, th[N_SHARED + 1], lw)
    return best[1], best[2], best[3]


def _bound_flags(theta, lower, upper, free, group_names, idx) -> list[str]:
    out = []
    span = upper - lower
    for name, j in idx.items():
        if not free[j] or not np.isfinite(span[j]):
            continue
        tol = 1e-4 * span[j]
        if name.startswith(("lorentz", "gauss")) and theta[j] <= lower[j] + tol:
            continue  # no extra broadening is a legitimate answer
        if theta[j] <= lower[j] + tol or theta[j] >= upper[j] - tol:
            g = name.rsplit("_", 1)[-1]
            label = name if not g.isdigit() else f"{name[: -len(g) - 1]} ({group_names[int(g)]})"
            out.append(f"{label} at its bound ({theta[j]:.3g}): fit may be unreliable")
    return out


def _merge(r_off: LcmResult, r_diff: LcmResult, from_diff: tuple[str, ...]) -> LcmResult:
    """Combine separate OFF and DIFF fits: `from_diff` amplitudes from the DIFF fit."""
    names = r_off.names + tuple(n for n in r_diff.names if n not in r_off.names)
    take = {n: (r_diff if (n in from_diff and n in r_diff.names) else r_off) for n in names}
    take = {n: (r if n in r.names else r_diff) for n, r in take.items()}
    cov = np.diag([take[n].crlb_abs[n] ** 2 for n in names])
    return LcmResult(
        names=names,
        amplitudes={n: take[n].amplitudes[n] for n in names},
        crlb_abs={n: take[n].crlb_abs[n] for n in names},
        crlb_percent={n: take[n].crlb_percent[n] for n in names},
        lorentz_hz=r_off.lorentz_hz,
        gauss_hz=r_off.gauss_hz,
        shift_hz={**r_off.shift_hz, **r_diff.shift_hz},
        phase0_deg={**r_off.phase0_deg, **r_diff.phase0_deg},
        phase1_deg_per_ppm={**r_off.phase1_deg_per_ppm, **r_diff.phase1_deg_per_ppm},
        ppm=r_off.ppm,
        data={**r_off.data, **r_diff.data},
        model={**r_off.model, **r_diff.model},
        baseline={**r_off.baseline, **r_diff.baseline},
        residual={**r_off.residual, **r_diff.residual},
        residual_sd={**r_off.residual_sd, **r_diff.residual_sd},
        noise_sd={**r_off.noise_sd, **r_diff.noise_sd},
        residual_whiteness={**r_off.residual_whiteness, **r_diff.residual_whiteness},
        converged=r_off.converged and r_diff.converged,
        flags=tuple(f"off fit: {f}" for f in r_off.flags)
        + tuple(f"diff fit: {f}" for f in r_diff.flags),
        nfev=r_off.nfev + r_diff.nfev,
        amplitude_covariance=cov,
        source={n: ("diff" if take[n] is r_diff else "off") for n in names},
    )
