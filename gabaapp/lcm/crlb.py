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
    fisher = jac.T @ jac / sigma2
    normal = fisher.copy()
    if problem.n_bl:
        sl = slice(problem.n_amp, problem.n_amp + problem.n_bl)
        normal[sl, sl] += problem.z_pen.T @ problem.z_pen / sigma2
    if problem.amplitude_prior is not None:  # soft constraints on amplitudes, likewise
        sl = slice(0, problem.n_amp)
        normal[sl, sl] += problem.amplitude_prior.T @ problem.amplitude_prior / sigma2
    if problem.n_pen:  # line-shape smoothness and shift priors act like the baseline's penalty
        sl = slice(problem.n_amp + problem.n_bl, None)
        pen = problem.kernel_pen_matrix[:, free]
        normal[sl, sl] += pen.T @ pen / sigma2
    # Scale to unit diagonal before inverting: parameters span many orders of magnitude.
    d = np.sqrt(np.clip(np.diag(normal), 1e-300, None))
    w, v = np.linalg.eigh(normal / np.outer(d, d))
    tiny = w < 1e-12 * w.max()
    w_inv = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, w))
    inv = (v * w_inv) @ v.T / np.outer(d, d)
    cov = inv @ fisher @ inv
    if tiny.any():
        loads = (v[:, tiny] ** 2).sum(axis=1) > 1e-6
        cov[loads, :] = np.inf
        cov[:, loads] = np.inf
    return cov


def theta_index(n_groups: int) -> dict[str, int]:
    """Return the position of each named nonlinear parameter in the theta vector."""
    idx = {"lorentz_hz": 0, "gauss_var_hz2": 1}
    for g in range(n_groups):
        base = N_SHARED + N_PER_GROUP * g
        idx[f"shift_hz_{g}"] = base
        idx[f"phase0_rad_{g}"] = base + 1
        idx[f"phase1_rad_per_ppm_{g}"] = base + 2
    return idx
