"""Time-domain resampling of basis FIDs onto the data sampling (gabaapp.lcm.resample)."""

from __future__ import annotations

import numpy as np
import pytest

from gabaapp.constants import CR_PPM, NAA_PPM
from gabaapp.errors import DataError
from gabaapp.lcm.baseline import second_difference, spline_design
from gabaapp.lcm.resample import resample_fids
from gabaapp.spectra import Acquisition, fid_to_spectrum


def lines_fid(acq: Acquisition, lines, lw_hz: float) -> np.ndarray:
    """Return sum of Lorentzian lines [(ppm, amplitude)] sampled on `acq`."""
    t = acq.time_axis()
    hz = [(ppm - acq.centre_ppm) * acq.f0_mhz for ppm, _ in lines]
    return sum(
        a * np.exp(2j * np.pi * f * t - np.pi * lw_hz * t)
        for (_, a), f in zip(lines, hz, strict=True)
    )


LINES = [(NAA_PPM, 4.0), (CR_PPM, 3.0), (3.92, 2.0), (2.28, 1.0)]
BASIS_ACQ = Acquisition(f0_mhz=123.23, dwell_s=0.4e-3, n_points=4096, centre_ppm=3.0)


@pytest.mark.parametrize(
    "data_acq",
    [
        Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=2048),  # 2000 Hz, water centre
        Acquisition(f0_mhz=123.23, dwell_s=1 / 1200, n_points=1024),  # Siemens RDA-like
        Acquisition(f0_mhz=123.23, dwell_s=0.2e-3, n_points=4096),  # 5000 Hz (GE-like)
    ],
)
def test_resampled_fid_equals_fid_simulated_on_data_grid(data_acq):
    basis = lines_fid(BASIS_ACQ, LINES, lw_hz=2.0)
    got = resample_fids(basis[None], BASIS_ACQ, data_acq)[0]
    expected = lines_fid(data_acq, LINES, lw_hz=2.0)
    # Lines keep their ppm (centre moved from 3.0 to 4.65 ppm, sampling changed). Compare
    # spectra over the metabolite range: direct sampling also folds the far Lorentzian tails
    # back into the band (a smooth offset of ~0.1 % of the peaks) that a band-limited receiver
    # and this resampling do not.
    ppm = data_acq.ppm_axis()
    sel = (ppm > 1.0) & (ppm < 4.2)
    s_got, s_exp = fid_to_spectrum(got)[sel], fid_to_spectrum(expected)[sel]
    assert np.max(np.abs(s_got - s_exp)) < 5e-3 * np.max(np.abs(s_exp))
    peak = data_acq.ppm_axis()[np.argmax(np.abs(fid_to_spectrum(got)))]
    assert peak == pytest.approx(NAA_PPM, abs=2 / data_acq.n_points / data_acq.dwell_s / 123.23)


def test_longer_basis_on_same_grid_is_truncated_exactly():
    basis_acq = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=4096)
    data_acq = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=2048)
    got = resample_fids(lines_fid(basis_acq, LINES, 0.0)[None], basis_acq, data_acq)[0]
    np.testing.assert_allclose(got, lines_fid(data_acq, LINES, 0.0), atol=1e-9)


def test_components_outside_data_band_are_removed_not_aliased():
    # a line at 11.0 ppm lies inside the basis band (3.0 +- 10.1 ppm) but outside the data
    # band (4.65 +- 4.87 ppm at 1200 Hz): it must vanish, not fold onto ~1.3 ppm
    data_acq = Acquisition(f0_mhz=123.23, dwell_s=1 / 1200, n_points=1024)
    basis = lines_fid(BASIS_ACQ, [(11.0, 1.0)], lw_hz=2.0)
    got = fid_to_spectrum(resample_fids(basis[None], BASIS_ACQ, data_acq)[0])
    aliased = fid_to_spectrum(lines_fid(data_acq, [(11.0, 1.0)], lw_hz=2.0))
    assert np.max(np.abs(got)) < 1e-2 * np.max(np.abs(aliased))


def test_same_sampling_is_identity():
    x = lines_fid(BASIS_ACQ, LINES, 2.0)[None]
    assert resample_fids(x, BASIS_ACQ, BASIS_ACQ) is not None
    np.testing.assert_array_equal(resample_fids(x, BASIS_ACQ, BASIS_ACQ), x)


def test_data_longer_than_basis_is_a_data_error():
    long_acq = Acquisition(f0_mhz=123.23, dwell_s=1e-3, n_points=4096)  # 4.1 s > 1.6 s
    with pytest.raises(DataError, match="exceeds the basis"):
        resample_fids(np.ones((1, 4096), complex), BASIS_ACQ, long_acq)


def test_other_field_strength_is_a_data_error():
    acq_7t = Acquisition(f0_mhz=297.2, dwell_s=0.25e-3, n_points=2048)
    with pytest.raises(DataError, match="297.200 MHz"):
        resample_fids(np.ones((1, 4096), complex), BASIS_ACQ, acq_7t)


def test_spline_baseline_is_partition_of_unity_and_penalty_kills_lines():
    ppm = np.linspace(1.0, 4.2, 400)
    b = spline_design(ppm, (1.0, 4.2), 0.15)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    d2 = second_difference(b.shape[1])
    # straight lines in the coefficients have zero curvature penalty
    c = 0.3 + 0.7 * np.arange(b.shape[1])
    np.testing.assert_allclose(d2 @ c, 0.0, atol=1e-12)
