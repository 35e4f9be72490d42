"""Spectral registration and outlier rejection on transients with KNOWN drift and corruption."""

import numpy as np
import pytest
from test_preproc_synth import ACQ, clean_off_on, make_scan

from gabaapp.preproc.align import (
    align_pair,
    align_transients,
    apply_shift_phase,
    spectral_registration,
)
from gabaapp.preproc.coils import coil_weights, combine_coils, noise_covariance
from gabaapp.preproc.outliers import deviation_from_median, find_outliers


def _combined(scan):
    data = scan.metab.data
    return combine_coils(data, coil_weights(scan.water.data, noise_covariance(data)))


def _errors(est_hz, est_rad, true_hz, true_rad):
    """RMS errors (Hz, deg) after removing the common offset (the reference is arbitrary)."""
    ef = est_hz - true_hz
    ef -= ef.mean()
    ep = np.angle(np.exp(1j * (est_rad - true_rad)))
    ep -= ep.mean()
    return np.sqrt(np.mean(ef**2)), np.degrees(np.sqrt(np.mean(ep**2)))


def test_shift_phase_round_trip():
    off, _ = clean_off_on()
    moved = off * np.exp(1j * (2 * np.pi * 3.3 * ACQ.time_axis() + 0.4))
    np.testing.assert_allclose(apply_shift_phase(moved, ACQ, 3.3, 0.4), off, atol=1e-12)


def test_noise_free_offsets_are_exact():
    off, _ = clean_off_on()
    f = np.array([-7.0, -0.3, 0.0, 2.5, 11.0])
    p = np.radians([30.0, -10.0, 0.0, 5.0, -60.0])
    x = off[None] * np.exp(1j * (2 * np.pi * f[:, None] * ACQ.time_axis() + p[:, None]))
    est_f, est_p = spectral_registration(x, off, ACQ, ppm_range=(1.8, 4.2))
    np.testing.assert_allclose(est_f, f, atol=1e-3)
    np.testing.assert_allclose(est_p, p, atol=1e-3)


@pytest.mark.parametrize("method", ["sr", "robust"])
def test_random_walk_drift_and_phase_jitter_are_recovered(method):
    # Per-transient SNR 30 (NAA height / spectral noise SD of one combined transient),
    # drift: random walk of 0.4 Hz steps (several Hz over the scan), phase SD 10 deg.
    scan = make_scan(np.random.default_rng(3), n_coils=4, n_dyn=64, snr=30.0)
    x = _combined(scan)
    for e in (0, 1):
        res = align_transients(x[:, e], ACQ, method=method)
        rms_hz, rms_deg = _errors(
            res.freq_hz, res.phase_rad, scan.drift_hz[:, e], scan.phase_rad[:, e]
        )
        assert np.ptp(scan.drift_hz[:, e]) > 3.0  # the injected drift is substantial
        assert rms_hz < 0.1
        assert rms_deg < 1.0


def test_robust_alignment_ignores_corrupted_transients_and_residual_water():
    scan = make_scan(
        np.random.default_rng(4), n_coils=4, n_dyn=64, snr=30.0, n_corrupted=6, water_amplitude=20
    )
    x = _combined(scan)
    for e in (0, 1):
        ok = ~scan.corrupted[:, e]
        res = align_transients(x[:, e], ACQ, method="robust")
        rms_hz, rms_deg = _errors(
            res.freq_hz[ok], res.phase_rad[ok], scan.drift_hz[ok, e], scan.phase_rad[ok, e]
        )
        assert rms_hz < 0.1 and rms_deg < 1.0


def test_single_transient_and_invalid_ones_are_left_alone():
    off, _ = clean_off_on()
    res = align_transients(off[None], ACQ)
    assert res.freq_hz[0] == 0 and res.phase_rad[0] == 0
    np.testing.assert_array_equal(res.aligned, off[None])
    x = np.stack([off, off * np.exp(2j * np.pi * 1.0 * ACQ.time_axis()), off])
    res = align_transients(x, ACQ, valid=np.array([True, True, False]))
    assert np.isnan(res.freq_hz[2]) and np.isfinite(res.freq_hz[:2]).all()
    np.testing.assert_array_equal(res.aligned[2], off)


def test_outliers_are_found_with_few_false_rejections():
    scan = make_scan(np.random.default_rng(5), n_coils=4, n_dyn=100, snr=20.0, n_corrupted=8)
    x = _combined(scan)
    for e in (0, 1):
        aligned = align_transients(x[:, e], ACQ).aligned
        rejected, z = find_outliers(deviation_from_median(aligned, ACQ), 3.0)
        bad = scan.corrupted[:, e]
        assert rejected[bad].all()
        assert rejected[~bad].sum() <= 0.05 * (~bad).sum()


def test_on_is_aligned_to_off_on_the_cr_cho_band():
    off, on = clean_off_on()
    moved = on * np.exp(1j * (2 * np.pi * 1.7 * ACQ.time_axis() + 0.2))
    f, p = align_pair(moved, off, ACQ, ppm_range=((3.15, 3.35), (3.85, 4.05)))
    # Only the tails of the edited doublet (2.96/3.06 ppm) and Glx (3.75 ppm) reach the bands.
    assert f == pytest.approx(1.7, abs=0.02)
    assert p == pytest.approx(0.2, abs=0.01)
