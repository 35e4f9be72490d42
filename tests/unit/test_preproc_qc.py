"""QC metrics against Lorentzians of known width and injected noise of known SD."""

import numpy as np
import pytest
from test_preproc_synth import ACQ, lines_fid

from gabaapp.preproc.qc import diff_residual, drift_metrics, fwhm_hz, noise_sd, peak_ppm, snr
from gabaapp.spectra import fid_to_spectrum


@pytest.mark.parametrize("lw_hz", [3.0, 6.0, 12.0])
def test_fwhm_of_a_lorentzian(lw_hz):
    fid = lines_fid(ACQ, ((2.01, 1.0, lw_hz),)) * np.exp(0.7j)  # any zero-order phase
    assert fwhm_hz(fid, ACQ, (1.9, 2.1)) == pytest.approx(lw_hz, rel=0.01)


def test_noise_sd_and_snr_with_known_noise():
    rng = np.random.default_rng(0)
    sd_time = 0.01
    noise = (
        sd_time * (rng.normal(size=ACQ.n_points) + 1j * rng.normal(size=ACQ.n_points)) / np.sqrt(2)
    )
    fid = lines_fid(ACQ, ((2.01, 1.0, 6.0),))
    expected_sd = sd_time * np.sqrt(ACQ.n_points / 2)  # real part of the unnormalised FFT
    assert noise_sd(fid + noise, ACQ) == pytest.approx(expected_sd, rel=0.15)
    height = fid_to_spectrum(fid).real.max()
    assert snr(fid + noise, ACQ) == pytest.approx(height / expected_sd, rel=0.15)


def test_peak_position():
    fid = lines_fid(ACQ, ((2.013, 1.0, 6.0),))
    assert peak_ppm(fid, ACQ, (1.9, 2.1)) == pytest.approx(2.013, abs=0.001)


def test_drift_metrics_ignore_nan():
    m = drift_metrics(np.array([1.0, np.nan, -2.0, 0.5]))
    assert m["drift_range_hz"] == pytest.approx(3.0)
    assert m["drift_sd_hz"] == pytest.approx(np.std([1.0, -2.0, 0.5]))


def test_diff_residual_is_zero_for_perfect_subtraction_and_grows_with_shift():
    off = lines_fid(ACQ, ((3.03, 1.0, 6.0),))
    assert diff_residual(off, 0 * off, ACQ, 3.03) == 0
    shifted = off * np.exp(2j * np.pi * 0.3 * ACQ.time_axis())
    r = diff_residual(off, shifted - off, ACQ, 3.03)
    assert 0.02 < r < 0.2
