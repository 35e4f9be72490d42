"""Individual (per-column) shifts with a Gaussian prior, and the LCModel short-TE MM set.

Synthetic single spectra from the analytic multiplet basis of test_lcm_fit: every metabolite
can be offset by its own known shift, so the expectations are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lcm_fit import (
    DATA_ACQ,
    LINES_OFF,
    multiplet_fid,
    synth_megapress,
    synthetic_basis,
    voigt,
)

from gabaapp.config import LcmConfig
from gabaapp.errors import UsageError
from gabaapp.lcm.fit import INDIVIDUAL_SHIFT_LIMIT, fit_megapress, fit_spectrum
from gabaapp.lcm.mm import SHORT_TE_COMPONENTS, gaussian_fid
from gabaapp.spectra import fid_to_spectrum

NAMES = ("Cr", "Glu", "NAA")
TRUTH = np.array([8.0, 9.0, 10.0])
SD_HZ = LcmConfig().individual_shift_sd_ppm * DATA_ACQ.f0_mhz  # 0.49 Hz


def _single(
    rng, noise: float, offsets_hz=(0.0, 0.0, 0.0), common_hz: float = -3.0, widths_hz=(0, 0, 0)
):
    """Return (fid, basis FIDs): NAMES with TRUTH amplitudes, each shifted by its offset and
    broadened by its extra Lorentzian width."""
    t = DATA_ACQ.time_axis()
    basis = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])
    rates = 2j * np.pi * np.asarray(offsets_hz) - np.pi * np.asarray(widths_hz, float)
    shifted = basis * np.exp(rates[:, None] * t)
    fid = (TRUTH @ shifted) * voigt(DATA_ACQ, 5.0, 2.0, common_hz, 0.3)
    fid = fid + noise * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    return fid, basis


def test_known_per_metabolite_offsets_are_recovered():
    """Offsets within the limit: common + individual shift = each metabolite's true shift.

    With the common shift free the data fix only the sums; the prior (equal SDs) then puts
    the common shift at the mean offset, and the individual ones at the remainder.
    """
    offsets = np.array([0.9, -0.6, 0.3])  # Hz, within 3 SD = 1.48 Hz of their mean
    fid, basis = _single(np.random.default_rng(21), noise=0.02, offsets_hz=offsets)
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    assert r.converged, r.flags
    total = r.shift_hz["single"] + np.array([r.individual_shift_hz[m] for m in NAMES])
    np.testing.assert_allclose(total, -3.0 + offsets, atol=0.03)
    assert r.shift_hz["single"] == pytest.approx(-3.0 + offsets.mean(), abs=0.03)
    np.testing.assert_allclose([r.amplitudes[m] for m in NAMES], TRUTH, rtol=0.02)
    assert r.residual_to_noise["single"] < 1.1
    # one common shift cannot follow: amplitudes and residual suffer
    off = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig(individual_shifts="off"))
    assert off.individual_shift_hz == {}
    assert off.residual_to_noise["single"] > 3.0 * r.residual_to_noise["single"]


def test_unshifted_data_stay_exact():
    fid, basis = _single(np.random.default_rng(22), noise=0.02)
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    assert r.converged, r.flags
    np.testing.assert_allclose([r.amplitudes[m] for m in NAMES], TRUTH, rtol=0.02)
    assert max(abs(v) for v in r.individual_shift_hz.values()) < 0.05
    assert r.shift_hz["single"] == pytest.approx(-3.0, abs=0.03)


def test_individual_width_recovers_a_broader_metabolite():
    """NAA 1.2 Hz broader than Cr and Glu: with individual widths on (prior SD 1 Hz) the fit
    gives NAA that extra width, the others none, and exact amplitudes; off by default."""
    fid, basis = _single(np.random.default_rng(29), noise=0.02, widths_hz=(0.0, 0.0, 1.2))
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig(individual_width_sd_hz=1.0))
    assert r.converged, r.flags
    assert r.individual_width_hz["NAA"] == pytest.approx(1.2, abs=0.05)
    assert r.individual_width_hz["Cr"] < 0.05 and r.individual_width_hz["Glu"] < 0.05
    assert r.lorentz_hz == pytest.approx(5.0, abs=0.05)
    np.testing.assert_allclose([r.amplitudes[m] for m in NAMES], TRUTH, rtol=0.02)
    default = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    assert default.individual_width_hz == {}
    assert default.residual_to_noise["single"] > 2.0 * r.residual_to_noise["single"]


def test_offsets_beyond_the_limit_stop_at_it():
    offsets = np.array([4.0, 0.0, 0.0])  # Cr 8 SDs away
    fid, basis = _single(np.random.default_rng(23), noise=0.02, offsets_hz=offsets)
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
    limit = INDIVIDUAL_SHIFT_LIMIT * SD_HZ
    assert max(abs(v) for v in r.individual_shift_hz.values()) <= limit * (1 + 1e-9)


def test_megapress_default_has_no_individual_shifts_and_on_works():
    rng = np.random.default_rng(24)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    basis = synthetic_basis(DATA_ACQ)
    r = fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig())
    assert r.individual_shift_hz == {}
    on = fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig(individual_shifts="on"))
    assert on.converged, on.flags
    np.testing.assert_allclose(on.amplitude_array, r.amplitude_array, rtol=0.02)
    assert max(abs(v) for v in on.individual_shift_hz.values()) < 0.1


def _single_sd_vs_crlb(n_real: int, seed: int):
    rng = np.random.default_rng(seed)
    amps, crlbs = [], []
    for _ in range(n_real):
        fid, basis = _single(rng, noise=1.0)
        r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, LcmConfig())
        amps.append([r.amplitudes[m] for m in NAMES])
        crlbs.append([r.crlb_abs[m] for m in NAMES])
    return np.std(amps, axis=0, ddof=1), np.mean(crlbs, axis=0), np.mean(amps, axis=0)


def test_crlb_with_individual_shifts_matches_empirical_sd_small_sample():
    # 40 realisations: the SD itself is uncertain by ~11 %, so allow 35 % (3 sigma)
    sd, crlb, mean = _single_sd_vs_crlb(40, seed=25)
    np.testing.assert_allclose(sd / crlb, 1.0, atol=0.35)
    np.testing.assert_allclose(mean, TRUTH, rtol=0.02)


@pytest.mark.slow
def test_crlb_with_individual_shifts_matches_empirical_sd_200_realisations():
    sd, crlb, mean = _single_sd_vs_crlb(200, seed=26)
    np.testing.assert_allclose(sd / crlb, 1.0, atol=0.20)
    np.testing.assert_allclose(mean, TRUTH, rtol=0.02)


def test_composite_mm_component_has_its_lines_and_areas():
    """LCModel's MM20: 2.08 ppm plus 2.25, 1.95 and 3.0 ppm lines with areas 1.33:0.33:0.33:0.4."""
    mm20 = next(c for c in SHORT_TE_COMPONENTS if c.name == "MM20")
    spec = fid_to_spectrum(mm20.fid(DATA_ACQ)).real
    main = fid_to_spectrum(gaussian_fid(DATA_ACQ, 2.08, 0.15)).real
    # area = FID's first point times N (DFT): main line 1, satellites their relative areas
    assert spec.sum() == pytest.approx(main.sum() * (1.33 + 0.33 + 0.33 + 0.4) / 1.33, rel=1e-9)
    ppm = DATA_ACQ.ppm_axis()
    near = (ppm > 2.9) & (ppm < 3.1)
    assert ppm[near][np.argmax(spec[near])] == pytest.approx(3.0, abs=0.01)
    assert ppm[np.argmax(spec)] == pytest.approx(2.08, abs=0.02)


def test_mm_set_lcmodel_is_used_for_single_spectra_only():
    fid, basis = _single(np.random.default_rng(27), noise=0.02)
    cfg = LcmConfig(include_mm=True, mm_set="lcmodel")
    r = fit_spectrum(fid, DATA_ACQ, basis, NAMES, cfg)
    assert {"Lip13a", "MM20", "MM09"} <= set(r.names)
    np.testing.assert_allclose([r.amplitudes[m] for m in NAMES], TRUTH, rtol=0.02)
    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(28), noise=0.05)
    mega = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), cfg)
    assert "Lip13a" not in mega.names and "MM30" in mega.names


def test_config_validation_of_the_new_options():
    for bad in (
        {"individual_shifts": "yes"},
        {"individual_shift_sd_ppm": 0.0},
        {"mm_set": "measured"},
        {"individual_width_sd_hz": -1.0},
    ):
        with pytest.raises(UsageError):
            LcmConfig(**bad)
