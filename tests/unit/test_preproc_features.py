"""The network input (preproc.features) against direct DTFT sums and known singlets."""

import numpy as np
import pytest
import torch

from gabaapp.constants import CR_PPM, GRID_POINTS, NAA_PPM
from gabaapp.errors import DataError
from gabaapp.preproc.features import b0_shift_hz, grid_ppm, network_input, spectra_on_grid
from gabaapp.spectra import Acquisition

ACQ_3T = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=4096)
# FID-A basis sampling: 2500 Hz, centre 3.0 ppm.
ACQ_FIDA = Acquisition(f0_mhz=123.23, dwell_s=0.4e-3, n_points=4096, centre_ppm=3.0)
SAMPLINGS = [
    ACQ_3T,
    ACQ_FIDA,
    Acquisition(f0_mhz=127.75, dwell_s=1 / 1200, n_points=1024),
    Acquisition(f0_mhz=297.22, dwell_s=1 / 4000, n_points=4095),
]


def singlet(acq: Acquisition, ppm: float, lw_hz: float = 2.0, amp: float = 1.0) -> np.ndarray:
    t = acq.time_axis()
    hz = (ppm - acq.centre_ppm) * acq.f0_mhz
    return amp * np.exp(2j * np.pi * hz * t - np.pi * lw_hz * t)


def test_grid_is_2048_points_from_1_to_4p5_ppm():
    g = grid_ppm()
    assert g.shape == (GRID_POINTS,)
    assert g[0] == pytest.approx(1.0) and g[-1] == pytest.approx(4.5)
    assert np.all(np.diff(g) > 0)


@pytest.mark.parametrize("acq", SAMPLINGS, ids=lambda a: f"{a.n_points}x{a.dwell_s:.2e}")
def test_grid_spectrum_equals_direct_dtft(acq):
    rng = np.random.default_rng(1)
    fids = rng.normal(size=(2, acq.n_points)) + 1j * rng.normal(size=(2, acq.n_points))
    every = slice(None, None, 7)  # a direct DTFT on every 7th grid point keeps the test fast
    hz = ((grid_ppm() - acq.centre_ppm) * acq.f0_mhz)[every]
    direct = fids @ np.exp(-2j * np.pi * np.outer(acq.time_axis(), hz))
    got = spectra_on_grid(fids, acq)[:, every]
    np.testing.assert_allclose(got, direct, atol=1e-9 * np.abs(direct).max())
    # A shift moves every line up by shift_hz: DTFT evaluated at f - shift.
    shift = np.array([1.7, -3.2])
    direct_shifted = np.stack(
        [fids[i] @ np.exp(-2j * np.pi * np.outer(acq.time_axis(), hz - shift[i])) for i in (0, 1)]
    )
    got_shifted = spectra_on_grid(fids, acq, shift)[:, every]
    np.testing.assert_allclose(got_shifted, direct_shifted, atol=1e-9 * np.abs(direct).max())


@pytest.mark.parametrize("offset_ppm", [-0.2, -0.031, 0.0, 0.0123, 0.17])
def test_known_naa_offset_is_recovered(offset_ppm):
    off = singlet(ACQ_3T, NAA_PPM + offset_ppm) + 0.4 * singlet(ACQ_3T, CR_PPM + offset_ppm)
    shift = b0_shift_hz(off[None], ACQ_3T)
    # Cr's Lorentzian tail 1 ppm away biases the vertex by a few mHz at most.
    assert shift[0] == pytest.approx(-offset_ppm * ACQ_3T.f0_mhz, abs=0.01)
    x = network_input(off[None], off[None], ACQ_3T)
    assert grid_ppm()[np.argmax(x[0, 1])] == pytest.approx(NAA_PPM, abs=grid_ppm()[1] - 1.0)


def test_stronger_cr_decides():
    off = 0.3 * singlet(ACQ_3T, NAA_PPM + 0.05) + singlet(ACQ_3T, CR_PPM + 0.08)
    shift = b0_shift_hz(off[None], ACQ_3T)
    assert shift[0] == pytest.approx(-0.08 * ACQ_3T.f0_mhz, abs=0.01)


def test_rows_order_scale_and_phase():
    # A pure absorption singlet exactly on a grid point: OFF-real peaks at 1, OFF-imag ~ 0 there.
    g = grid_ppm()
    ppm = g[np.argmin(np.abs(g - NAA_PPM))]
    off = singlet(ACQ_3T, ppm)
    on = 0.5 * singlet(ACQ_3T, ppm)
    x = network_input(off[None], on[None], ACQ_3T, align=False)
    assert x.shape == (1, 4, GRID_POINTS) and x.dtype == np.float32
    k = int(np.argmax(x[0, 1]))
    assert g[k] == pytest.approx(ppm)
    assert x[0, 1, k] == pytest.approx(1.0, abs=1e-6)
    assert abs(x[0, 0, k]) < 1e-3
    assert x[0, 3, k] == pytest.approx(0.5, abs=1e-6)
    assert np.max(np.hypot(x[0, 0], x[0, 1])) == pytest.approx(1.0, abs=1e-6)


