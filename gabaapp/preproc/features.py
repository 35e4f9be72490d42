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

Grid-matched sampling (fast path). When the sampling is such that the grid is part of an FFT
grid, i.e. spectral width = L x grid step (Hz) for an integer L >= n_points and the grid's first
point is an integer number of FFT bins from the centre (`grid_acquisition` builds such a
sampling; `grid_match` detects one), the DTFT on the grid is exactly bins k0 ... k0 + 2047 of one
FFT of length L of the zero-filled FID. Then `network_input` takes that path: no chirp-z, one
FFT of length L per FID, the B0 shift (and the move of bin k0 to bin 0) applied as a time-domain
phase ramp before it. Real data never have this sampling; the simulator chooses it
(`SynthesisConfig.sampling = "grid"`). Same function, same values (tested against the chirp-z
path to float32 rounding).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from array_api_compat import array_namespace, is_numpy_array, is_torch_array
from array_api_compat import device as array_device
from scipy.fft import next_fast_len

from gabaapp.constants import CR_PPM, GRID_POINTS, GRID_PPM_HIGH, GRID_PPM_LOW, NAA_PPM
from gabaapp.errors import DataError
from gabaapp.preproc import dfti, kernels
from gabaapp.spectra import Acquisition

logger = logging.getLogger(__name__)

# Grid spacing of the network input (ppm); grid_ppm() has both window edges as samples.
GRID_STEP_PPM = (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1)
# Half-width of the B0 peak search around NAA and Cr (paper-notes §2.3).
ALIGN_SEARCH_PPM = 0.25
# Spectra per chunk on CPU (see network_input).
CPU_CHUNK = 256
# FFT length of the default grid-matched sampling (grid_acquisition): 2 x the grid, so the
# spectral window is 7 ppm (-0.75 to 6.25 ppm) around the 3.5 ppm grid.
GRID_FFT_LEN = 4096
# Relative tolerance of the grid-matched test (floating-point rounding of dwell and centre).
_MATCH_RTOL = 1e-9


def grid_ppm() -> np.ndarray:
    """Return the network's ppm axis: 2048 points from 1.0 to 4.5 ppm inclusive, ascending."""
    return np.linspace(GRID_PPM_LOW, GRID_PPM_HIGH, GRID_POINTS)


