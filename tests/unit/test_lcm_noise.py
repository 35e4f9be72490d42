"""Noise SD of a spectrum from signal-free ranges (gabaapp.lcm.noise)."""

from __future__ import annotations

import numpy as np
import pytest

from gabaapp.lcm.noise import noise_sd
from gabaapp.spectra import Acquisition

ACQ = Acquisition(f0_mhz=127.75, dwell_s=0.5e-3, n_points=2048)  # -3.2 to 12.5 ppm
RANGES = ((-3.0, 0.3), (8.7, 12.0))


def _white_fid(rng: np.random.Generator, sigma_spec: float) -> np.ndarray:
    """Return an FID of white noise whose spectrum has SD `sigma_spec` per real part."""
    sigma_t = sigma_spec / np.sqrt(ACQ.n_points)  # unnormalised FFT: variance grows by N
    return sigma_t * (rng.normal(size=ACQ.n_points) + 1j * rng.normal(size=ACQ.n_points))


def _fid_of_spectrum(spec: np.ndarray) -> np.ndarray:
    """Return the FID whose gabaapp spectrum (fftshift(fft)) is `spec`."""
    return np.fft.ifft(np.fft.ifftshift(spec))


def test_white_noise_sd_is_unbiased():
    rng = np.random.default_rng(7)
    est = [noise_sd(_white_fid(rng, 2.0), ACQ, RANGES) for _ in range(40)]
    # ~1300 degrees of freedom each: SE of the mean of 40 estimates ~0.3 %
    assert np.mean(est) == pytest.approx(2.0, rel=0.015)
    assert np.std(est) / 2.0 < 0.05


def test_broad_structure_and_a_peak_in_the_noise_ranges_do_not_count_as_noise():
    """A non-quadratic baseline (water tail, filter edge) and a peak inside the ranges.

    One quadratic per range leaves the baseline's curvature in the "noise" (the Siemens RDA
    case of tests/unit/test_lcm_realdata.py); the segment estimate must stay within 5 %.
    """
    rng = np.random.default_rng(3)
    ppm = ACQ.ppm_axis()
    sigma = 1.0
    baseline = 40.0 * np.sin(2 * np.pi * ppm / 1.5) + 25.0 / (1 + ((ppm - 4.7) / 1.0) ** 2)
    peak = 60.0 / (1 + ((ppm - 10.0) / 0.02) ** 2)  # narrow line inside (8.7, 12)
    fid = _white_fid(rng, sigma) + _fid_of_spectrum(baseline + peak)
    assert noise_sd(fid, ACQ, RANGES) == pytest.approx(sigma, rel=0.05)
    # the failure mode this guards against: one quadratic over (8.7, 12) ppm
    sel = (ppm >= 8.7) & (ppm <= 12.0)
    spec = np.fft.fftshift(np.fft.fft(fid)).real[sel]
    x = ppm[sel] - ppm[sel].mean()
    single = np.std(spec - np.polyval(np.polyfit(x, spec, 2), x))
    assert single > 3 * sigma


def test_no_estimate_without_enough_points_in_the_window():
    rng = np.random.default_rng(0)
    fid = _white_fid(rng, 1.0)
    assert noise_sd(fid, ACQ, ((20.0, 30.0),)) is None  # outside the spectral window
    assert noise_sd(fid, ACQ, ((9.0, 9.1),)) is None  # 13 points: fewer than 32
