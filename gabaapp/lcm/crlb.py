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
    problem: Problem,
    theta: np.ndarray,
    free: np.ndarray,
    amps: np.ndarray,
    sigma2: float,
    jac: np.ndarray | None = None,
    normal: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Return the CRLB covariance of [amps, baseline, free theta] at the solution.

    F = J^T J / sigma2 is the Fisher information of the data; the baseline penalty adds
    P = z_pen^T z_pen / sigma2 to the normal matrix of the penalised fit, whose covariance is
    (F + P)^-1 F (F + P)^-1 (the information bound of the penalised estimator; with P = 0 it
    is F^-1, the plain CRLB). `sigma2` is the variance of one weighted real residual (1 when
    the weights are exact inverse noise SDs). A direction the data and penalty do not
    determine gives infinite variance to the parameters loading on it, never a small number.
    `jac`, `normal`: `jacobian(problem, theta, free, amps)` and `normal_inverse(problem,
    jac, free)` when the caller has them already.
    """
    jac = jacobian(problem, theta, free, amps) if jac is None else jac
    inv, loads = normal_inverse(problem, jac, free) if normal is None else normal
    cov = inv @ (jac.T @ jac) @ inv * sigma2
    cov[loads, :] = np.inf
    cov[:, loads] = np.inf
    return cov


def normal_inverse(problem: Problem, jac: np.ndarray, free: np.ndarray, keep=None):
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


def residual_basis(
    problem: Problem,
    jac: np.ndarray,
    free: np.ndarray,
    amps: np.ndarray,
    full_inverse: np.ndarray | None = None,
):
    """Return (J [n_rows, p], (J^T J + penalties)^-1 [p, p], J^T J) of the fit's linearised
    hat matrix H = J (J^T J + penalties)^-1 J^T, from `jacobian(problem, theta, free, amps)`.

    Amplitudes held at zero by the non-negativity bound are not free: left out of J.
    Computed once per fit, shared by its sub-spectra. `full_inverse`: that of all
    parameters (`normal_inverse(problem, jac, free)[0]`), reused when every amplitude is free.
    """
    keep = np.ones(jac.shape[1], bool)
    keep[: problem.n_amp] = amps > 0
    if full_inverse is not None and keep.all():
        inv = full_inverse
    else:
        inv, _ = normal_inverse(problem, jac, free, keep)
    jk = jac[:, keep]
    return jk, inv, jk.T @ jk


def _combination(problem: Problem, jk: np.ndarray, coeffs) -> tuple[np.ndarray, np.ndarray]:
    """Return (Re, Im) of G J [n_win, p] for x = sum_o coeffs[o] (Re_o + i Im_o) (coeffs
    real), as two contiguous real arrays."""
    n = problem.n_win
    re_part = np.zeros((n, jk.shape[1]))
    im_part = np.zeros((n, jk.shape[1]))
    for o, c in enumerate(coeffs):
        re_part += c * jk[2 * o * n : (2 * o + 1) * n]
        im_part += c * jk[(2 * o + 1) * n : (2 * o + 2) * n]
    return re_part, im_part


def residual_map(problem: Problem, basis, coeffs) -> np.ndarray:
    """Return M = G (I - H) [n_win, n_rows] (complex): the linearised map from the weighted
    data noise (unit variance per row) to the complex residual spectrum
    x = sum_o coeffs[o] (Re_o + i Im_o) (e.g. 1 / weight for one observation; ON - OFF for
    DIFF). `basis`: `residual_basis(...)`. A correct model's residual has covariance
    M M^H. Dense: for checks; the fit uses `expected_residual_autocorrelation`."""
    jk, inv, _ = basis
    n = problem.n_win
    g = np.zeros((n, problem.n_rows), complex)
    for o, c in enumerate(coeffs):
        g[:, 2 * o * n : (2 * o + 1) * n] += c * np.eye(n)
        g[:, (2 * o + 1) * n : (2 * o + 2) * n] += 1j * c * np.eye(n)
    gj_re, gj_im = _combination(problem, jk, coeffs)
    return g - ((gj_re + 1j * gj_im) @ inv) @ jk.T


def expected_residual_autocorrelation(problem: Problem, basis, coeffs, lags: int) -> np.ndarray:
    """Return E[rho_1..rho_lags] [lags] of the residual spectrum x = M e a correct model
    leaves (white weighted noise e, M of `residual_map`), without forming M.

    With GJ = G J and B = GJ (J^T J + penalties)^-1, M = G - B J^T. G's rows t and t+k share
    no column (k >= 1) and G G^H = 2 sum_o coeffs[o]^2 I, so sum_t M[t+k] . conj(M[t]) is
    -sum_t conj(B[t]) . GJ[t+k] - sum_t B[t+k] . conj(GJ[t]) + sum_t B[t+k] J^T J B[t]^H:
    O(n p) per lag instead of O(n n_rows).
    """
    jk, inv, jtj = basis
    g_re, g_im = _combination(problem, jk, coeffs)
    b_re, b_im = g_re @ inv, g_im @ inv
    k_re, k_im = b_re @ jtj, b_im @ jtj
    n = problem.n_win

    def dot(u_re, u_im, v_re, v_im, k: int) -> complex:
        """sum_t conj(u[t]) . v[t+k], in real arithmetic on contiguous row blocks."""
        m = n - k
        ur, ui, vr, vi = u_re[:m].ravel(), u_im[:m].ravel(), v_re[k:].ravel(), v_im[k:].ravel()
        return complex(ur @ vr + ui @ vi, ur @ vi - ui @ vr)

    energy = (
        2.0 * n * float(np.sum(np.asarray(coeffs) ** 2))
        - 2.0 * dot(b_re, b_im, g_re, g_im, 0).real
        + dot(b_re, b_im, k_re, k_im, 0).real
    )
    out = np.array(
        [
            -dot(b_re, b_im, g_re, g_im, k)
            - dot(g_re, g_im, b_re, b_im, k)
            + dot(b_re, b_im, k_re, k_im, k)
            for k in range(1, lags + 1)
        ]
    )
    return out / energy


def theta_index(n_groups: int) -> dict[str, int]:
    """Return the position of each named nonlinear parameter in the theta vector."""
    idx = {"lorentz_hz": 0, "gauss_var_hz2": 1}
    for g in range(n_groups):
        base = N_SHARED + N_PER_GROUP * g
        idx[f"shift_hz_{g}"] = base
        idx[f"phase0_rad_{g}"] = base + 1
        idx[f"phase1_rad_per_ppm_{g}"] = base + 2
    return idx
