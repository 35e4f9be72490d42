"""Batched complex64 FFTs by the DFTI interface of the MKL that torch already carries (optional).

`torch.fft.fft` on the CPU (x86 wheels) runs Intel MKL's DFTI, but each call creates and
commits a new DFTI descriptor (twiddle tables by sin and cos) and allocates its output:
~18 us per call on top of ~7 us per 4096-point row, and a fresh output of 1 MB per call
that glibc hands back to the system and the next call faults in again. The synthesiser's
grid path makes a dozen such calls per 64 spectra. Here the same library routine is called
through ctypes with one committed descriptor per thread and size (kept), into a buffer the
caller keeps: the same transform (MKL's, same algorithm and configuration as torch's call;
bit-identical synthesiser batches in our runs, benchmarks/bench_simulate_commits.py), with no
per-call set-up.

Used only where it changes nothing else: for torch inputs (whose FFT is this MKL routine
anyway), when torch has been imported by the caller and its library exports the DFTI
entry points (`available()`); everywhere else callers keep `xp.fft.fft`. This module does
not import torch (gabaapp.preproc is torch-free); it looks for the library torch has loaded.

DFTI's constants are those of Intel's published mkl_dfti.h (the C interface's enum values).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref

import numpy as np

# mkl_dfti.h: enum DFTI_CONFIG_PARAM / DFTI_CONFIG_VALUE
_DFTI_NUMBER_OF_TRANSFORMS = 7
_DFTI_PLACEMENT = 11
_DFTI_INPUT_DISTANCE = 14
_DFTI_OUTPUT_DISTANCE = 15
_DFTI_THREAD_LIMIT = 27
_DFTI_COMPLEX = 32
_DFTI_NOT_INPLACE = 44

_LOCK = threading.Lock()
_LIB: list = []  # [functions] once looked up, [None] when unavailable


def _library():
    """Return (create, set_value, commit, forward, free) ctypes functions of the DFTI in the
    loaded torch library, or None (torch not imported, no MKL, another platform)."""
    with _LOCK:
        if _LIB:
            return _LIB[0]
        _LIB.append(_find())
        return _LIB[0]


def _find():
    """Look the DFTI entry points up in torch's already loaded CPU library (never loads one:
    RTLD_NOLOAD), or return None."""
    torch = sys.modules.get("torch")
    path = getattr(torch, "__file__", None)
    if path is None or not hasattr(os, "RTLD_NOLOAD"):
        return None
    lib_path = os.path.join(os.path.dirname(path), "lib", "libtorch_cpu.so")
    try:
        lib = ctypes.CDLL(lib_path, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        create = lib.DftiCreateDescriptor_s_1d
        set_value = lib.DftiSetValue
        commit = lib.DftiCommitDescriptor
        forward = lib.DftiComputeForward
        free = lib.DftiFreeDescriptor
    except (OSError, AttributeError):
        return None
    long_, ptr = ctypes.c_long, ctypes.c_void_p
    # The variadic C functions (create, set_value, forward) are called with their fixed
    # argument types: integer and pointer arguments travel in the same registers either way
    # on the 64-bit ABIs these libraries are built for.
    create.argtypes, create.restype = [ctypes.POINTER(ptr), long_, long_], long_
    set_value.argtypes, set_value.restype = [ptr, long_, long_], long_
    commit.argtypes, commit.restype = [ptr], long_
    forward.argtypes, forward.restype = [ptr, ptr, ptr], long_
    free.argtypes, free.restype = [ctypes.POINTER(ptr)], long_
    return create, set_value, commit, forward, free


def available() -> bool:
    """Return True when the DFTI of torch's MKL can be called here."""
    return _library() is not None


class _Descriptor:
    """One committed DFTI descriptor: `rows` out-of-place complex64 FFTs of length n, rows
    n apart in input and output, single-threaded; freed with the object."""

    def __init__(self, n: int, rows: int):
        create, set_value, commit, self._forward, free = _library()
        self.handle = ctypes.c_void_p()
        status = create(ctypes.byref(self.handle), _DFTI_COMPLEX, n)
        for param, value in (
            (_DFTI_NUMBER_OF_TRANSFORMS, rows),
            (_DFTI_INPUT_DISTANCE, n),
            (_DFTI_OUTPUT_DISTANCE, n),
            (_DFTI_PLACEMENT, _DFTI_NOT_INPLACE),
            # one thread: the callers run one descriptor per worker thread
            (_DFTI_THREAD_LIMIT, 1),
        ):
            status = status or set_value(self.handle, param, value)
        status = status or commit(self.handle)
        # freed when the object goes (finalize also runs at exit, before ctypes is torn down)
        weakref.finalize(self, free, ctypes.byref(self.handle))
        if status != 0:
            raise RuntimeError(f"MKL DFTI descriptor setup failed (status {status})")

    def __call__(self, x: np.ndarray, out: np.ndarray) -> None:
        status = self._forward(self.handle, x.ctypes.data, out.ctypes.data)
        if status != 0:
            raise RuntimeError(f"MKL DFTI forward transform failed (status {status})")


_THREAD = threading.local()
# descriptors kept per thread (sizes: the grid path uses two or three)
_MAX_PLANS = 8


def _plan(n: int, rows: int) -> _Descriptor:
    """Return this thread's descriptor for `rows` FFTs of length n, made on first use."""
    plans = getattr(_THREAD, "plans", None)
    if plans is None:
        plans = _THREAD.plans = {}
    plan = plans.get((n, rows))
    if plan is None:
        if len(plans) >= _MAX_PLANS:
            plans.clear()
        plan = plans[(n, rows)] = _Descriptor(n, rows)
    return plan


def handle(n: int, rows: int) -> int:
    """Return the address of this thread's committed descriptor for `rows` FFTs of length n
    (C-contiguous complex64 rows, out of place), for compiled code that calls
    `forward_function()` itself; valid while this thread makes no descriptors of more than
    _MAX_PLANS other sizes. Call only when `available()`."""
    return int(_plan(n, rows).handle.value)


def forward_function():
    """Return DftiComputeForward as a ctypes function (descriptor, input address, output
    address) -> status, which numba-compiled code can take as an argument and call."""
    return _library()[3]


def fft(x: np.ndarray, out: np.ndarray) -> None:
    """Write out = the FFT of each row of x (both C-contiguous complex64 [rows, n], distinct
    memory) by the DFTI of torch's MKL, with this thread's descriptor for (n, rows).
    Call only when `available()`."""
    if x.dtype != np.complex64 or out.dtype != np.complex64 or x.shape != out.shape:
        raise ValueError("dfti.fft needs complex64 input and output of the same shape")
    if not (x.flags.c_contiguous and out.flags.c_contiguous) or x.ndim != 2:
        raise ValueError("dfti.fft needs C-contiguous [rows, n] arrays")
    _plan(x.shape[1], x.shape[0])(x, out)
