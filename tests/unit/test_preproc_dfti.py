"""The DFTI FFT of torch's MKL (gabaapp.preproc.dfti) against numpy's double-precision FFT."""

import threading

import numpy as np
import pytest
import torch  # noqa: F401  (dfti looks for the library torch has loaded)

from gabaapp.preproc import dfti

pytestmark = pytest.mark.skipif(not dfti.available(), reason="torch without MKL's DFTI")


def _rows(n_rows: int, n: int, filled: int, seed: int) -> np.ndarray:
    """Return complex64 [n_rows, n] rows: random values in the first `filled` columns, zeros
    after (a zero-filled FID, as the grid path transforms)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_rows, n), dtype=np.complex64)
    x[:, :filled] = rng.normal(size=(n_rows, filled)) + 1j * rng.normal(size=(n_rows, filled))
    return x


@pytest.mark.parametrize(("n_rows", "n"), [(1, 2048), (8, 4096), (32, 4096), (5, 1000)])
def test_fft_equals_numpy_double_precision_fft(n_rows, n):
    x = _rows(n_rows, n, min(n, 1767), n_rows)
    out = np.full_like(x, np.nan)
    dfti.fft(x, out)
    expected = np.fft.fft(x.astype(np.complex128), axis=-1)
    # float32 FFT rounding: ~1e-7 x sqrt(log2 n) relative to the spectrum's scale
    scale = np.abs(expected).max()
    np.testing.assert_allclose(out, expected, atol=2e-6 * scale, rtol=0)
    assert np.array_equal(x, _rows(n_rows, n, min(n, 1767), n_rows))  # input untouched


def test_fft_in_threads_uses_own_descriptors_and_matches():
    # Several threads at once, each with its own descriptors and sizes: same results.
    xs = [_rows(8, 4096, 1767, s) for s in range(4)]
    expected = [np.fft.fft(x.astype(np.complex128), axis=-1) for x in xs]
    got = [np.empty_like(x) for x in xs]

    def work(k: int) -> None:
        for _ in range(20):
            dfti.fft(xs[k], got[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=2e-6 * np.abs(e).max(), rtol=0)


def test_fft_rejects_arrays_it_cannot_take():
    x = _rows(2, 64, 64, 0)
    with pytest.raises(ValueError, match="complex64"):
        dfti.fft(x.astype(np.complex128), np.empty((2, 64), np.complex128))
    with pytest.raises(ValueError, match="C-contiguous"):
        dfti.fft(x[:, ::2], np.empty((2, 32), np.complex64))
