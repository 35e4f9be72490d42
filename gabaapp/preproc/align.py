"""Frequency and phase alignment of transients by spectral registration.

Model: a transient x(t) equals the reference r(t) shifted by f Hz and rotated by phi rad,
x(t) = r(t) exp(i (2 pi f t + phi)); the estimate (f, phi) minimises the residual between r and
x exp(-i (2 pi f t + phi)) over the first `time_s` of the FID (spectral registration, Near et
al. 2015, MRM 73:44). The residual is summed over the spectral bins of a ppm band (1.8-4.2 ppm
for transients), with the band fixed in the reference frame, so residual water, lipids and
baseline outside it do not enter; over all bins this is, by Parseval, Near's time-domain
residual. The correction multiplies x by exp(-i (2 pi f t + phi)).

The robust variant follows the ideas of Mikkelsen et al. 2020 (NMR Biomed 33:e4368, "robust
spectral registration"): band-limited residual, a robust reference (complex median first, then
a similarity-weighted mean of the aligned transients, which down-weights motion-corrupted
ones) and a second registration. Plain "sr" uses the mean of the transients as reference.

Solved by Newton iterations (Gauss-Newton where the Hessian is not positive definite) for all
transients at once, started from the peak of the cross-correlation of in-band magnitude
spectra (so drifts beyond a linewidth converge). Arrays: [n_transients, n_points], time last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len

from gabaapp.spectra import Acquisition

logger = logging.getLogger(__name__)

GN_ITERATIONS = 8
# Stop when every transient's update is below these (far below the noise-limited precision).
TOL_HZ = 1e-4
TOL_RAD = 1e-5


def _modulation(freq_hz: np.ndarray, phase_rad: np.ndarray, n: int, dwell_s: float):
    """Return exp(-i (2 pi f t_k + phi)) [N, n] for t_k = k dwell_s.

    Built as an outer product over k = q + r (q a multiple of a block of ~sqrt(n) samples), so
    only N * 2 sqrt(n) complex exponentials are evaluated instead of N * n.
    """
    block = max(1, int(np.ceil(np.sqrt(n))))
    n_blocks = -(-n // block)
    cyc = freq_hz[:, None] * dwell_s  # cycles per sample
    inner = np.exp(-2j * np.pi * cyc * np.arange(block))
    # Reduce the block phases modulo one cycle: they reach thousands of radians.
    outer_cycles = np.mod(cyc * (np.arange(n_blocks) * block), 1.0)
    outer = np.exp(-1j * (2 * np.pi * outer_cycles + phase_rad[:, None]))
    return (outer[:, :, None] * inner[:, None, :]).reshape(len(freq_hz), -1)[:, :n]


def apply_shift_phase(
    fids: np.ndarray, acquisition: Acquisition, freq_hz, phase_rad=0.0
) -> np.ndarray:
    """Return fids * exp(-i (2 pi freq_hz t + phase_rad)): undoes an offset (freq_hz, phase_rad).

    `freq_hz`/`phase_rad` are scalars or arrays matching the leading shape of `fids`.
    """
    lead = fids.shape[:-1]
    f = np.broadcast_to(np.asarray(freq_hz, dtype=float), lead).reshape(-1)
    p = np.broadcast_to(np.asarray(phase_rad, dtype=float), lead).reshape(-1)
    mod = _modulation(f, p, fids.shape[-1], acquisition.dwell_s)
    return fids * mod.reshape(fids.shape)


def _fit_points(n_points: int, time_s: float, dwell_s: float) -> int:
    """Return how many leading FID points cover time_s seconds (at least 16, at most all)."""
    return int(min(n_points, max(16, round(time_s / dwell_s))))


def _band_mask(size: int, acquisition: Acquisition, ppm_range) -> np.ndarray:
    """Return the bins [size] (unshifted FFT order) inside ppm_range (all when None).

    `ppm_range` is one (low, high) pair or a sequence of pairs (their union)."""
    if ppm_range is None:
        return np.ones(size, bool)
    ppm = acquisition.centre_ppm + np.fft.fftfreq(size, acquisition.dwell_s) / acquisition.f0_mhz
    pairs = [ppm_range] if np.ndim(ppm_range) == 1 else list(ppm_range)
    mask = np.zeros(size, bool)
    for lo, hi in pairs:
        mask |= (ppm >= lo) & (ppm <= hi)
    return mask


def _baseline_projector(size, acquisition, ppm_range, band, order):
    """Return v -> v minus its least-squares complex polynomial (of `order`, per band pair)
    over the in-band bins (identity when order is None)."""
    if order is None or ppm_range is None:
        return lambda v: v
    pairs = [ppm_range] if np.ndim(ppm_range) == 1 else list(ppm_range)
    hz = np.fft.fftfreq(size, acquisition.dwell_s)[band]
    ppm = acquisition.centre_ppm + hz / acquisition.f0_mhz
    columns = []
    for lo, hi in pairs:
        inside = (ppm >= lo) & (ppm <= hi)
        x = np.where(inside, (ppm - (lo + hi) / 2) / max(hi - lo, 1e-9), 0.0)
        columns += [np.where(inside, x**k, 0.0) for k in range(order + 1)]
    q, _ = np.linalg.qr(np.stack(columns, axis=1))
    return lambda v: v - (v @ q) @ q.T


def _initial_frequency(spec_x, spec_r, bin_hz: float, max_shift_hz: float) -> np.ndarray:
    """Return the offset [N] (Hz) maximising the cross-correlation of in-band |spectra|.

    `spec_x` [N, L] and `spec_r` [L] are in-band spectra (zero outside), unshifted FFT order.
    """
    mag_x = np.abs(spec_x)
    mag_r = np.abs(spec_r)
    corr = np.fft.ifft(np.fft.fft(mag_x, axis=-1) * np.conj(np.fft.fft(mag_r)), axis=-1).real
    max_lag = max(1, int(max_shift_hz / bin_hz))
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    sub = corr[:, lags]
    best = np.argmax(sub, axis=-1)
    rows = np.arange(len(best))
    # Parabolic refinement of the correlation peak between bins.
    left = sub[rows, (best - 1) % len(lags)]
    mid = sub[rows, best]
    right = sub[rows, (best + 1) % len(lags)]
    denom = left - 2 * mid + right
    delta = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    return (lags[best] + np.clip(delta, -1, 1)) * bin_hz


def spectral_registration(
    fids: np.ndarray,
    ref: np.ndarray,
    acquisition: Acquisition,
    *,
    ppm_range: tuple[float, float] | None = None,
    time_s: float = 0.2,
    max_shift_hz: float = 20.0,
    init_freq_hz: np.ndarray | None = None,
    baseline_order: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (freq_hz [N], phase_rad [N]): offsets of each of `fids` [N, n] from `ref` [n].

    x_n(t) ~ ref(t) exp(i (2 pi f_n t + phi_n)). The first `time_s` seconds of the FIDs
    enter; the residual is summed over the spectral bins in `ppm_range` (all bins when None;
    by Parseval this is then the time-domain residual of Near et al. 2015), with the band
    fixed in the reference frame. `init_freq_hz` skips the cross-correlation start.
    `baseline_order` k: a complex polynomial of order k per band (per pair of `ppm_range`)
    is projected out of the residual (variable projection), so smooth additive differences,
    such as the tails of edited signals near a band, do not bias the estimate.
    """
    x2 = np.atleast_2d(fids)
    n_fit = _fit_points(x2.shape[-1], time_s, acquisition.dwell_s)
    x = x2[:, :n_fit]
    t = acquisition.time_axis()[:n_fit]
    size = next_fast_len(2 * n_fit)
    band = _band_mask(size, acquisition, ppm_range)
    r_band = np.fft.fft(ref[:n_fit], size)[band]
    project = _baseline_projector(size, acquisition, ppm_range, band, baseline_order)
    if init_freq_hz is None:
        spec_x = np.fft.fft(x, size, axis=-1) * band
        spec_r = np.zeros(size, complex)
        spec_r[band] = r_band
        freq = _initial_frequency(spec_x, spec_r, 1.0 / (size * acquisition.dwell_s), max_shift_hz)
    else:
        freq = np.broadcast_to(np.asarray(init_freq_hz, float), (x.shape[0],)).copy()
    w = 2 * np.pi * t
    phase = np.zeros(x.shape[0])
    for it in range(GN_ITERATIONS + 1):
        y = x * _modulation(freq, phase, n_fit, acquisition.dwell_s)
        m = np.fft.fft(y, size, axis=-1)[:, band]
        if it == 0:  # closed-form phase for the starting frequency
            phase = np.angle(np.sum(m * np.conj(r_band), axis=-1))
            m = m * np.exp(-1j * phase)[:, None]
            y = y * np.exp(-1j * phase)[:, None]
        # Derivatives of the in-band model spectrum m: dm/df = FFT(-i w y), dm/dphi = -i m,
        # d2m/df2 = FFT(-w^2 y), d2m/df dphi = -i dm/df, d2m/dphi2 = -m.
        wy = np.fft.fft(w * y, size, axis=-1)[:, band]
        j_f = project(-1j * wy)
        j_p = project(-1j * m)
        res = project(r_band - m)
        a11 = np.sum(np.abs(j_f) ** 2, axis=-1)
        a12 = np.sum(np.real(np.conj(j_f) * j_p), axis=-1)
        a22 = np.sum(np.abs(j_p) ** 2, axis=-1)
        b1 = np.sum(np.real(np.conj(j_f) * res), axis=-1)
        b2 = np.sum(np.real(np.conj(j_p) * res), axis=-1)
        # Full Newton (the residual is not small: transients and reference differ by noise
        # and line shape, and Gauss-Newton then converges only linearly); Gauss-Newton where
        # the Hessian is not positive definite (far from the minimum).
        j_ff = project(-np.fft.fft(w * w * y, size, axis=-1)[:, band])
        h11 = a11 - np.sum(np.real(np.conj(j_ff) * res), axis=-1)
        h12 = a12 - np.sum(np.real(np.conj(-1j * j_f) * res), axis=-1)
        h22 = a22 - np.sum(np.real(np.conj(project(-m)) * res), axis=-1)
        newton = (h11 > 0) & (h11 * h22 - h12 * h12 > 0)
        a11 = np.where(newton, h11, a11)
        a12 = np.where(newton, h12, a12)
        a22 = np.where(newton, h22, a22)
        det = a11 * a22 - a12 * a12
        ok = det > 0
        det = np.where(ok, det, 1.0)
        d_f = np.where(ok, (a22 * b1 - a12 * b2) / det, 0.0)
        d_p = np.where(ok, (a11 * b2 - a12 * b1) / det, 0.0)
        freq = freq + d_f
        phase = phase + d_p
        if np.max(np.abs(d_f)) < TOL_HZ and np.max(np.abs(d_p)) < TOL_RAD:
            break
    return freq, np.angle(np.exp(1j * phase))


