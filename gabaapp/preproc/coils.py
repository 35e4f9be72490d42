"""Receive-coil combination of single-voxel FIDs.

Arrays: coil axis first, time last: `[n_coils, ..., n_points]`. One coil passes through
unchanged (weight 1), so already-combined data need no special case.

* "wsvd": noise-whitened singular value decomposition of a reference (the water reference
  when present, else the average of the metabolite transients). The dominant singular vector
  of the whitened reference estimates the coil sensitivities; combining with
  w = Psi^-1 s gives the maximum-SNR combination for correlated coil noise (Roemer et al. 1990,
  MRM 16:192; Bydder et al. 2008, Magn Reson Imaging 26:847; Rodgers & Robson 2010, MRM 63:881).
* "signal": the classic first-point weighting w_c = s_c(0) / sigma_c^2 with s_c(0) the
  reference FID's first points (Hall et al. 2014, NeuroImage 86:35, "S/N^2" weighting),
  ignoring noise correlations.

The global phase of the weights makes the combined reference's first point real and positive
(a water reference is then close to absorption phase).
"""

from __future__ import annotations

import logging

import numpy as np

from gabaapp.errors import DataError

logger = logging.getLogger(__name__)

# Fraction of the FID at its end treated as noise (signals have decayed there).
NOISE_TAIL_FRACTION = 0.2
# Points at the start of the FID used for the first-point amplitude/phase (more would mix in
# the fast phase evolution of off-resonance lines).
FIRST_POINTS = 1


def noise_covariance(data: np.ndarray) -> np.ndarray:
    """Return the coil noise covariance [n_coils, n_coils] from the FID tails of `data`.

    `data` is [n_coils, ..., n_points]; the last NOISE_TAIL_FRACTION of every FID, pooled over
    the other axes, serves as noise after removing each FID's tail mean (slow residues of
    signal). Non-finite FIDs are ignored.
    """
    n_coils, n_points = data.shape[0], data.shape[-1]
    n_tail = min(n_points, max(8, int(round(NOISE_TAIL_FRACTION * n_points))))
    tail = data[..., n_points - n_tail :].reshape(n_coils, -1, n_tail)
    finite = np.all(np.isfinite(tail), axis=(0, 2))
    tail = tail[:, finite]
    tail = tail - tail.mean(axis=-1, keepdims=True)
    flat = tail.reshape(n_coils, -1)
    if flat.shape[1] < n_coils:
        raise DataError("too few finite points to estimate the coil noise; check the data")
    return flat @ flat.conj().T / flat.shape[1]


def _reference(ref: np.ndarray) -> np.ndarray:
    """Return the reference [n_coils, n_points]: average of finite FIDs over middle axes."""
    n_coils, n_points = ref.shape[0], ref.shape[-1]
    flat = ref.reshape(n_coils, -1, n_points)
    finite = np.all(np.isfinite(flat), axis=(0, 2))
    if not finite.any():
        raise DataError("the coil-combination reference holds no finite FID; check the data")
    return flat[:, finite].mean(axis=1)


def coil_weights(ref: np.ndarray, noise_cov: np.ndarray, method: str = "wsvd") -> np.ndarray:
    """Return complex coil weights [n_coils] such that combined = sum_c conj(w_c) x_c.

    `ref` is the reference [n_coils, ..., n_points] (water reference or metabolite data),
    `noise_cov` the coil noise covariance (`noise_covariance`). Weights are scaled so that
    sum_c conj(w_c) s_c = ||s|| for the estimated sensitivity s (the combined signal keeps the
    size of a root-sum-of-squares combination) and phased so the combined reference starts real
    and positive.
    """
    avg = _reference(ref)
    n_coils = avg.shape[0]
    if n_coils == 1:
        return np.ones(1, dtype=complex)
    if not np.all(np.isfinite(noise_cov)) or np.trace(noise_cov).real <= 0:
        noise_cov = np.eye(n_coils)  # noise-free (simulated) data: treat coils as equal
    if method == "wsvd":
        chol = np.linalg.cholesky(noise_cov + 1e-12 * np.trace(noise_cov).real * np.eye(n_coils))
        whitened = np.linalg.solve(chol, avg)
        u, _, _ = np.linalg.svd(whitened, full_matrices=False)
        s_white = u[:, 0]
        # w = Psi^-1 s with s = L s_white  ->  w = L^-H s_white.
        weights = np.linalg.solve(chol.conj().T, s_white)
        sens = chol @ s_white
    elif method == "signal":
        sens = avg[:, :FIRST_POINTS].mean(axis=1)
        weights = sens / np.maximum(np.real(np.diag(noise_cov)), np.finfo(float).tiny)
    else:
        raise ValueError(f"unknown coil combination method {method!r}")
    gain = np.vdot(weights, sens)  # sum conj(w) s
    weights = weights * (np.linalg.norm(sens) / np.abs(gain))
    first = np.vdot(weights, avg[:, :FIRST_POINTS].mean(axis=1))
    if abs(first) > 0:
        weights = weights * (first / abs(first))  # conj(w) picks up exp(-i angle(first))
    return weights


def combine_coils(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return sum_c conj(w_c) data[c], shape data.shape[1:] (`data` is [n_coils, ..., n_points])."""
    if data.shape[0] != weights.shape[0]:
        raise DataError(
            f"{data.shape[0]} coils in the data but {weights.shape[0]} weights; the water "
            "reference must come from the same coil array"
        )
    flat = data.reshape(data.shape[0], -1)
    # Match the data's precision so numpy does not upcast (copy) the whole array.
    w = weights.conj().astype(np.result_type(data.dtype, np.complex64), copy=False)
    return (w @ flat).reshape(data.shape[1:])
