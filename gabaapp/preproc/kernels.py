"""Fused CPU loops for the grid function's hot spots (optional numba; same values as numpy/torch).

`network_input` is mostly elementwise passes over [N, 2048..4096] complex arrays. In numpy or
torch eager each pass is one library call with its own read and write of the whole array, and
strided passes (the real and imaginary parts of a complex spectrum, written into separate
rows) run at ~1 ns per element: on the synthesiser's grid path these passes cost more than the
FFTs. Compiled loops do each job in one pass (e.g. max |S|^2 of edit-OFF and the four scaled
(imag, real) rows from the FFT output), ~4-6x faster per call.

The loops are compiled by numba (LLVM, no C compiler at run time) on first use and cached on
disk. Without numba, `AVAILABLE` is False and callers keep their array-API code; both give the
same values up to float32 rounding (the compiled loops compute the same products and sums in
the same order, but the vectorised torch complex product may fuse a multiply-add).
"""

from __future__ import annotations

import math

import numpy as np

try:  # optional at run time: callers fall back to array-API code
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

AVAILABLE = numba is not None


def jit(fn):
    """Compile `fn` with numba (no Python objects, GIL released so that worker threads run in
    parallel, cached on disk), or return None without numba."""
    if numba is None:  # pragma: no cover
        return None
    options = {"nogil": True, "fastmath": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # pragma: no cover - no writable cache location (read-only install)
        return numba.njit(**options)(fn)


def _grid_rows(s_off, s_on, on_bits, out, rot):
    """Write out[i] = (Im OFF, Re OFF, Im ON, Re ON) / max|OFF| for the spectra s_off, s_on
    (float32 [N, >= 2W] views of complex rows, real and imaginary parts interleaved; W =
    out.shape[2]; on_bits: s_on's int32 view); return (scale [N] float32, finite [N] bool: no
    NaN/inf in either spectrum).

    `rot` (float32 [N, 2, W] from linear_phase, or [N, 0, W] for none): each spectrum's rows
    are rotated by the angle whose (cos, sin) is rot[i, :, j] at grid column j while they are
    written (a first-order phase; |S| and so the scale are unchanged), Re' = Re c - Im s,
    Im' = Im c + Re s.

    Both reductions compare IEEE bit patterns as integers, which vectorise without reordering
    floating-point arithmetic: for a non-negative float |S|^2 the int32 order is the float
    order, and with the sign bit cleared a pattern >= 0x7f800000 is an inf or NaN.
    """
    n, width = out.shape[0], out.shape[2]
    power = np.empty(width, dtype=np.float32)
    bits = power.view(np.int32)
    scale = np.empty(n, dtype=np.float32)
    finite = np.empty(n, dtype=np.bool_)
    magnitude = np.int32(0x7FFFFFFF)
    rotate = rot.shape[1] == 2
    for i in range(n):
        for j in range(width):
            re = s_off[i, 2 * j]
            im = s_off[i, 2 * j + 1]
            power[j] = re * re + im * im
        top = np.int32(0)
        for j in range(width):
            top = max(top, bits[j] & magnitude)
        top_on = np.int32(0)
        for j in range(2 * width):
            top_on = max(top_on, on_bits[i, j] & magnitude)
        bits[0] = top
        s = np.float32(math.sqrt(power[0]))
        scale[i] = s
        finite[i] = top < np.int32(0x7F800000) and top_on < np.int32(0x7F800000)
        inv = np.float32(1.0) / s
        if rotate:
            for j in range(width):
                c, sn = rot[i, 0, j], rot[i, 1, j]
                re, im = s_off[i, 2 * j], s_off[i, 2 * j + 1]
                out[i, 0, j] = (im * c + re * sn) * inv
                out[i, 1, j] = (re * c - im * sn) * inv
            for j in range(width):
                c, sn = rot[i, 0, j], rot[i, 1, j]
                re, im = s_on[i, 2 * j], s_on[i, 2 * j + 1]
                out[i, 2, j] = (im * c + re * sn) * inv
                out[i, 3, j] = (re * c - im * sn) * inv
            continue
        for j in range(width):
            out[i, 0, j] = s_off[i, 2 * j + 1] * inv
            out[i, 1, j] = s_off[i, 2 * j] * inv
        for j in range(width):
            out[i, 2, j] = s_on[i, 2 * j + 1] * inv
            out[i, 3, j] = s_on[i, 2 * j] * inv
    return scale, finite


# Block of the separable linear-phase factor (GRID_POINTS = 2048 = 32 x 64).
PHASE_BLOCK = 64


def _linear_phase(phase, rot):
    """Write rot[i] = (cos, sin) of phase[i, 0] + phase[i, 1] j for j < W (rot float32
    [N, 2, W], phase float64 [N, 2]), from the separable parts exp(i phase[i, 1] q B) and
    exp(i (phase[i, 0] + phase[i, 1] r)), j = q B + r (B = PHASE_BLOCK where it divides W,
    else W). Both parts by float64 recurrences z_{k+1} = z_k w (four cos / sin calls per
    spectrum, ~1e-15 relative error after <= 64 steps: libm's cos and sin cost ~20 ns each);
    products in float32 into separate cos and sin rows (contiguous: vectorised)."""
    width = rot.shape[2]
    block = PHASE_BLOCK if width % PHASE_BLOCK == 0 else width
    n_blocks = width // block
    lo_c = np.empty(block, dtype=np.float32)
    lo_s = np.empty(block, dtype=np.float32)
    for i in range(rot.shape[0]):
        first, step = phase[i, 0], phase[i, 1]
        zr, zi = math.cos(first), math.sin(first)
        wr, wi = math.cos(step), math.sin(step)
        for r in range(block):
            lo_c[r] = zr
            lo_s[r] = zi
            zr, zi = zr * wr - zi * wi, zr * wi + zi * wr
        big = step * block
        wr, wi = math.cos(big), math.sin(big)
        hr64, hm64 = 1.0, 0.0
        for q in range(n_blocks):
            hr, hm = np.float32(hr64), np.float32(hm64)
            base = q * block
            for r in range(block):
                rot[i, 0, base + r] = hr * lo_c[r] - hm * lo_s[r]
                rot[i, 1, base + r] = hr * lo_s[r] + hm * lo_c[r]
            hr64, hm64 = hr64 * wr - hm64 * wi, hr64 * wi + hm64 * wr


def _ramp_parts(cycles, small_q, small_r):
    """Write small_r[i, r] = exp(2j pi cycles[i] r) and small_q[i, q] = exp(2j pi cycles[i] q B)
    (B = small_r.shape[1]; complex64 outputs), the separable ramp of features._ramp_factors:
    each by a float64 recurrence z_{k+1} = z_k w from w = exp(2j pi (c k mod 1)) (four cos /
    sin calls per spectrum instead of one per point; ~1e-14 relative error after < 100
    steps, far below complex64 rounding)."""
    block = small_r.shape[1]
    for i in range(cycles.shape[0]):
        c = cycles[i]
        _phasor_series(c, small_r[i])
        _phasor_series(c * block, small_q[i])


def _phasor_series_py(cycles, out):
    """Write out[k] = exp(2j pi cycles k) for k < len(out) by the recurrence of _ramp_parts
    (the whole turns of `cycles` dropped first, so the step angle stays in [0, 2 pi))."""
    step = 2.0 * math.pi * (cycles - math.floor(cycles))
    wr, wi = math.cos(step), math.sin(step)
    zr, zi = 1.0, 0.0
    for k in range(out.shape[0]):
        out[k] = complex(zr, zi)
        zr, zi = zr * wr - zi * wi, zr * wi + zi * wr


# Compiled before _ramp_parts, which calls it (kept in this file: numba's cache tracks only it).
_phasor_series = jit(_phasor_series_py)


def _ramp_pair_into(off, on, small_q, small_r, start, stop, buf, rows):
    """ramp_into for spectra start..stop-1 of OFF into buf rows 0.. and of ON into buf rows
    rows.. (one call per chunk of the compiled one-FFT path)."""
    ramp_into(off[start:stop], small_q[start:stop], small_r[start:stop], buf[: stop - start])
    ramp_into(on[start:stop], small_q[start:stop], small_r[start:stop], buf[rows:][: stop - start])


def _ramp_into(x, small_q, small_r, buf):
    """Write buf[i, q B + r] = x[i, q B + r] small_q[i, q] small_r[i, r] for the B-point blocks
    (B = small_r.shape[1]) of x [N, n_blocks B]; buf's other columns are left as they are."""
    n = x.shape[0]
    n_blocks, block = small_q.shape[1], small_r.shape[1]
    for i in range(n):
        for q in range(n_blocks):
            c = small_q[i, q]
            base = q * block
            for r in range(block):
                buf[i, base + r] = (x[i, base + r] * c) * small_r[i, r]


grid_rows = jit(_grid_rows)
ramp_into = jit(_ramp_into)
ramp_pair_into = jit(_ramp_pair_into)


def _window_peak(spec, i, bins, ppm, step_ppm):
    """Return (|S|^2, ppm) of the refined maximum of spectrum row i over FFT bins `bins` (the
    first and last are margins): the vertex of the parabola through 1/|S|^2 at the three bins
    around the maximum (float32 arithmetic as `features._refined_peak`)."""
    tiny = np.float32(np.finfo(np.float32).tiny)
    width = bins.shape[0]
    best = -1
    centre = np.float32(0.0)
    for j in range(1, width - 1):
        v = spec[i, bins[j]]
        p = v.real * v.real + v.imag * v.imag
        if best < 0 or p > centre:  # first maximum wins, as argmax
            best, centre = j, p
    v = spec[i, bins[best - 1]]
    below = v.real * v.real + v.imag * v.imag
    v = spec[i, bins[best + 1]]
    above = v.real * v.real + v.imag * v.imag
    one = np.float32(1.0)
    y_m, y_0, y_p = one / (below + tiny), one / (centre + tiny), one / (above + tiny)
    curvature = y_m - np.float32(2.0) * y_0 + y_p
    delta = np.float32(0.0)
    if curvature > 0:
        delta = (y_m - y_p) / (np.float32(2.0) * curvature)
    return centre, ppm[best] + delta * np.float32(step_ppm)  # float32 product, as torch


def _search_shift(spec, bins_a, ppm_a, ref_a, bins_b, ppm_b, ref_b, step_ppm, f0_mhz, out):
    """Write out[i] = the B0 shift in Hz of spectrum row i that puts the higher of the two
    refined window maxima (a: NAA, b: Cr) on its reference ppm (`features.b0_shift_hz`)."""
    for i in range(spec.shape[0]):
        h_a, p_a = window_peak(spec, i, bins_a, ppm_a, step_ppm)
        h_b, p_b = window_peak(spec, i, bins_b, ppm_b, step_ppm)
        shift_ppm = ref_a - p_a if h_a >= h_b else ref_b - p_b
        out[i] = shift_ppm * f0_mhz


def _rotate_rows(rows, cos_sin):
    """Rotate network-input rows [N, 4, W] (Im, Re pairs of OFF and ON) in place by the angle
    whose (cos, sin) is (cos_sin[i, 2j], cos_sin[i, 2j + 1]) (float32 [N, 2W], a complex
    array's view): Re' = Re c - Im s, Im' = Im c + Re s."""
    for i in range(rows.shape[0]):
        for pair in range(0, 4, 2):
            for j in range(rows.shape[2]):
                c = cos_sin[i, 2 * j]
                s = cos_sin[i, 2 * j + 1]
                im = rows[i, pair, j]
                re = rows[i, pair + 1, j]
                rows[i, pair + 1, j] = re * c - im * s
                rows[i, pair, j] = im * c + re * s


window_peak = jit(_window_peak)
search_shift = jit(_search_shift)
ramp_parts = jit(_ramp_parts)
linear_phase = jit(_linear_phase)
rotate_rows = jit(_rotate_rows)


def _matched_network_rows(
    fft,
    search_plan,
    rows_plan,
    search_in,
    search_out,
    buf,
    spec,
    fids,
    outs,
    align,
    shift,
    search,
    bins_a,
    bins_b,
    ramp,
    rate,
    pivot,
    scale,
    finite,
):
    """The whole compiled one-FFT grid function of a slice in one call (no Python between its
    steps): write the network input of the FID pairs fids = (OFF, ON[, OFF2, ON2]) (complex64
    [N, T] each) into outs[p] (float32 [N, 4, W]) with their scale and finiteness into
    scale[p], finite[p] ([n_pairs, N]), and the B0 shift into shift (float32 [N]).

    The same steps and arithmetic as gabaapp.preproc.features' loop (b0_shift_hz's search,
    _compiled_ramp_factors, then per chunk ramp_pair_into, the FFT, linear_phase, grid_rows):
    when `align`, OFF of the first pair (zero-padded into search_in [N, L_s]) is transformed
    into search_out and search_shift writes shift; otherwise shift holds the shift to apply
    (zeros: none). Each pair is ramped by exp(2j pi (shift dwell + base) n) into `buf`
    ([2 n_pairs R, L] complex64, zeros beyond the ramped columns; R spectra per chunk, OFF then
    ON rows of each pair), transformed into `spec`, and its first W bins written as rows,
    rotated by the first-order phase rate[i] (ppm - shift[i] / f0 - pivot[i]) where rate has
    N values (none where it is empty).

    fft: DftiComputeForward (ctypes function: descriptor, input, output addresses) with the
    committed descriptors search_plan (N rows of L_s) and rows_plan (2 n_pairs R rows of L);
    search (float64): ref_a, ref_b, step_ppm, f0_mhz and the two windows' ppm (a then b,
    lengths of bins_a / bins_b); ramp (float64): dwell_s, base cycles (-k0 / L), block, ppm_low,
    grid step (ppm).
    """
    n, n_points = fids[0].shape
    n_fids = len(fids)
    rows = buf.shape[0] // n_fids
    width = outs[0].shape[2]
    ref_a, ref_b, step_ppm, f0_mhz = search[0], search[1], search[2], search[3]
    na = bins_a.shape[0]
    ppm_a = search[4 : 4 + na]
    ppm_b = search[4 + na : 4 + na + bins_b.shape[0]]
    dwell, base, block = ramp[0], ramp[1], np.int64(ramp[2])
    ppm_low, grid_step = ramp[3], ramp[4]
    if align:
        search_in[:n, :n_points] = fids[0]
        if fft(search_plan, search_in.ctypes.data, search_out.ctypes.data) != 0:
            raise RuntimeError("MKL DFTI forward transform failed")
        search_shift(
            search_out, bins_a, ppm_a, ref_a, bins_b, ppm_b, ref_b, step_ppm, f0_mhz, shift
        )
    cycles = np.empty(n)
    for i in range(n):
        cycles[i] = np.float64(shift[i]) * dwell + base
    small_q = np.empty((n, n_points // block), dtype=np.complex64)
    small_r = np.empty((n, block), dtype=np.complex64)
    ramp_parts(cycles, small_q, small_r)
    has_phase = rate.shape[0] > 0
    rot = np.empty((rows, 2 if has_phase else 0, width), dtype=np.float32)
    phase = np.empty((rows, 2))
    spec_f = spec.view(np.float32)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        m = stop - start
        for p in range(n_fids // 2):
            ramp_pair_into(
                fids[2 * p],
                fids[2 * p + 1],
                small_q,
                small_r,
                start,
                stop,
                buf[2 * p * rows :],
                rows,
            )
        # rows m..rows-1 of a last, partial chunk hold earlier FIDs: transformed, not used
        if fft(rows_plan, buf.ctypes.data, spec.ctypes.data) != 0:
            raise RuntimeError("MKL DFTI forward transform failed")
        if has_phase:
            for k in range(m):
                i = start + k
                moved = np.float64(shift[i]) / f0_mhz
                phase[k, 0] = rate[i] * (ppm_low - moved - pivot[i])
                phase[k, 1] = rate[i] * grid_step
            linear_phase(phase[:m], rot[:m])
        for p in range(n_fids // 2):
            off_f = spec_f[2 * p * rows : 2 * p * rows + m]
            on_f = spec_f[(2 * p + 1) * rows : (2 * p + 1) * rows + m]
            sc, fin = grid_rows(off_f, on_f, on_f.view(np.int32), outs[p][start:stop], rot[:m])
            scale[p, start:stop] = sc
            finite[p, start:stop] = fin


matched_network_rows = jit(_matched_network_rows)
