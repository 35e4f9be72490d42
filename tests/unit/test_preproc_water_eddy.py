"""HLSVD residual water removal and Klose eddy-current correction on signals of known form."""

import numpy as np
import pytest
from test_preproc_synth import ACQ, clean_off_on, lines_fid

from gabaapp.preproc.eddy import correct_eddy_currents, eddy_current_phase
from gabaapp.preproc.qc import peak_height
from gabaapp.preproc.water import hlsvd, remove_residual_water


def test_hlsvd_recovers_known_components():
    lines = ((2.01, 1.0, 6.0), (3.03, 0.5, 8.0), (4.68, 10.0, 15.0))
    fid = lines_fid(ACQ, lines)
    freq, damping, amp = hlsvd(fid, ACQ.dwell_s, rank=6)
    for ppm, a, lw in lines:
        hz = (ppm - ACQ.centre_ppm) * ACQ.f0_mhz
        k = np.argmin(np.abs(freq - hz))
        assert freq[k] == pytest.approx(hz, abs=1e-3)
        assert damping[k] == pytest.approx(np.pi * lw, rel=1e-3)
        assert abs(amp[k]) == pytest.approx(a, rel=1e-3)


def test_residual_water_is_removed_and_metabolites_kept():
    rng = np.random.default_rng(0)
    off, _ = clean_off_on()
    t = ACQ.time_axis()
    water = 50 * np.exp(2j * np.pi * (4.70 - ACQ.centre_ppm) * ACQ.f0_mhz * t - np.pi * 12 * t)
    water += 20 * np.exp(2j * np.pi * (4.62 - ACQ.centre_ppm) * ACQ.f0_mhz * t - np.pi * 25 * t)
    noise = 0.002 * (rng.normal(size=ACQ.n_points) + 1j * rng.normal(size=ACQ.n_points))
    cleaned = remove_residual_water(off + water + noise, ACQ)
    assert peak_height(cleaned, ACQ, (4.5, 4.8)) < 0.01 * peak_height(off + water, ACQ, (4.5, 4.8))
    for window in ((1.9, 2.1), (2.95, 3.1), (3.85, 4.0)):
        assert peak_height(cleaned, ACQ, window) == pytest.approx(
            peak_height(off, ACQ, window), rel=0.01
        )


def test_klose_removes_a_known_eddy_current_phase_and_keeps_frequencies():
    t = ACQ.time_axis()
    eddy = 0.8 * np.exp(-t / 0.03) + 0.3  # decaying eddy-current phase plus receiver phase
    water = 100 * np.exp(2j * np.pi * 2.0 * t - np.pi * 6 * t + 1j * eddy)  # water 2 Hz off
    off, _ = clean_off_on()
    corrupted = off * np.exp(1j * eddy)
    corrected = correct_eddy_currents(corrupted[None], water, ACQ)[0]
    np.testing.assert_allclose(corrected, off, atol=1e-4 * np.abs(off).max())
    # The removed phase excludes the water's own frequency (2 Hz): metabolites do not move.
    np.testing.assert_allclose(eddy_current_phase(water, ACQ)[:400], eddy[:400], atol=1e-4)
