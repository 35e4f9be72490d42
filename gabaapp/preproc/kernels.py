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


def _jit(fn):
    """Compile `fn` with numba (no Python objects, GIL released so that worker threads run in
    parallel, cached on disk), or return None without numba."""
    if numba is None:  # pragma: no cover
        return None
    options = {"nogil": True, "fastmath": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # pragma: no cover - no writable cache location (read-only install)
        return numba.njit(**options)(fn)


def _grid_rows(s_off, s_on, start, out):
    """Write out[i] = (Im OFF, Re OFF, Im ON, Re ON) / max|OFF| over columns start..start+W of
    the spectra s_off, s_on [N, >= start + W] (W = out.shape[2]); return (scale [N] float32,
    finite [N] bool: no NaN/inf in either spectrum's window)."""
    n, width = out.shape[0], out.shape[2]
    scale = np.empty(n, dtype=np.float32)
    finite = np.empty(n, dtype=np.bool_)
    for i in range(n):
        peak = np.float32(0.0)
        total = np.float32(0.0)
        for j in range(width):
            v = s_off[i, start + j]
            re = v.real
            im = v.imag
            p = re * re + im * im
            total += p
            if p > peak:
                peak = p
        s = np.float32(math.sqrt(peak))
        inv = np.float32(1.0) / s
        scale[i] = s
        for j in range(width):
            v = s_off[i, start + j]
            out[i, 0, j] = v.imag * inv
            out[i, 1, j] = v.real * inv
        for j in range(width):
            v = s_on[i, start + j]
            total += v.real + v.imag  # NaN/inf anywhere makes the sum non-finite
            out[i, 2, j] = v.imag * inv
            out[i, 3, j] = v.real * inv
        finite[i] = math.isfinite(total) and math.isfinite(s)
    return scale, finite


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


grid_rows = _jit(_grid_rows)
ramp_into = _jit(_ramp_into)