def test_different_samplings_land_on_one_grid():
    # The same physical signal sampled at 2000 Hz (centre 4.65) and 2500 Hz (centre 3.0).
    outs = []
    for acq in (ACQ_3T, ACQ_FIDA):
        off = singlet(acq, NAA_PPM + 0.03, lw_hz=4.0) + 0.6 * singlet(acq, CR_PPM + 0.03, 5.0)
        on = singlet(acq, NAA_PPM + 0.03, lw_hz=4.0) + 0.3 * singlet(acq, 3.0, 8.0)
        outs.append(network_input(off[None], on[None], acq))
    # Differences come only from the periodic (aliased) tails of the two DTFTs.
    np.testing.assert_allclose(outs[0], outs[1], atol=5e-3)


def test_numpy_and_torch_give_the_same_input():
    rng = np.random.default_rng(2)
    off = np.stack([singlet(ACQ_3T, NAA_PPM + d) for d in rng.uniform(-0.2, 0.2, 5)])
    on = off + 0.01 * (rng.normal(size=off.shape) + 1j * rng.normal(size=off.shape))
    x_np, s_np = network_input(off, on, ACQ_3T, return_shift_hz=True)
    x_t, s_t = network_input(
        torch.from_numpy(off), torch.from_numpy(on), ACQ_3T, return_shift_hz=True
    )
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.float32
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-6)
    np.testing.assert_allclose(s_t.numpy(), s_np, atol=1e-9)
    # Single precision torch input (the simulator's batches) agrees to float32 accuracy.
    x_32 = network_input(
        torch.from_numpy(off).to(torch.complex64), torch.from_numpy(on).to(torch.complex64), ACQ_3T
    )
    np.testing.assert_allclose(x_32.numpy(), x_np, atol=2e-4)


def test_leading_axes_are_flattened():
    off = np.broadcast_to(singlet(ACQ_3T, NAA_PPM), (2, 3, ACQ_3T.n_points))
    assert network_input(off, off, ACQ_3T).shape == (6, 4, GRID_POINTS)


def test_bad_input_raises_data_error():
    off = singlet(ACQ_3T, NAA_PPM)[None]
    with pytest.raises(DataError, match="differ in shape"):
        network_input(off, np.concatenate([off, off]), ACQ_3T)
    bad = off.copy()
    bad[0, 10] = np.nan
    with pytest.raises(DataError, match="NaN"):
        network_input(bad, off, ACQ_3T)
    with pytest.raises(DataError, match="NaN"):
        network_input(off, bad, ACQ_3T)
    with pytest.raises(DataError, match="zero"):
        network_input(np.zeros_like(off), off, ACQ_3T)
    with pytest.raises(DataError, match="points"):
        network_input(off[:, :2048], off[:, :2048], ACQ_3T)
    narrow = Acquisition(f0_mhz=297.22, dwell_s=1 / 1000, n_points=1024)
    with pytest.raises(DataError, match="spectral width"):
        network_input(np.ones((1, 1024), complex), np.ones((1, 1024), complex), narrow)


def test_given_shift_is_applied_instead_of_measured():
    # A shift passed in (e.g. the noisy spectrum's, reused for its clean copy) gives exactly
    # what alignment with that measured shift gives; zero shift equals no alignment.
    off = np.stack(
        [singlet(ACQ_3T, NAA_PPM + d) + 0.4 * singlet(ACQ_3T, CR_PPM + d) for d in (0.03, -0.05)]
    )
    on = 0.5 * off
    x, shift = network_input(off, on, ACQ_3T, return_shift_hz=True)
    x_given, s_given = network_input(off, on, ACQ_3T, shift_hz=shift, return_shift_hz=True)
    np.testing.assert_allclose(x_given, x, atol=1e-6)
    np.testing.assert_allclose(s_given, shift)
    np.testing.assert_allclose(
        network_input(off, on, ACQ_3T, shift_hz=np.zeros(2)),
        network_input(off, on, ACQ_3T, align=False),
        atol=1e-6,
    )
    # A known shift moves the NAA peak of an unaligned singlet onto 2.01 ppm.
    hz = 0.05 * ACQ_3T.f0_mhz
    moved = network_input(off[1:], on[1:], ACQ_3T, shift_hz=np.array([hz]))
    peak_ppm = grid_ppm()[np.argmax(np.hypot(moved[0, 0], moved[0, 1]))]
    assert peak_ppm == pytest.approx(NAA_PPM, abs=2 * (grid_ppm()[1] - grid_ppm()[0]))
    with pytest.raises(DataError, match="shift_hz"):
        network_input(off, on, ACQ_3T, shift_hz=np.zeros(3))