def _complex_median(x: np.ndarray) -> np.ndarray:
    """Return the elementwise median over axis 0 of real and imaginary parts."""
    return np.median(x.real, axis=0) + 1j * np.median(x.imag, axis=0)


@dataclass(frozen=True)
class Alignment:
    """Result of `align_transients` (one value per transient; NaN where not estimated)."""

    freq_hz: np.ndarray  # offset of each transient before correction
    phase_rad: np.ndarray
    aligned: np.ndarray  # corrected FIDs [N, n_points]
    reference: np.ndarray  # the (band-limited) reference FID the transients were aligned to


def align_transients(
    fids: np.ndarray,
    acquisition: Acquisition,
    *,
    method: str = "robust",
    ppm_range: tuple[float, float] = (1.8, 4.2),
    time_s: float = 0.2,
    max_shift_hz: float = 20.0,
    valid: np.ndarray | None = None,
) -> Alignment:
    """Return the frequency/phase alignment of transients `fids` [N, n_points].

    `method` "robust" (band-limited, median then similarity-weighted reference, two passes),
    "sr" (band-limited to ppm_range too, mean reference, one pass) or "none". `valid` [N] bool
    marks transients to use; others get NaN offsets and are returned unchanged. One transient
    is returned as it is (offsets 0).
    """
    n = fids.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    freq = np.full(n, np.nan)
    phase = np.full(n, np.nan)
    idx = np.nonzero(valid)[0]
    if method == "none" or len(idx) < 2:
        freq[idx] = 0.0
        phase[idx] = 0.0
        ref = fids[idx].mean(axis=0) if len(idx) else np.zeros(fids.shape[-1], complex)
        return Alignment(freq, phase, fids.copy(), ref)
    n_fit = _fit_points(fids.shape[-1], time_s, acquisition.dwell_s)
    sel = fids[idx, :n_fit]  # registration only looks at the first time_s seconds
    opts = {"ppm_range": ppm_range, "time_s": time_s, "max_shift_hz": max_shift_hz}
    if method == "sr":
        ref = sel.mean(axis=0)
        f, p = spectral_registration(sel, ref, acquisition, **opts)
    elif method == "robust":
        ref = _complex_median(sel)
        f, p = spectral_registration(sel, ref, acquisition, **opts)
        aligned = apply_shift_phase(sel, acquisition, f, p)
        size = next_fast_len(2 * n_fit)
        spec = np.fft.fft(aligned, size, axis=-1)[:, _band_mask(size, acquisition, ppm_range)]
        dist = np.linalg.norm(spec - _complex_median(spec), axis=-1)
        scale = np.median(dist)
        weights = 1.0 / (1.0 + (dist / scale) ** 2) if scale > 0 else np.ones_like(dist)
        ref = np.tensordot(weights, aligned, axes=1) / weights.sum()
        f, p = spectral_registration(sel, ref, acquisition, init_freq_hz=f, **opts)
    else:
        raise ValueError(f"unknown alignment method {method!r}")
    # The reference's own offset is arbitrary: centre the estimates (median) so that the
    # corrections do not move the whole spectrum.
    f = f - np.median(f)
    p = np.angle(np.exp(1j * (p - np.angle(np.mean(np.exp(1j * p))))))
    freq[idx] = f
    phase[idx] = p
    out = fids.copy()
    out[idx] = apply_shift_phase(fids[idx], acquisition, f, p)
    return Alignment(freq, phase, out, ref)


def align_pair(
    moving: np.ndarray,
    target: np.ndarray,
    acquisition: Acquisition,
    *,
    ppm_range,
    max_shift_hz: float = 5.0,
) -> tuple[float, float]:
    """Return (freq_hz, phase_rad) of `moving` [n] relative to `target` [n] in ppm_range.

    Used to align the averaged edit-ON to edit-OFF on bands without edited signals (Cho and
    Cr-CH2: the Cr-CH3 at 3.0 ppm overlaps edited GABA, which would bias the estimate), so
    that the subtraction cancels them; `ppm_range` is a (low, high) pair or a sequence of
    pairs; a linear baseline per band is projected out (tails of edited signals); the whole
    FID enters (averages have high SNR).
    """
    f, p = spectral_registration(
        moving[None],
        target,
        acquisition,
        ppm_range=ppm_range,
        time_s=moving.shape[-1] * acquisition.dwell_s,
        max_shift_hz=max_shift_hz,
        baseline_order=1,
    )
    return float(f[0]), float(p[0])
