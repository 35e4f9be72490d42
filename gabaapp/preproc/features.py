"""THE network input: edit-OFF/ON FIDs -> B0-aligned, scaled [N, 4, 2048] spectra on one ppm grid.

This module is the contract between measured data (`gabaapp.preproc.chain`), the simulator
(`gabaapp.simulate`, batched torch tensors) and the models: both kinds of spectra go through
`network_input`, so they cannot drift apart (paper-notes §3.2-3.4).

Every function is written against the Python array API (`array_api_compat.array_namespace`),
so the same code runs on numpy arrays and on torch tensors (CPU or GPU) without importing torch.

Resampling. The network grid is `grid_ppm()`: 2048 points from 1.0 to 4.5 ppm inclusive. For any
sampling (dwell, n_points, f0_mhz, centre_ppm) the spectrum is evaluated exactly at those ppm
values as the discrete-time Fourier transform of the FID, i.e. the limit of time-domain
zero-filling to infinite length, so no interpolation error enters. The evaluation on an evenly
spaced grid that is not an FFT grid is a chirp-z transform computed with Bluestein's algorithm
(Rabiner, Schafer & Rader 1969, "The chirp z-transform algorithm", IEEE Trans. Audio
Electroacoust. 17:86; Bluestein 1970, IEEE Trans. Audio Electroacoust. 18:451): a forward and
an inverse FFT of a fast length >= n_points + 2047 per FID; the chirps and the kernel's FFT
depend only on the sampling and are cached.

B0 alignment (paper-notes §2.3 step 4, §3.1): the NAA singlet (2.01 ppm) and the Cr singlet
(3.015 ppm) are searched within +-0.25 ppm in |edit-OFF| (an FFT zero-filled so that its bins
are at most two grid steps apart: exact DTFT samples); the stronger one decides; its position
is refined between bins by the vertex of the parabola through 1/|S|^2 at the three bins around
the maximum (exact for an isolated Lorentzian line, whose 1/|S|^2 is quadratic in frequency;
the paper's Jain interpolator assumes an un-zero-filled DFT and is biased for zero-filled
spectra). The shift that puts that peak on its reference is applied to OFF and ON alike, as a
time-domain modulation exp(2j*pi*shift_hz*t) folded into the chirp-z transform (exact).

Cost: per OFF/ON pair one search FFT of edit-OFF plus four FFTs of length >= n_points + 2047
and a few elementwise passes, so it scales with n_points; a simulator may feed FIDs sampled
at a lower bandwidth (any sampling whose spectral width covers 0.75-4.75 ppm is accepted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from scipy.fft import next_fast_len

from gabaapp.constants import CR_PPM, GRID_POINTS, GRID_PPM_HIGH, GRID_PPM_LOW, NAA_PPM
from gabaapp.errors import DataError
from gabaapp.spectra import Acquisition

logger = logging.getLogger(__name__)

# Grid spacing of the network input (ppm); grid_ppm() has both window edges as samples.
GRID_STEP_PPM = (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1)
# Half-width of the B0 peak search around NAA and Cr (paper-notes §2.3).
ALIGN_SEARCH_PPM = 0.25
# Spectra per chunk on CPU (see network_input).
CPU_CHUNK = 256


def grid_ppm() -> np.ndarray:
    """Return the network's ppm axis: 2048 points from 1.0 to 4.5 ppm inclusive, ascending."""
    return np.linspace(GRID_PPM_LOW, GRID_PPM_HIGH, GRID_POINTS)


@dataclass(frozen=True)
class _Plan:
    """Sampling-only precomputations, as numpy complex128/float64/int64 arrays."""

    fft_len: int  # Bluestein FFT length
    pre_chirp: np.ndarray  # [n_points]: exp(-2j pi f_start t_n) * exp(-1j pi a n^2)
    kernel_fft: np.ndarray  # [fft_len]: FFT of the convolution chirp exp(+1j pi a m^2)
    post_chirp: np.ndarray  # [GRID_POINTS]: exp(-1j pi a k^2)
    block: int  # the shift modulation is built as an outer product of blocks of this length
    search_len: int  # FFT length of the B0 peak search
    search_bins: tuple[np.ndarray, np.ndarray]  # NAA, Cr: FFT bin numbers (1-bin margin each side)
    search_ppm: tuple[np.ndarray, np.ndarray]  # ppm of those bins
    search_step_ppm: float


