"""The FFT/ppm convention of gabaapp.spectra on synthetic signals of known frequency."""

import numpy as np
import pytest

from gabaapp.constants import DIM_COIL, DIM_TIME, NAA_PPM
from gabaapp.spectra import Acquisition, Basis, FIDs, fid_to_spectrum, spectrum_to_fid


def _singlet(acq: Acquisition, ppm: float, lw_hz: float = 2.0) -> np.ndarray:
    t = acq.time_axis()
    hz = (ppm - acq.centre_ppm) * acq.f0_mhz
    return np.exp(2j * np.pi * hz * t - np.pi * lw_hz * t)


def test_singlet_appears_at_its_ppm():
    acq = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=4096)
    spec = fid_to_spectrum(_singlet(acq, NAA_PPM))
    peak_ppm = acq.ppm_axis()[np.argmax(spec.real)]
    assert peak_ppm == pytest.approx(NAA_PPM, abs=acq.spectral_width_hz / acq.n_points / 123.23)


def test_ppm_axis_ascends_and_is_centred_on_water():
    acq = Acquisition(f0_mhz=127.75, dwell_s=0.5e-3, n_points=2048)
    ppm = acq.ppm_axis()
    assert np.all(np.diff(ppm) > 0)
    assert ppm[acq.n_points // 2] == pytest.approx(acq.centre_ppm)


def test_spectrum_round_trip():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 256)) + 1j * rng.normal(size=(3, 256))
    np.testing.assert_allclose(spectrum_to_fid(fid_to_spectrum(x)), x, atol=1e-12)


def test_fids_axes_by_tag():
    acq = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=64)
    f = FIDs(np.zeros((4, 64), complex), (DIM_COIL, DIM_TIME), acq)
    assert f.axis(DIM_COIL) == 0 and f.size(DIM_COIL) == 4 and f.size("DIM_DYN") == 1
    with pytest.raises(KeyError):
        f.axis("DIM_EDIT")
    with pytest.raises(ValueError):
        FIDs(np.zeros((4, 64), complex), (DIM_TIME, DIM_COIL), acq)


def test_basis_subset_names_missing_metabolite():
    acq = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=8)
    b = Basis(("Cr", "NAA"), np.ones((2, 8), complex), 2 * np.ones((2, 8), complex), acq, "h")
    assert b.subset(["NAA"]).names == ("NAA",)
    np.testing.assert_allclose(b.diff, np.ones((2, 8)))
    with pytest.raises(KeyError, match="GABA"):
        b.subset(["GABA"])
