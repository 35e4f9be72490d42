"""Grid-matched sampling: the one-FFT path of network_input equals the chirp-z path."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from gabaapp.constants import GRID_POINTS
from gabaapp.errors import DataError
from gabaapp.preproc.features import (
    GRID_FFT_LEN,
    GRID_STEP_PPM,
    grid_acquisition,
    grid_match,
    grid_ppm,
    network_input,
    spectra_on_grid,
)
from gabaapp.spectra import Acquisition

GRID = grid_acquisition(123.23, 2.048)


def _fids(acq: Acquisition, n: int, seed: int) -> np.ndarray:
    """Return n FIDs of NAA, Cr, Cho-like and water singlets with random shifts, widths and
    phases, plus white noise (complex128)."""
    rng = np.random.default_rng(seed)
    t = acq.time_axis()
    out = np.zeros((n, acq.n_points), complex)
    for ppm, amp in ((2.01, 3.0), (3.015, 2.5), (3.2, 1.5), (3.9, 1.0), (4.68, 6.0)):
        hz = (ppm - acq.centre_ppm) * acq.f0_mhz + rng.uniform(-15, 15, (n, 1))
        lw = rng.uniform(2, 10, (n, 1))
        out += amp * np.exp(2j * np.pi * hz * t - np.pi * lw * t + 1j * rng.uniform(-1, 1, (n, 1)))
    return out + 0.05 * (rng.normal(size=out.shape) + 1j * rng.normal(size=out.shape))


def test_grid_acquisition_puts_the_grid_on_fft_bins():
    fft_len, k0 = grid_match(GRID)
    assert fft_len == GRID_FFT_LEN
    # 1 / dwell = fft_len grid steps; the acquisition time is kept (to one dwell)
    assert 1.0 / GRID.dwell_s == pytest.approx(fft_len * GRID_STEP_PPM * GRID.f0_mhz, rel=1e-12)
    assert abs(GRID.n_points * GRID.dwell_s - 2.048) <= GRID.dwell_s / 2
    # grid point j is bin (L - 2048)/2 + j of the fftshift-ed, zero-filled FFT: same ppm, and
    # the same values as spectra_on_grid (which takes the one-FFT path here)
    first = (fft_len - GRID_POINTS) // 2
    ppm = GRID.centre_ppm + np.fft.fftshift(np.fft.fftfreq(fft_len, GRID.dwell_s)) / GRID.f0_mhz
    np.testing.assert_allclose(ppm[first : first + GRID_POINTS], grid_ppm(), atol=1e-9)
    fid = _fids(GRID, 2, 0)
    spec = np.fft.fftshift(np.fft.fft(fid, n=fft_len), axes=-1)[:, first : first + GRID_POINTS]
    np.testing.assert_allclose(spectra_on_grid(fid, GRID), spec, atol=1e-9 * np.abs(spec).max())
    assert (k0 - (fft_len - first)) % fft_len == 0  # bin of grid point 0 in FFT order


@pytest.mark.parametrize(
    "acq",
    [
        Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=4096),  # a scanner's sampling
        replace(GRID, dwell_s=GRID.dwell_s * (1 + 1e-7)),  # SW off the FFT grid
        replace(GRID, centre_ppm=GRID.centre_ppm + GRID_STEP_PPM / 2),  # half a bin off
        replace(GRID, n_points=GRID_FFT_LEN + 1),  # longer than the FFT
    ],
    ids=["scanner", "sw", "centre", "length"],
)
def test_other_samplings_are_not_grid_matched(acq):
    assert grid_match(acq) is None


def test_grid_acquisition_needs_room_for_the_b0_search():
    with pytest.raises(DataError, match="FFT length"):
        grid_acquisition(123.23, 2.0, fft_len=2300)
    with pytest.raises(DataError, match="FFT length"):
        grid_acquisition(123.23, 2.0, fft_len=4097)


@pytest.mark.parametrize("kind", ["numpy-float64", "torch-complex64"])
@pytest.mark.parametrize("mode", ["align", "given-shift", "no-align"])
def test_one_fft_path_equals_chirp_z_path(kind, mode):
    off, on = _fids(GRID, 24, 1), _fids(GRID, 24, 2)
    if kind.startswith("torch"):
        off = torch.as_tensor(off, dtype=torch.complex64)
        on = torch.as_tensor(on, dtype=torch.complex64)
    kwargs = {"return_shift_hz": True}
    if mode == "given-shift":
        kwargs["shift_hz"] = (
            np.linspace(-7.3, 9.1, 24)
            if kind.startswith("numpy")
            else (torch.linspace(-7.3, 9.1, 24))
        )
    if mode == "no-align":
        kwargs["align"] = False
    fast, shift_fast = network_input(off, on, GRID, **kwargs)
    slow, shift_slow = network_input(off, on, GRID, transform="chirp-z", **kwargs)
    fast, slow = np.asarray(fast), np.asarray(slow)
    # same B0 shift (the same search), same max-normalisation, same values to float32 rounding
    np.testing.assert_array_equal(np.asarray(shift_fast), np.asarray(shift_slow))
    if mode == "align":
        assert np.abs(np.asarray(shift_fast)).max() > 1.0  # the alignment did move spectra
    # max |edit-OFF| on the grid is 1 for every spectrum
    np.testing.assert_allclose(np.hypot(fast[:, 0], fast[:, 1]).max(axis=-1), 1.0, atol=1e-6)
    tol = 1e-6 if kind.startswith("numpy") else 5e-6
    np.testing.assert_allclose(fast, slow, atol=tol)


def test_out_receives_the_result_and_is_checked():
    off, on = _fids(GRID, 3, 3), _fids(GRID, 3, 4)
    out = np.full((3, 4, GRID_POINTS), np.nan, dtype=np.float32)
    got = network_input(off, on, GRID, out=out)
    assert got is out
    np.testing.assert_array_equal(out, network_input(off, on, GRID))
    with pytest.raises(ValueError, match="out must be"):
        network_input(off, on, GRID, out=np.zeros((3, 4, 10), np.float32))


def test_grid_matched_sampling_whose_window_misses_the_grid_raises():
    # grid-matched (integer bins) but centred so that 1.0-4.5 ppm crosses the window edge
    off_centre = replace(GRID, centre_ppm=GRID.centre_ppm + 1000 * GRID_STEP_PPM)
    assert grid_match(off_centre) is not None
    fid = _fids(GRID, 1, 5)
    with pytest.raises(DataError, match="spectral width"):
        network_input(fid, fid, off_centre, align=False)
