"""Coil combination: known sensitivities, correlated noise, SNR against simple baselines."""

import numpy as np
import pytest
from test_preproc_synth import ACQ, lines_fid

from gabaapp.preproc.coils import coil_weights, combine_coils, noise_covariance
from gabaapp.preproc.qc import snr


def _coil_data(rng, n_coils=8, n_avg=16, correlation=0.5, snr_scale=1.0):
    signal = lines_fid(ACQ, ((2.01, 1.0, 6.0), (3.03, 0.8, 6.0)))
    sens = (rng.normal(size=n_coils) + 1j * rng.normal(size=n_coils)) * rng.uniform(0.1, 1, n_coils)
    mix = np.linalg.cholesky(np.eye(n_coils) * (1 - correlation) + correlation)
    sd = rng.uniform(0.5, 2.0, n_coils)[:, None]  # unequal coil noise
    z = rng.normal(size=(n_coils, n_avg, ACQ.n_points)) + 1j * rng.normal(
        size=(n_coils, n_avg, ACQ.n_points)
    )
    noise = 0.02 / snr_scale * sd[:, :, None] * np.tensordot(mix, z, axes=1)
    return sens[:, None, None] * signal + noise, sens, signal


def test_one_coil_passes_unchanged():
    x = np.arange(12, dtype=complex).reshape(1, 3, 4) + 1
    w = coil_weights(x, noise_covariance(x))
    np.testing.assert_allclose(combine_coils(x, w), x[0])


def test_combination_recovers_the_signal_shape_and_phase():
    rng = np.random.default_rng(0)
    data, sens, signal = _coil_data(rng, snr_scale=50)
    w = coil_weights(data, noise_covariance(data))
    comb = combine_coils(data, w).mean(axis=0)
    # Combined = gain * signal with a real positive gain (first point real and positive).
    gain = np.vdot(signal, comb) / np.vdot(signal, signal)
    assert abs(np.angle(gain)) < 0.01
    assert np.linalg.norm(comb - gain * signal) < 0.01 * np.linalg.norm(comb)


@pytest.mark.parametrize("correlation", [0.0, 0.5])
def test_wsvd_snr_beats_baselines(correlation):
    rng = np.random.default_rng(1)
    data, sens, _ = _coil_data(rng, correlation=correlation)
    cov = noise_covariance(data)
    avg = lambda w: combine_coils(data, w).mean(axis=0)  # noqa: E731
    snr_wsvd = snr(avg(coil_weights(data, cov, "wsvd")), ACQ)
    snr_signal = snr(avg(coil_weights(data, cov, "signal")), ACQ)
    best_single = max(snr(data[c].mean(axis=0), ACQ) for c in range(data.shape[0]))
    assert snr_wsvd >= 0.95 * snr_signal
    assert snr_wsvd >= best_single
    if correlation > 0:  # whitening pays off when coil noise is correlated
        assert snr_wsvd > 1.05 * snr_signal


def test_noise_covariance_matches_injected_noise():
    rng = np.random.default_rng(2)
    n = 4
    z = rng.normal(size=(n, 64, ACQ.n_points)) + 1j * rng.normal(size=(n, 64, ACQ.n_points))
    np.testing.assert_allclose(noise_covariance(z), 2 * np.eye(n), atol=0.1)