def _block_length(n_points: int) -> int:
    """Return the divisor of n_points closest to sqrt(n_points) (shift-modulation blocks)."""
    divisors = [d for d in range(1, int(np.sqrt(n_points)) + 1) if n_points % d == 0]
    return max(divisors[-1], n_points // divisors[-1])


def _wrap_phase(cycles: np.ndarray) -> np.ndarray:
    """Return exp(-2j*pi*cycles), reducing `cycles` modulo 1 first to keep float64 exact."""
    return np.exp(-2j * np.pi * np.mod(cycles, 1.0))


@lru_cache(maxsize=64)
def _plan(n_points: int, dwell_s: float, f0_mhz: float, centre_ppm: float) -> _Plan:
    """Return the precomputations that depend only on the sampling.

    Grid: X_k = sum_n x_n exp(-2j pi (f_start + k df) n dt); with n k = (n^2 + k^2 - (k - n)^2)/2
    this is a linear convolution of x_n * chirp with a chirp kernel (Bluestein), done by FFT.
    """
    sw_hz = 1.0 / dwell_s
    lo_hz = (GRID_PPM_LOW - ALIGN_SEARCH_PPM - centre_ppm) * f0_mhz
    hi_hz = (GRID_PPM_HIGH + ALIGN_SEARCH_PPM - centre_ppm) * f0_mhz
    if lo_hz < -sw_hz / 2 or hi_hz >= sw_hz / 2:
        raise DataError(
            f"the spectral width ({sw_hz:.0f} Hz around {centre_ppm} ppm at {f0_mhz} MHz) does not "
            f"cover {GRID_PPM_LOW - ALIGN_SEARCH_PPM}-{GRID_PPM_HIGH + ALIGN_SEARCH_PPM} ppm, so "
            "the network window would alias; check the dwell time and centre frequency"
        )
    f_start_hz = (GRID_PPM_LOW - centre_ppm) * f0_mhz
    a = GRID_STEP_PPM * f0_mhz * dwell_s  # grid step in cycles per sample
    n = np.arange(n_points, dtype=np.float64)
    k = np.arange(GRID_POINTS, dtype=np.float64)
    pre_chirp = _wrap_phase(f_start_hz * dwell_s * n) * _wrap_phase(a * n * n / 2.0)
    post_chirp = _wrap_phase(a * k * k / 2.0)
    fft_len = next_fast_len(n_points + GRID_POINTS - 1)
    kernel = np.zeros(fft_len, dtype=np.complex128)
    kernel[:GRID_POINTS] = np.conj(_wrap_phase(a * k * k / 2.0))
    m_neg = np.arange(1, n_points)  # lags m = -1 ... -(n_points - 1) wrap to the end
    kernel[fft_len - m_neg] = np.conj(_wrap_phase(a * m_neg.astype(np.float64) ** 2 / 2.0))

    # B0 search: plain FFT (zero-filled so that bins are <= 2 grid steps), exact DTFT samples.
    search_len = next_fast_len(max(n_points, int(np.ceil(sw_hz / (2 * GRID_STEP_PPM * f0_mhz)))))
    bin_ppm = sw_hz / search_len / f0_mhz
    bins, ppms = [], []
    for ref in (NAA_PPM, CR_PPM):
        j_lo = int(np.floor((ref - ALIGN_SEARCH_PPM - centre_ppm) / bin_ppm)) - 1
        j_hi = int(np.ceil((ref + ALIGN_SEARCH_PPM - centre_ppm) / bin_ppm)) + 1
        j = np.arange(j_lo, j_hi + 1)
        bins.append(np.mod(j, search_len))  # negative frequencies live at the end of the FFT
        ppms.append(centre_ppm + j * bin_ppm)
    return _Plan(
        fft_len=fft_len,
        pre_chirp=pre_chirp,
        kernel_fft=np.fft.fft(kernel),
        post_chirp=post_chirp,
        block=_block_length(n_points),
        search_len=search_len,
        search_bins=(bins[0], bins[1]),
        search_ppm=(ppms[0], ppms[1]),
        search_step_ppm=bin_ppm,
    )


# Plan arrays converted to one namespace/device/dtype, keyed by (sampling, xp, device, dtype).
_CONVERTED: dict[tuple, dict] = {}


def _plan_for(xp, dev, cdtype, rdtype, acquisition: Acquisition) -> tuple[_Plan, dict]:
    """Return the numpy plan and its arrays in namespace `xp` on device `dev` (cached)."""
    key_plan = (
        int(acquisition.n_points),
        float(acquisition.dwell_s),
        float(acquisition.f0_mhz),
        float(acquisition.centre_ppm),
    )
    plan = _plan(*key_plan)
    key = (key_plan, xp.__name__, str(dev), str(cdtype))
    hit = _CONVERTED.get(key)
    if hit is None:

        def conv(arr, dtype):
            return xp.astype(xp.asarray(arr, device=dev), dtype)

        hit = {
            "pre": conv(plan.pre_chirp, cdtype),
            "kernel": conv(plan.kernel_fft, cdtype),
            "post": conv(plan.post_chirp, cdtype),
            "r": conv(np.arange(plan.block), rdtype),
            "q": conv(np.arange(acquisition.n_points // plan.block) * plan.block, rdtype),
            "bins": tuple(xp.asarray(b, device=dev) for b in plan.search_bins),
        }
        if len(_CONVERTED) > 64:
            _CONVERTED.clear()
        _CONVERTED[key] = hit
    return plan, hit


def _dtypes(xp, x):
    """Return (complex dtype, real dtype) matching the precision of `x`."""
    single = x.dtype in (xp.complex64, xp.float32)
    return (xp.complex64, xp.float32) if single else (xp.complex128, xp.float64)


def _cis(xp, cycles, cdtype):
    """Return exp(2j pi cycles) for real `cycles` (reduced modulo 1 first), dtype `cdtype`.

    Built from cos and sin: torch's complex exp is not vectorised on CPU and was ~50x slower.
    """
    angle = (2.0 * np.pi) * xp.remainder(cycles, 1.0)
    return xp.astype(xp.cos(angle), cdtype) + xp.astype(xp.sin(angle), cdtype) * 1j


def _shifted(xp, x, arrays, shift, block: int, cdtype):
    """Return x * pre_chirp * exp(2j pi shift n) for x [N, n_points], shift [N, 1] in cycles
    per sample.

    The modulation factorises over n = q + r (q a multiple of `block`, 0 <= r < block), so
    only N * (n_points / block + block) complex exponentials are computed instead of
    N * n_points, and it is applied by broadcasting without materialising it. The q-phases
    reach thousands of radians, hence the reduction modulo one cycle inside _cis.
    """
    n, n_points = x.shape
    small_r = _cis(xp, shift * arrays["r"], cdtype)
    small_q = _cis(xp, shift * arrays["q"], cdtype)
    y3 = xp.reshape(x, (n, n_points // block, block)) * small_q[:, :, None]
    y3 *= small_r[:, None, :]
    y3 *= xp.reshape(arrays["pre"], (n_points // block, block))
    return xp.reshape(y3, (n, n_points))


def _check_sampling(fids, acquisition: Acquisition) -> None:
    if fids.shape[-1] != acquisition.n_points:
        raise DataError(
            f"FIDs have {fids.shape[-1]} points but the acquisition says "
            f"{acquisition.n_points}; pass the Acquisition that belongs to these data"
        )


def spectra_on_grid(fids, acquisition: Acquisition, shift_hz=None):
    """Return the spectra of `fids` sampled at grid_ppm(), complex, shape [..., 2048].

    `fids` is a complex array (numpy or any array-API namespace) with time on the last axis,
    sampled as `acquisition` says. `shift_hz` (None, or one value per spectrum, shape
    [prod(leading shape)] or broadcastable) moves every line up in frequency by that many Hz
    before sampling, exactly (time-domain modulation exp(2j pi shift_hz t)). Values follow
    `gabaapp.spectra.fid_to_spectrum` (unnormalised DFT sum), evaluated off the FFT grid.
    """
    xp = array_namespace(fids)
    _check_sampling(fids, acquisition)
    lead = tuple(fids.shape[:-1])
    x = xp.reshape(fids, (-1, acquisition.n_points))
    (out,) = _grid_spectra(xp, [x], acquisition, shift_hz)
    return xp.reshape(out, (*lead, GRID_POINTS))


def _grid_spectra(xp, parts, acquisition: Acquisition, shift_hz=None) -> list:
    """Return the grid spectra [N, 2048] of each FID array [N, n_points] in `parts`, all moved
    by the same `shift_hz` (None or [N] / broadcastable)."""
    x0 = parts[0]
    cdtype, rdtype = _dtypes(xp, x0)
    dev = array_device(x0)
    plan, arr = _plan_for(xp, dev, cdtype, rdtype, acquisition)
    n = x0.shape[0]
    shift = None
    if shift_hz is not None:
        shift = xp.asarray(shift_hz, device=dev)
        shift = xp.astype(xp.reshape(shift, (-1, 1)), rdtype, copy=False) * acquisition.dwell_s
        if shift.shape[0] == 1 and n > 1:
            shift = xp.broadcast_to(shift, (n, 1))
    out = []
    for x in parts:
        x = xp.astype(x, cdtype, copy=False)
        y = x * arr["pre"] if shift is None else _shifted(xp, x, arr, shift, plan.block, cdtype)
        spec = xp.fft.fft(y, n=plan.fft_len, axis=-1)
        del y
        spec *= arr["kernel"]
        z = xp.fft.ifft(spec, axis=-1)
        out.append(z[:, :GRID_POINTS] * arr["post"])
    return out


def _refined_peak(mag, ppm, step_ppm: float, xp):
    """Return (height, ppm) of the maximum of mag [N, W] (bins at `ppm` [W], 1-bin margins).

    The position is the vertex of the parabola through 1/mag^2 at the three bins around the
    maximum: exact for an isolated Lorentzian line.
    """
    idx = xp.argmax(mag[:, 1:-1], axis=-1) + 1
    idx2 = xp.reshape(idx, (-1, 1))
    centre = xp.take_along_axis(mag, idx2, axis=-1)[:, 0]
    below = xp.take_along_axis(mag, idx2 - 1, axis=-1)[:, 0]
    above = xp.take_along_axis(mag, idx2 + 1, axis=-1)[:, 0]
    tiny = xp.finfo(mag.dtype).tiny
    y_m, y_0, y_p = (1.0 / xp.clip(v * v, min=tiny) for v in (below, centre, above))
    curvature = y_m - 2.0 * y_0 + y_p
    safe = curvature > 0
    delta = xp.where(safe, (y_m - y_p) / xp.where(safe, 2.0 * curvature, 1.0), 0.0)
    delta = xp.clip(delta, min=-1.0, max=1.0)
    return centre, xp.take(ppm, idx, axis=0) + delta * step_ppm


def b0_shift_hz(off_fids, acquisition: Acquisition):
    """Return the B0 shift in Hz, shape [N], that puts the stronger of NAA/Cr on its reference.

    `off_fids` are edit-OFF FIDs [..., n_points] (leading axes flattened to N). The NAA singlet
    is searched in 2.01 +- 0.25 ppm and the Cr singlet in 3.015 +- 0.25 ppm of |S| (zero-filled
    FFT, bins <= 2 grid steps); the higher maximum decides (paper-notes §2.3). A positive shift
    moves lines to higher ppm.
    """
    xp = array_namespace(off_fids)
    _check_sampling(off_fids, acquisition)
    cdtype, rdtype = _dtypes(xp, off_fids)
    dev = array_device(off_fids)
    plan, arr = _plan_for(xp, dev, cdtype, rdtype, acquisition)
    x = xp.reshape(xp.astype(off_fids, cdtype, copy=False), (-1, acquisition.n_points))
    spec = xp.fft.fft(x, n=plan.search_len, axis=-1)
    found = []
    for bins, ppm in zip(arr["bins"], plan.search_ppm, strict=True):
        mag = xp.abs(xp.take(spec, bins, axis=-1))
        found.append(_refined_peak(mag, xp.asarray(ppm, device=dev), plan.search_step_ppm, xp))
    (naa_h, naa_ppm), (cr_h, cr_ppm) = found
    shift_ppm = xp.where(naa_h >= cr_h, NAA_PPM - naa_ppm, CR_PPM - cr_ppm)
    return xp.astype(shift_ppm * acquisition.f0_mhz, rdtype)


def network_input(
    off,
    on,
    acquisition: Acquisition,
    *,
    align: bool = True,
    return_shift_hz=False,
    shift_hz=None,
):
    """Return the network input [N, 4, 2048] float32 for edit-OFF/ON FIDs (any sampling).

    `off` and `on` are complex FIDs of equal shape [..., n_points] (numpy arrays or torch
    tensors; leading axes are flattened to N), sampled as `acquisition` says. Rows are
    [OFF-imag, OFF-real, ON-imag, ON-real] on grid_ppm() (1.0-4.5 ppm, 2048 points, ascending),
    B0-aligned to NAA 2.01 / Cr 3.015 ppm when `align` (one shift per spectrum, measured on OFF,
    applied to both), and divided by max |edit-OFF| in the window (paper-notes §3.2-3.4).
    The result lives in the namespace and on the device of `off`. With `return_shift_hz=True`
    returns (input, shift_hz [N]), the shift applied in Hz (zeros when `align` is False).
    `shift_hz` (one value per spectrum, [N], in the namespace of `off`) applies that B0 shift
    instead of estimating it (e.g. the shift measured on a noisy spectrum, reused for its clean
    copy so both are aligned alike); it overrides `align`.
    Raises DataError for mismatched shapes, non-finite values, or an edit-OFF spectrum that
    is zero in the window.
    """
    xp = array_namespace(off, on)
    if tuple(off.shape) != tuple(on.shape):
        raise DataError(
            f"edit-OFF {tuple(off.shape)} and edit-ON {tuple(on.shape)} FIDs differ in shape; "
            "pass matching sub-spectra"
        )
    n_points = off.shape[-1]
    off2 = xp.reshape(off, (-1, n_points))
    on2 = xp.reshape(on, (-1, n_points))
    n = off2.shape[0]
    dev = array_device(off2)
    given = None
    if shift_hz is not None:
        given = xp.reshape(xp.asarray(shift_hz, device=dev), (-1,))
        if given.shape[0] != n:
            raise DataError(
                f"shift_hz has {given.shape[0]} values for {n} spectra; pass one per spectrum"
            )
    if n <= CPU_CHUNK or not str(dev).startswith("cpu"):
        out, shift = _network_rows(xp, off2, on2, acquisition, align, given)
    else:
        # On CPU, chunks keep the temporaries small enough for the allocator to reuse them:
        # fresh large buffers cost page faults that dominated the run time (2x slower).
        _, rdtype = _dtypes(xp, off2)
        out = xp.empty((n, 4, GRID_POINTS), dtype=xp.float32, device=dev)
        shift = xp.empty((n,), dtype=rdtype, device=dev)
        for start in range(0, n, CPU_CHUNK):
            stop = min(n, start + CPU_CHUNK)
            out[start:stop, ...], shift[start:stop] = _network_rows(
                xp,
                off2[start:stop, ...],
                on2[start:stop, ...],
                acquisition,
                align,
                None if given is None else given[start:stop],
            )
    if return_shift_hz:
        return out, shift
    return out


def _network_rows(xp, off2, on2, acquisition: Acquisition, align: bool, given=None):
    """Return (input [N, 4, 2048] float32, shift_hz [N]) for OFF/ON FIDs [N, n_points]; the
    shift is `given` ([N]) when not None, else measured on OFF when `align`, else zero."""
    n = off2.shape[0]
    _, rdtype = _dtypes(xp, off2)
    if given is not None:
        shift, apply = xp.astype(given, rdtype), True
    elif align:
        shift, apply = b0_shift_hz(off2, acquisition), True
    else:
        shift, apply = xp.zeros((n,), dtype=rdtype, device=array_device(off2)), False
    _check_sampling(off2, acquisition)
    s_off, s_on = _grid_spectra(xp, [off2, on2], acquisition, shift if apply else None)
    scale = xp.max(xp.abs(s_off), axis=-1)
    # NaN/inf anywhere in a FID spreads over its whole spectrum, so checking these [N]
    # reductions catches bad input without an extra pass over the FIDs.
    finite = xp.isfinite(scale) & xp.isfinite(xp.sum(s_on, axis=-1))
    if not bool(xp.all(finite)):
        raise DataError("edit-OFF/ON FIDs contain NaN or infinite values; check the input data")
    if not bool(xp.all(scale > 0)):
        raise DataError(
            "an edit-OFF spectrum is zero in 1.0-4.5 ppm, so it cannot be scaled; "
            "remove empty transients or check the edit-condition order"
        )
    rows = [xp.imag(s_off), xp.real(s_off), xp.imag(s_on), xp.real(s_on)]
    out = xp.astype(xp.stack(rows, axis=1), xp.float32)
    out /= xp.astype(xp.reshape(scale, (-1, 1, 1)), xp.float32)
    return out, shift