def grid_acquisition(
    f0_mhz: float,
    acquisition_time_s: float,
    *,
    fft_len: int = GRID_FFT_LEN,
    te_s: float | None = None,
) -> Acquisition:
    """Return the grid-matched sampling at `f0_mhz` closest to `acquisition_time_s`.

    Spectral width = fft_len x grid step in Hz (4096 x 3.5/2047 ppm = 7.0 ppm, ~863 Hz at
    123.2 MHz), n_points = round(acquisition_time_s / dwell) capped at fft_len, and the centre
    ppm that puts the grid in the middle of the window, so that grid point j is FFT bin
    (fft_len - 2048) / 2 + j of the fftshift-ed spectrum. `network_input` evaluates FIDs with
    this sampling by one FFT of length fft_len (see the module docstring). fft_len must be even
    and leave >= 0.25 ppm beyond each grid edge (fft_len >= 2344) for the B0 search.
    """
    if fft_len % 2 or (fft_len - GRID_POINTS) // 2 * GRID_STEP_PPM < ALIGN_SEARCH_PPM:
        raise DataError(
            f"grid-matched FFT length {fft_len} must be even and leave {ALIGN_SEARCH_PPM} ppm "
            f"beyond each grid edge (>= 2344); use e.g. {GRID_FFT_LEN}"
        )
    dwell_s = 1.0 / (fft_len * GRID_STEP_PPM * f0_mhz)
    n_points = int(min(fft_len, max(2, round(acquisition_time_s / dwell_s))))
    first = (fft_len - GRID_POINTS) // 2  # fftshift-ed index of grid point 0
    centre_ppm = GRID_PPM_LOW + (fft_len // 2 - first) * GRID_STEP_PPM
    return Acquisition(f0_mhz, dwell_s, n_points, te_s=te_s, centre_ppm=centre_ppm)


@lru_cache(maxsize=64)
def _grid_match(
    n_points: int, dwell_s: float, f0_mhz: float, centre_ppm: float
) -> tuple[int, int] | None:
    length = 1.0 / (dwell_s * GRID_STEP_PPM * f0_mhz)
    fft_len = int(round(length))
    if fft_len < GRID_POINTS or n_points > fft_len:
        return None
    if abs(length - fft_len) > _MATCH_RTOL * fft_len:
        return None
    k0 = (GRID_PPM_LOW - centre_ppm) / GRID_STEP_PPM  # grid point 0 in bins from the centre
    if abs(k0 - round(k0)) > _MATCH_RTOL * fft_len:
        return None
    return fft_len, int(round(k0)) % fft_len


def grid_match(acquisition: Acquisition) -> tuple[int, int] | None:
    """Return (fft_len, k0) when `acquisition` is grid-matched, else None.

    Grid-matched: 1 / (dwell_s x grid step in Hz) is an integer fft_len >= n_points (within
    rounding) and the grid's first point lies an integer number of bins from the centre; then
    the grid spectrum is bins k0 ... k0 + 2047 (modulo fft_len) of fft(fid, n=fft_len).
    """
    return _grid_match(
        int(acquisition.n_points),
        float(acquisition.dwell_s),
        float(acquisition.f0_mhz),
        float(acquisition.centre_ppm),
    )


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


def _check_coverage(dwell_s: float, f0_mhz: float, centre_ppm: float) -> None:
    """Raise DataError unless the spectral width covers the grid plus the B0 search margins."""
    sw_hz = 1.0 / dwell_s
    lo_hz = (GRID_PPM_LOW - ALIGN_SEARCH_PPM - centre_ppm) * f0_mhz
    hi_hz = (GRID_PPM_HIGH + ALIGN_SEARCH_PPM - centre_ppm) * f0_mhz
    if lo_hz < -sw_hz / 2 or hi_hz >= sw_hz / 2:
        raise DataError(
            f"the spectral width ({sw_hz:.0f} Hz around {centre_ppm} ppm at {f0_mhz} MHz) does not "
            f"cover {GRID_PPM_LOW - ALIGN_SEARCH_PPM}-{GRID_PPM_HIGH + ALIGN_SEARCH_PPM} ppm, so "
            "the network window would alias; check the dwell time and centre frequency"
        )


@lru_cache(maxsize=64)
def _plan(n_points: int, dwell_s: float, f0_mhz: float, centre_ppm: float) -> _Plan:
    """Return the precomputations that depend only on the sampling.

    Grid: X_k = sum_n x_n exp(-2j pi (f_start + k df) n dt); with n k = (n^2 + k^2 - (k - n)^2)/2
    this is a linear convolution of x_n * chirp with a chirp kernel (Bluestein), done by FFT.
    """
    sw_hz = 1.0 / dwell_s
    _check_coverage(dwell_s, f0_mhz, centre_ppm)
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
            "ppm": tuple(xp.asarray(p, device=dev) for p in plan.search_ppm),
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


def _grid_spectra(
    xp, parts, acquisition: Acquisition, shift_hz=None, transform="auto", full=False
) -> list:
    """Return the grid spectra [N, 2048] of each FID array [N, n_points] in `parts`, all moved
    by the same `shift_hz` (None or [N] / broadcastable). `transform`: "auto" (one FFT when
    the sampling is grid-matched, else chirp-z) or "chirp-z" (always). `full`: return the
    one-FFT path's whole contiguous FFT rows [N, L] instead (the grid is their first 2048
    columns; the chirp-z path's [N, 2048] are contiguous anyway)."""
    x0 = parts[0]
    cdtype, rdtype = _dtypes(xp, x0)
    dev = array_device(x0)
    match = grid_match(acquisition) if transform == "auto" else None
    if match is not None:
        spectra = _matched_grid_spectra(xp, parts, acquisition, shift_hz, match)
        return spectra if full else [spec[:, :GRID_POINTS] for spec in spectra]
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


_MATCHED: dict[tuple, dict] = {}


def _matched_arrays(xp, dev, acquisition: Acquisition, fft_len: int, k0: int) -> dict:
    """Return (cached) block indices r, q (float64) and the bin offset in cycles per sample."""
    n_points = int(acquisition.n_points)
    key = (n_points, fft_len, k0, xp.__name__, str(dev))
    hit = _MATCHED.get(key)
    if hit is None:
        block = _block_length(n_points)
        hit = {
            "block": block,
            "r": xp.asarray(np.arange(block, dtype=np.float64), device=dev),
            "q": xp.asarray(np.arange(n_points // block, dtype=np.float64) * block, device=dev),
            # exp(-2j pi k0 n / L) moves grid point 0 from bin k0 to bin 0
            "offset": -k0 / fft_len,
        }
        if len(_MATCHED) > 64:
            _MATCHED.clear()
        _MATCHED[key] = hit
    return hit


def _matched_grid_spectra(xp, parts, acquisition: Acquisition, shift_hz, match) -> list:
    """_grid_spectra for grid-matched sampling: one FFT of length L per FID, [N, L] each (the
    grid is the first 2048 columns).

    X_j = sum_n x_n exp(2j pi s n) exp(-2j pi (k0 + j) n / L) = fft(x_n exp(2j pi (s - k0/L) n),
    n=L)[j] for the shift s in cycles per sample. The ramp's phases are made in float64 from
    N x (n_points/block + block) values (cheap) and applied as two broadcast products.
    """
    fft_len, _ = match
    x0 = parts[0]
    cdtype, _ = _dtypes(xp, x0)
    dev = array_device(x0)
    n, n_points = x0.shape
    small_q, small_r, block = _ramp_factors(xp, x0, acquisition, shift_hz, match)
    # The ramp product is written straight into a zero-padded buffer (reused per thread: its
    # tail stays zero), which saves fft(..., n=L)'s padding copy.
    buf, buf3 = _padded_buffer(xp, x0, (n, fft_len), n_points // block, block, cdtype, dev)
    out = []
    for x in parts:
        x = xp.astype(x, cdtype, copy=False)
        views = _cpu_views(x, small_q, small_r, buf) if buf is not None else None
        if views is not None and views[0].dtype == np.complex64:
            kernels.ramp_into(*views)  # one pass instead of two broadcast products
            out.append(xp.fft.fft(buf, axis=-1))
            continue
        x3 = xp.reshape(x, (n, n_points // block, block))
        if buf is None:
            y3 = x3 * small_q[:, :, None]
            y3 *= small_r[:, None, :]
            spec = xp.fft.fft(xp.reshape(y3, (n, n_points)), n=fft_len, axis=-1)
        else:
            xp.multiply(x3, small_q[:, :, None], out=buf3)
            buf3 *= small_r[:, None, :]
            spec = xp.fft.fft(buf, axis=-1)
        out.append(spec)
    return out


def _ramp_factors(xp, x0, acquisition: Acquisition, shift_hz, match):
    """Return (small_q [N, n_points/block], small_r [N, block], block): the phase ramp
    exp(2j pi (s - k0/L) n) of the one-FFT path at n = q + r as the product small_q x small_r
    (made in float64 from N x (n_points/block + block) values, then cast)."""
    fft_len, k0 = match
    _check_coverage(acquisition.dwell_s, acquisition.f0_mhz, acquisition.centre_ppm)
    cdtype, _ = _dtypes(xp, x0)
    dev = array_device(x0)
    arr = _matched_arrays(xp, dev, acquisition, fft_len, k0)
    n = x0.shape[0]
    block = arr["block"]
    if shift_hz is None:
        cycles = xp.zeros((n, 1), dtype=xp.float64, device=dev)
    else:
        shift = xp.reshape(xp.asarray(shift_hz, device=dev), (-1, 1))
        cycles = xp.astype(shift, xp.float64) * acquisition.dwell_s
        if cycles.shape[0] == 1 and n > 1:
            cycles = xp.broadcast_to(cycles, (n, 1))
    cycles = cycles + arr["offset"]
    small_r = _cis(xp, cycles * arr["r"], cdtype)
    small_q = _cis(xp, cycles * arr["q"], cdtype)
    return small_q, small_r, block


def _compiled_ramp_factors(n: int, acquisition: Acquisition, shift_hz, match):
    """Return _ramp_factors' (small_q, small_r, block) as numpy complex64 arrays made by the
    compiled recurrences (kernels.ramp_parts: the same values to complex64 rounding, without
    a dozen small array calls per batch); shift_hz is None or a CPU array [N] or [1]."""
    fft_len, k0 = match
    _check_coverage(acquisition.dwell_s, acquisition.f0_mhz, acquisition.centre_ppm)
    n_points = int(acquisition.n_points)
    block = _block_length(n_points)
    cycles = np.full(n, -k0 / fft_len)
    if shift_hz is not None:
        shift = np.asarray(shift_hz, dtype=np.float64).reshape(-1)
        cycles = shift * acquisition.dwell_s + cycles
    small_q = np.empty((n, n_points // block), dtype=np.complex64)
    small_r = np.empty((n, block), dtype=np.complex64)
    kernels.ramp_parts(cycles, small_q, small_r)
    return small_q, small_r, block


# Spectra per FFT call of the compiled one-FFT path: the rows of this many spectra stay in a
# core's L2 cache (1 MB here) from the ramp to the rows: with the clean copy [4 x 4, 4096]
# complex64 in and out, 1 MB (8 spectra, the setting while each call cost ~18 us: 2 MB).
ROWS_PER_FFT = 4


def _compiled_matched_rows(
    xp, pairs, acquisition: Acquisition, shift_hz, match, outs, phase=None
) -> bool:
    """Write the network input of each (OFF, ON) FID pair [N, n_points] in `pairs` (grid-matched
    sampling, all moved by the same shift) into the matching array of `outs` [N, 4, 2048] with
    the compiled loops, ROWS_PER_FFT spectra at a time (ramp into a reused zero-padded buffer,
    one FFT of all their rows, rows and scale from the FFT output, all while in cache); return
    False (nothing written) where the loops do not apply. `phase` (numpy float64 [N, 2]):
    the rows' linear phase, angle phase[i, 0] + phase[i, 1] j at grid column j
    (`kernels.linear_phase`, `kernels.grid_rows`), or None."""
    fft_len, _ = match
    cdtype, _ = _dtypes(xp, pairs[0][0])
    fids = [xp.astype(f, cdtype, copy=False) for pair in pairs for f in pair]
    views = _compiled_loop_views(fids, outs)
    if views is None:
        return False
    fid_v, out_v = views
    n, n_points = fid_v[0].shape
    q_v, r_v, block = _compiled_ramp_factors(n, acquisition, shift_hz, match)
    rows = min(ROWS_PER_FFT, n)
    dev = array_device(fids[0])
    shape = (len(fids) * rows, fft_len)
    buf, _ = _padded_buffer(xp, fids[0], shape, n_points // block, block, cdtype, dev)
    if buf is None:
        return False
    buf_v = np.asarray(buf)
    scale = np.empty((len(pairs), n), dtype=np.float32)
    finite = np.empty((len(pairs), n), dtype=np.bool_)
    rot = np.empty((rows, 0 if phase is None else 2, GRID_POINTS), dtype=np.float32)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        m = stop - start
        for p in range(len(pairs)):
            part = buf_v[2 * p * rows :]
            kernels.ramp_pair_into(
                fid_v[2 * p], fid_v[2 * p + 1], q_v, r_v, start, stop, part, rows
            )
        # rows m..rows-1 of a last, partial chunk hold earlier FIDs: transformed, not used
        spec = _fft_rows(xp, buf, buf_v).view(np.float32)
        if phase is not None:  # one factor for all pairs, while in cache
            kernels.linear_phase(phase[start:stop], rot[:m])
        for p in range(len(pairs)):
            off_f = spec[2 * p * rows :][:m]
            on_f = spec[(2 * p + 1) * rows :][:m]
            scale[p, start:stop], finite[p, start:stop] = kernels.grid_rows(
                off_f, on_f, on_f.view(np.int32), out_v[p][start:stop], rot[:m]
            )
    _check_scale(bool(finite.all()), bool((scale > 0).all()))
    return True


def _one_call_rows(xp, pairs, acquisition: Acquisition, align, given, match, outs, phase1=None):
    """Write the network input of each (OFF, ON) FID pair in `pairs` (complex64 CPU torch
    tensors [N, n_points], grid-matched sampling) into the matching float32 array of `outs`
    [N, 4, 2048] by one compiled call (`kernels.matched_network_rows`: B0 search, ramps, FFTs
    by `dfti`, rows; no Python between them); return the shift applied (float32 [N], in xp),
    or None where that path does not apply (nothing written; callers keep their own path).

    The shift is measured on the first pair's OFF when `align`, else it is `given` ([N]) or
    zero; `phase1` = (rad_per_ppm, pivot_ppm) as in network_input_and_clean. Same steps and
    arithmetic as b0_shift_hz and _compiled_matched_rows, same values (the FFTs of torch's
    own MKL routine; MKL's batched results do not depend on the batch size).
    Raises DataError as network_input does for non-finite or empty spectra.
    """
    fids = [f for pair in pairs for f in pair]
    if not all(_use_dfti(f) for f in fids):
        return None
    views = _compiled_loop_views(fids, outs)
    if views is None:
        return None
    fid_v, out_v = views
    n, n_points = fid_v[0].shape
    if n == 0:
        return None
    fft_len, _ = match
    search_len, search, bins_a, bins_b, ramp = _one_call_consts(acquisition, match)
    rows = min(ROWS_PER_FFT, n)
    shift = np.zeros(n, dtype=np.float32)
    if given is not None:
        shift[:] = np.asarray(given).reshape(-1)  # as xp.astype(given, float32)
    if phase1 is None:
        rate = pivot = np.empty(0)
    else:
        rate = np.asarray(phase1[0], dtype=np.float64).reshape(-1)
        pivot = np.asarray(phase1[1], dtype=np.float64).reshape(-1)
    scale = np.empty((len(pairs), n), dtype=np.float32)
    finite = np.empty((len(pairs), n), dtype=np.bool_)
    kernels.matched_network_rows(
        dfti.forward_function(),
        dfti.handle(search_len, n) if align else 0,
        dfti.handle(fft_len, len(fids) * rows),
        _thread_array(("search-in", n, search_len), zero=True),
        _thread_array(("search-out", n, search_len)),
        _thread_array(("rows-in", len(fids) * rows, fft_len), zero=True),
        _thread_array(("rows-out", len(fids) * rows, fft_len)),
        tuple(fid_v),
        tuple(out_v),
        bool(align),
        shift,
        search,
        bins_a,
        bins_b,
        ramp,
        rate,
        pivot,
        scale,
        finite,
    )
    _check_scale(bool(finite.all()), bool((scale > 0).all()))
    return xp.asarray(shift, device=array_device(fids[0]))


@lru_cache(maxsize=16)
def _one_call_consts(acquisition: Acquisition, match: tuple[int, int]) -> tuple:
    """Return the sampling's constants for kernels.matched_network_rows: (search FFT length,
    `search` float64 [4 + W_a + W_b]: NAA and Cr reference ppm, the search bins' step in ppm,
    f0_mhz and the two windows' ppm; the windows' bins (NAA, Cr); `ramp` float64: dwell_s,
    base cycles -k0 / fft_len, block, first grid ppm, grid step in ppm). Raises DataError
    where the sampling does not cover the grid."""
    fft_len, k0 = match
    n_points, dwell = int(acquisition.n_points), float(acquisition.dwell_s)
    f0, centre = float(acquisition.f0_mhz), float(acquisition.centre_ppm)
    _check_coverage(dwell, f0, centre)
    plan = _plan(n_points, dwell, f0, centre)
    head = [NAA_PPM, CR_PPM, plan.search_step_ppm, f0]
    search = np.concatenate([np.array(head), plan.search_ppm[0], plan.search_ppm[1]])
    step = (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1)
    ramp = np.array([dwell, -k0 / fft_len, _block_length(n_points), GRID_PPM_LOW, step])
    return plan.search_len, search, plan.search_bins[0], plan.search_bins[1], ramp


def network_input_and_clean(
    off,
    on,
    clean_off,
    clean_on,
    acquisition: Acquisition,
    *,
    align: bool,
    out,
    out_clean,
    phase1=None,
):
    """Write network_input(off, on, acquisition, align=align) into `out` and the network input
    of clean_off / clean_on moved by the same B0 shift (measured on `off`) into `out_clean`;
    return that shift in Hz [N] (zeros when `align` is False).

    `phase1` = (rad_per_ppm, pivot_ppm), arrays [N], rotates both by a first-order phase
    rad_per_ppm (ppm - pivot_ppm) at the ppm of the lines in the FIDs as given (so about
    pivot_ppm + shift / f0 on the moved grid; the synthesiser's augmentation): applied as the
    rows are written on the compiled path, by one array pass otherwise.

    The synthesiser's input and its clean copy: where the compiled one-FFT path applies both
    share the ramp and each FFT call (fewer calls: each costs ~18 us on top of its rows);
    otherwise two network_input calls. Same values either way.
    """
    xp = array_namespace(off, on, clean_off, clean_on)
    match = grid_match(acquisition)
    if kernels.AVAILABLE and match is not None and off.ndim == 2 and _cpu_views(off) is not None:
        _check_sampling(off, acquisition)
        for o in (out, out_clean):
            if tuple(o.shape) != (off.shape[0], 4, GRID_POINTS) or o.dtype != xp.float32:
                raise ValueError(f"out must be float32 [{off.shape[0]}, 4, {GRID_POINTS}]")
        pairs = [(off, on), (clean_off, clean_on)]
        shift = _one_call_rows(xp, pairs, acquisition, align, None, match, [out, out_clean], phase1)
        if shift is not None:
            return shift
        _, rdtype = _dtypes(xp, off)
        if align:
            shift = b0_shift_hz(off, acquisition)
        else:
            shift = xp.zeros((off.shape[0],), dtype=rdtype, device=array_device(off))
        moved = shift if align else None
        phase = None if phase1 is None else _phase1_terms(phase1, shift, acquisition)
        outs = [out, out_clean]
        if _compiled_matched_rows(xp, pairs, acquisition, moved, match, outs, phase):
            return shift
        # not applicable after all (e.g. complex128 FIDs): the same shift, by the general path
        network_input(off, on, acquisition, align=False, shift_hz=moved, out=out)
        network_input(clean_off, clean_on, acquisition, align=False, shift_hz=moved, out=out_clean)
        _rotate_rows(xp, (out, out_clean), phase)
        return shift
    _, shift = network_input(off, on, acquisition, align=align, return_shift_hz=True, out=out)
    network_input(
        clean_off,
        clean_on,
        acquisition,
        align=False,
        shift_hz=shift if align else None,
        out=out_clean,
    )
    if phase1 is not None:
        _rotate_rows(xp, (out, out_clean), _phase1_terms(phase1, shift, acquisition))
    return shift


# No rotation for kernels.grid_rows (a [N, 0] view of this, for any N).
_NO_PHASE = np.empty((1 << 20, 0, GRID_POINTS), dtype=np.float32)


def _phase1_terms(phase1, shift_hz, acquisition: Acquisition) -> np.ndarray:
    """Return float64 [N, 2]: (angle at grid column 0, angle step per column) of the
    first-order phase `phase1` = (rad_per_ppm, pivot_ppm) of network_input_and_clean, for
    lines moved by shift_hz [N]."""
    rate = np.asarray(phase1[0], dtype=np.float64).reshape(-1)
    pivot = np.asarray(phase1[1], dtype=np.float64).reshape(-1)
    moved = np.asarray(shift_hz, dtype=np.float64).reshape(-1) / acquisition.f0_mhz
    step = (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1)
    return np.ascontiguousarray(np.stack([rate * (GRID_PPM_LOW - moved - pivot), rate * step], 1))


def _rotate_rows(xp, outs, phase: np.ndarray) -> None:
    """Rotate network-input rows [N, 4, 2048] in place by the linear phase `phase`
    (_phase1_terms; array-API code, for the paths without the compiled rows)."""
    dev = array_device(outs[0])
    terms = xp.asarray(phase, device=dev)
    j = xp.arange(GRID_POINTS, dtype=xp.float64, device=dev)
    angle = terms[:, 0:1] + terms[:, 1:2] * j
    cos = xp.astype(xp.cos(angle), xp.float32)[:, None, :]
    sin = xp.astype(xp.sin(angle), xp.float32)[:, None, :]
    for rows in outs:
        im, re = rows[:, 0::2, :], rows[:, 1::2, :]  # OFF, ON
        new_re, new_im = re * cos - im * sin, im * cos + re * sin
        rows[:, 0::2, :] = new_im
        rows[:, 1::2, :] = new_re


_BUFFERS = threading.local()


def _lazy_torch(a) -> bool:
    """Return True for a torch tensor that numpy cannot view as is (autograd, lazy conj/neg)."""
    return bool(a.requires_grad or a.is_conj() or a.is_neg())


def _cpu_views(*arrays):
    """Return numpy views (no copies) of CPU numpy or torch arrays for the compiled loops of
    `gabaapp.preproc.kernels`, or None when numba is missing or an array lives elsewhere."""
    if not kernels.AVAILABLE:
        return None
    views = []
    for a in arrays:
        if is_numpy_array(a):
            views.append(a)
        elif is_torch_array(a) and a.device.type == "cpu" and not _lazy_torch(a):
            views.append(np.asarray(a))  # Tensor.__array__: shares memory, keeps strides
        else:
            return None
    return views


def _compiled_loop_views(fids, outs):
    """Return (FID views, output views) as numpy arrays sharing memory when the compiled loops
    can take them (CPU, complex64 FIDs of one shape, everything C-contiguous), else None."""
    views = _cpu_views(*fids, *outs)
    if (
        views is None
        or any(v.dtype != np.complex64 for v in views[: len(fids)])
        or not all(v.flags.c_contiguous for v in views)
        or len({v.shape for v in views[: len(fids)]}) != 1
    ):
        return None
    return views[: len(fids)], views[len(fids) :]


def _padded_buffer(xp, like, shape, n_blocks: int, block: int, cdtype, dev):
    """Return (buffer [N, L] zeros beyond the FID, view of its first n_blocks x block columns
    as [N, n_blocks, block]), cached per thread, or (None, None) where such a view cannot be
    made (arrays `like` of namespaces other than numpy and torch)."""
    if not (is_numpy_array(like) or is_torch_array(like)):
        return None, None
    cache = getattr(_BUFFERS, "cache", None)
    if cache is None:
        cache = _BUFFERS.cache = {}
    key = (xp.__name__, str(dev), str(cdtype), shape, n_blocks, block)
    hit = cache.get(key)
    if hit is None:
        buf = xp.zeros(shape, dtype=cdtype, device=dev)
        view = xp.reshape(buf[:, : n_blocks * block], (shape[0], n_blocks, block))
        aliased = (
            np.shares_memory(view, buf)
            if is_numpy_array(buf)
            else view.data_ptr() == buf.data_ptr()
        )
        if not aliased:  # reshape made a copy: writes would not reach the buffer
            return None, None
        if len(cache) > 16:
            cache.clear()
        hit = cache[key] = (buf, view)
    return hit


def _use_dfti(x) -> bool:
    """Return True where a complex64 CPU torch tensor's FFT may run by `dfti.fft` (the MKL
    routine torch.fft itself calls there: same values, no per-call set-up or allocation)."""
    return (
        is_torch_array(x)
        and x.device.type == "cpu"
        and str(x.dtype) == "torch.complex64"
        and dfti.available()
    )


def _thread_array(key: tuple, *, zero: bool = False) -> np.ndarray:
    """Return this thread's complex64 numpy array [key[1], key[2]] for the role key[0], made
    on first use (zeros where `zero`; the caller keeps any zero columns zero)."""
    cache = getattr(_BUFFERS, "cache", None)
    if cache is None:
        cache = _BUFFERS.cache = {}
    hit = cache.get(key)
    if hit is None:
        if len(cache) > 16:
            cache.clear()
        make = np.zeros if zero else np.empty
        hit = cache[key] = make(key[1:], dtype=np.complex64)
    return hit


def _fft_rows(xp, buf, buf_v: np.ndarray) -> np.ndarray:
    """Return the FFT of each row of the C-contiguous complex buffer `buf` (numpy view buf_v)
    as a numpy array: by `dfti.fft` into this thread's output buffer for torch tensors where
    it applies (valid until the next call of this thread), else xp.fft.fft."""
    if _use_dfti(buf) and buf_v.dtype == np.complex64:
        out = _thread_array(("fft-out", *buf_v.shape))
        dfti.fft(buf_v, out)
        return out
    return np.asarray(xp.fft.fft(buf, axis=-1))


def _refined_peak(power, ppm, step_ppm: float, xp):
    """Return (height^2, ppm) of the maximum of power = |S|^2 [N, W] (bins at `ppm` [W],
    1-bin margins).

    The position is the vertex of the parabola through 1/|S|^2 at the three bins around the
    maximum: exact for an isolated Lorentzian line. The centre bin is the largest of the three,
    so the vertex lies within half a bin of it (no clipping needed).
    """
    idx = xp.argmax(power[:, 1:-1], axis=-1) + 1
    idx2 = xp.reshape(idx, (-1, 1))
    centre = xp.take_along_axis(power, idx2, axis=-1)[:, 0]
    below = xp.take_along_axis(power, idx2 - 1, axis=-1)[:, 0]
    above = xp.take_along_axis(power, idx2 + 1, axis=-1)[:, 0]
    tiny = xp.finfo(power.dtype).tiny  # keeps 1/0 finite for an all-zero window
    y_m, y_0, y_p = (1.0 / (v + tiny) for v in (below, centre, above))
    curvature = y_m - 2.0 * y_0 + y_p
    safe = curvature > 0
    delta = xp.where(safe, (y_m - y_p) / xp.where(safe, 2.0 * curvature, 1.0), 0.0)
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
    if kernels.AVAILABLE and _use_dfti(x):
        # the same MKL transform as torch's, without its per-call set-up (into numpy arrays:
        # the compiled search below reads them)
        padded = _thread_array(("search-in", x.shape[0], plan.search_len), zero=True)
        padded[:, : x.shape[1]] = np.asarray(x)
        spec = _thread_array(("search-out", x.shape[0], plan.search_len))
        dfti.fft(padded, spec)
    else:
        spec = xp.fft.fft(x, n=plan.search_len, axis=-1)
    views = _cpu_views(spec)
    if views is not None and views[0].dtype == np.complex64:
        shift = np.empty(spec.shape[0], dtype=np.float32)
        kernels.search_shift(
            views[0],
            plan.search_bins[0],
            plan.search_ppm[0],
            NAA_PPM,
            plan.search_bins[1],
            plan.search_ppm[1],
            CR_PPM,
            plan.search_step_ppm,
            acquisition.f0_mhz,
            shift,
        )
        return xp.asarray(shift, device=dev)
    found = []
    for bins, ppm in zip(arr["bins"], arr["ppm"], strict=True):
        sel = xp.take(spec, bins, axis=-1)
        power = xp.real(sel) ** 2 + xp.imag(sel) ** 2  # |S|^2: complex abs is slow
        found.append(_refined_peak(power, ppm, plan.search_step_ppm, xp))
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
    transform: str = "auto",
    out=None,
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
    `transform`: "auto" evaluates grid-matched samplings (`grid_match`) by one FFT and any other
    by the chirp-z transform; "chirp-z" forces the general path (tests, benchmarks). Both give
    the same values up to floating-point rounding.
    `out`: an optional float32 array [N, 4, 2048] (same namespace and device) that receives the
    result, which is then returned (saves a copy when filling part of a larger batch).
    Raises DataError for mismatched shapes, non-finite values, or an edit-OFF spectrum that
    is zero in the window.
    """
    xp = array_namespace(off, on)
    if transform not in ("auto", "chirp-z"):
        raise ValueError(f"transform must be 'auto' or 'chirp-z', got {transform!r}")
    if tuple(off.shape) != tuple(on.shape):
        raise DataError(
            f"edit-OFF {tuple(off.shape)} and edit-ON {tuple(on.shape)} FIDs differ in shape; "
            "pass matching sub-spectra"
        )
    n_points = off.shape[-1]
    off2 = xp.reshape(off, (-1, n_points))
    if out is not None and (
        tuple(out.shape) != (off2.shape[0], 4, GRID_POINTS) or out.dtype != xp.float32
    ):
        raise ValueError(f"out must be float32 [{off2.shape[0]}, 4, {GRID_POINTS}]")
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
        out, shift = _network_rows(xp, off2, on2, acquisition, align, given, transform, out)
    else:
        # On CPU, chunks keep the temporaries small enough for the allocator to reuse them:
        # fresh large buffers cost page faults that dominated the run time (2x slower).
        _, rdtype = _dtypes(xp, off2)
        if out is None:
            out = xp.empty((n, 4, GRID_POINTS), dtype=xp.float32, device=dev)
        shift = xp.empty((n,), dtype=rdtype, device=dev)
        for start in range(0, n, CPU_CHUNK):
            stop = min(n, start + CPU_CHUNK)
            _, shift[start:stop] = _network_rows(
                xp,
                off2[start:stop, ...],
                on2[start:stop, ...],
                acquisition,
                align,
                None if given is None else given[start:stop],
                transform,
                out[start:stop, ...],
            )
    if return_shift_hz:
        return out, shift
    return out


def _network_rows(
    xp, off2, on2, acquisition: Acquisition, align: bool, given=None, transform="auto", out=None
):
    """Return (input [N, 4, 2048] float32, shift_hz [N]) for OFF/ON FIDs [N, n_points]; the
    shift is `given` ([N]) when not None, else measured on OFF when `align`, else zero."""
    n = off2.shape[0]
    match = grid_match(acquisition) if transform == "auto" else None
    if kernels.AVAILABLE and match is not None:
        _check_sampling(off2, acquisition)
        if out is None:
            out = xp.empty((n, 4, GRID_POINTS), dtype=xp.float32, device=array_device(off2))
        measure = align and given is None
        shift = _one_call_rows(xp, [(off2, on2)], acquisition, measure, given, match, [out])
        if shift is not None:
            return out, shift
    _, rdtype = _dtypes(xp, off2)
    if given is not None:
        shift, apply = xp.astype(given, rdtype), True
    elif align:
        shift, apply = b0_shift_hz(off2, acquisition), True
    else:
        shift, apply = xp.zeros((n,), dtype=rdtype, device=array_device(off2)), False
    _check_sampling(off2, acquisition)
    if out is None:
        out = xp.empty((n, 4, GRID_POINTS), dtype=xp.float32, device=array_device(off2))
    if (
        kernels.AVAILABLE
        and match is not None
        and _compiled_matched_rows(
            xp, [(off2, on2)], acquisition, shift if apply else None, match, [out]
        )
    ):
        return out, shift
    s_off, s_on = _grid_spectra(
        xp, [off2, on2], acquisition, shift if apply else None, transform, full=True
    )
    views = _cpu_views(s_off, s_on, out)
    if views is not None and all(
        v.dtype == np.complex64 and v.flags.c_contiguous for v in views[:2]
    ):
        # One compiled pass per spectrum: max |OFF|, finiteness and the four scaled rows.
        off_f, on_f = views[0].view(np.float32), views[1].view(np.float32)
        scale, finite = kernels.grid_rows(
            off_f, on_f, on_f.view(np.int32), views[2], _NO_PHASE[: off_f.shape[0]]
        )
        _check_scale(bool(finite.all()), bool((scale > 0).all()))
        return out, shift
    s_off, s_on = s_off[:, :GRID_POINTS], s_on[:, :GRID_POINTS]
    # max |S| from the squared magnitude: complex abs (hypot) is several times slower.
    re_off, im_off = xp.real(s_off), xp.imag(s_off)
    scale = xp.sqrt(xp.max(re_off * re_off + im_off * im_off, axis=-1))
    # NaN/inf anywhere in a FID spreads over its whole spectrum, so checking these [N]
    # reductions catches bad input without an extra pass over the FIDs.
    finite = xp.isfinite(scale) & xp.isfinite(xp.sum(s_on, axis=-1))
    _check_scale(bool(xp.all(finite)), bool(xp.all(scale > 0)))
    rows = [im_off, re_off, xp.imag(s_on), xp.real(s_on)]
    inv = xp.astype(xp.reshape(1.0 / scale, (-1, 1)), xp.float32)
    if is_numpy_array(out) or is_torch_array(out):
        # Scaled while copied: one pass per row. (A contiguous complex product followed by a
        # transposing copy into the (imag, real) row pairs measured ~2x slower.)
        for i, row in enumerate(rows):
            xp.multiply(row, inv, out=out[:, i, :])
    else:
        for i, row in enumerate(rows):
            out[:, i, :] = xp.astype(row * inv, xp.float32)
    return out, shift


def _check_scale(finite: bool, positive: bool) -> None:
    """Raise DataError for non-finite spectra or an edit-OFF spectrum that is zero on the grid."""
    if not finite:
        raise DataError("edit-OFF/ON FIDs contain NaN or infinite values; check the input data")
    if not positive:
        raise DataError(
            "an edit-OFF spectrum is zero in 1.0-4.5 ppm, so it cannot be scaled; "
            "remove empty transients or check the edit-condition order"
        )
