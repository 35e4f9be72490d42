"""Cramér-Rao lower bounds from the Fisher information at the fitted solution.

The Fisher matrix covers every fitted parameter, linear and nonlinear: amplitudes, baseline
spline coefficients, Voigt widths, shifts and phases (Cavassila et al., NMR Biomed. 14:278,
2001: CRLBs that ignore the nonlinear parameters are too optimistic). The baseline's
second-difference penalty makes the baseline estimable: the bound is that of the penalised
estimator actually used (sandwich form), which equals the plain CRLB without a penalty.
"""

from __future__ import annotations

import numpy as np

from gabaapp.lcm.model import N_PER_GROUP, N_SHARED, Problem


def jacobian(problem: Problem, theta: np.ndarray, free: np.ndarray, amps: np.ndarray):
    """Return the real Jacobian [n_rows, n_amp + n_bl + n_free] of the weighted model."""
    d_theta = problem.model_derivatives(theta, amps)[:, free]
    return np.hstack([problem.design(theta), problem.z_data, d_theta])


def covariance(
    problem: Problem, theta: np.ndarray, free: np.ndarray, amps: np.ndarray, sigma2: float
) -> np.ndarray:
    """Return the CRLB covariance of [amps, baseline, free theta] at the solution.

    F = J^T J / sigma2 is the Fisher information of the data; the baseline penalty adds
    P = z_pen^T z_pen / sigma2 to the normal matrix of the penalised fit, whose covariance is
    (F + P)^-1 F (F + P)^-1 (the information bound of the penalised estimator; with P = 0 it
    is F^-1, the plain CRLB). `sigma2` is the variance of one weighted real residual (1 when
    the weights are exact inverse noise SDs). A direction the data and penalty do not
    determine gives infinite variance to the parameters loading on it, never a small number.
    """
    jac = jacobian(problem, theta, free, amps)
    inv, loads = _normal_inverse(problem, jac, free)
    cov = inv @ (jac.T @ jac) @ inv * sigma2
    cov[loads, :] = np.inf
    cov[:, loads] = np.inf
    return cov


def _normal_inverse(problem: Problem, jac: np.ndarray, free: np.ndarray, keep=None):
    """Return ((J^T J + penalties)^-1 (pseudo-inverse), mask of undetermined parameters).

    Penalties: the baseline's second differences, amplitude priors, and the theta penalties
    (line-shape smoothness, shift priors), all in units of one weighted residual. `keep`
    (bool mask over J's columns) restricts the matrix to those parameters (the others held
    fixed); J is then J[:, keep].
    """
    normal = jac.T @ jac
    if problem.n_bl:
        sl = slice(problem.n_amp, problem.n_amp + problem.n_bl)
        normal[sl, sl] += problem.z_pen.T @ problem.z_pen
    if problem.amplitude_prior is not None:  # soft constraints on amplitudes, likewise
        sl = slice(0, problem.n_amp)
        normal[sl, sl] += problem.amplitude_prior.T @ problem.amplitude_prior
    if problem.n_pen:  # line-shape smoothness and shift priors act like the baseline's penalty
        sl = slice(problem.n_amp + problem.n_bl, None)
        pen = problem.kernel_pen_matrix[:, free]
        normal[sl, sl] += pen.T @ pen
    if keep is not None:
        normal = normal[np.ix_(keep, keep)]
    # Scale to unit diagonal before inverting: parameters span many orders of magnitude.
    d = np.sqrt(np.clip(np.diag(normal), 1e-300, None))
    w, v = np.linalg.eigh(normal / np.outer(d, d))
    tiny = w < 1e-12 * w.max()
    w_inv = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, w))
    inv = (v * w_inv) @ v.T / np.outer(d, d)
    loads = (v[:, tiny] ** 2).sum(axis=1) > 1e-6 if tiny.any() else np.zeros(len(w), bool)
    return inv, loads


def residual_map(
    problem: Problem,
    theta: np.ndarray,
    free: np.ndarray,
    amps: np.ndarray,
    coeffs: np.ndarray,
) -> np.ndarray:
    """Return M = G (I - H) [n_win, n_rows] (complex): the linearised map from the weighted
    data noise (unit variance per row) to a complex residual spectrum.

    G combines the observations' rows into that spectrum, x = sum_o coeffs[o] (Re_o + i Im_o)
    (e.g. 1 / weight for one observation; ON - OFF for DIFF); H = J (J^T J + penalties)^-1
    J^T is the fit's hat matrix. The residual a correct model leaves has covariance M M^H:
    fewer degrees of freedom and slightly correlated neighbours (the baseline absorbs the
    slowest components). Amplitudes held at zero by the non-negativity bound are not free
    and are left out of J.
    """
    jac = jacobian(problem, theta, free, amps)
    keep = np.ones(jac.shape[1], bool)
    keep[: problem.n_amp] = amps > 0
    inv, _ = _normal_inverse(problem, jac, free, keep)
    jk = jac[:, keep]
    n = problem.n_win
    g = np.zeros((n, problem.n_rows), complex)
    gj = np.zeros((n, jk.shape[1]), complex)
    for o, c in enumerate(coeffs):
        if c == 0:
            continue
        re, im = slice(2 * o * n, (2 * o + 1) * n), slice((2 * o + 1) * n, (2 * o + 2) * n)
        g[:, re] += c * np.eye(n)
        g[:, im] += 1j * c * np.eye(n)
        gj += c * (jk[re] + 1j * jk[im])
    return g - (gj @ inv) @ jk.T


def theta_index(n_groups: int) -> dict[str, int]:
    """Return the position of each named nonlinear parameter in the theta vector."""
    idx = {"lorentz_hz": 0, "gauss_var_hz2": 1}
    for g in range(n_groups):
        base = N_SHARED + N_PER_GROUP * g
        idx[f"shift_hz_{g}"] = base
        idx[f"phase0_rad_{g}"] = base + 1
        idx[f"phase1_rad_per_ppm_{g}"] = base + 2
    return idx
