"""Linear-combination fit (gabaapp.lcm) on spectra built from a synthetic multiplet basis.

The basis is analytic (sums of complex exponentials at known ppm), so data can be evaluated at
any sampling independently of the fit's own resampling, with known amplitudes, Voigt widths,
shifts and phases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gabaapp.config import LcmConfig
from gabaapp.constants import METABOLITES, NAA_PPM
from gabaapp.errors import DataError, UsageError
from gabaapp.lcm.fit import fit_megapress, fit_spectrum
from gabaapp.lcm.mm import gaussian_fid
from gabaapp.lcm.noise import noise_sd
from gabaapp.spectra import Acquisition, Basis, fid_to_spectrum

F0_MHZ = 123.23
J_HZ = 7.3
# (ppm, relative amplitude) per line; OFF and ON differ where a 1.9 ppm editing pulse acts.
LINES_OFF = {
    "Cr": [(3.027, 3.0), (3.913, 2.0)],
    "GABA": [(3.013 + k * J_HZ / F0_MHZ, w) for k, w in ((-1, 0.5), (0, 1.0), (1, 0.5))]
    + [(2.284 + k * J_HZ / F0_MHZ, w) for k, w in ((-1, 0.5), (0, 1.0), (1, 0.5))]
    + [(1.889, 2.0)],
    "Gln": [(3.757, 1.0), (2.45, 1.0), (2.43, 1.0), (2.13, 1.0), (2.11, 1.0)],
    "Glu": [(3.746, 1.0), (2.36, 1.0), (2.34, 1.0), (2.06, 1.0), (2.04, 1.0)],
    "NAA": [(NAA_PPM, 3.0), (2.49, 0.5), (2.52, 0.5), (2.67, 0.5), (2.70, 0.5)],
}
EDITS_ON = {  # line index -> amplitude in the edit-ON spectrum
    "GABA": {0: 1.0, 1: 0.2, 2: 1.0, 6: 0.0},
    "Gln": {0: 1.6, 3: 0.4, 4: 0.4},
    "Glu": {0: 1.6, 3: 0.4, 4: 0.4},
    "NAA": {0: 2.4},
}
TRUE = {"Cr": 8.0, "GABA": 1.5, "Gln": 3.0, "Glu": 9.0, "NAA": 10.0}
DATA_ACQ = Acquisition(f0_mhz=F0_MHZ, dwell_s=0.5e-3, n_points=2048)  # 2000 Hz, centre 4.65


def multiplet_fid(acq: Acquisition, lines, lw_hz: float = 0.0) -> np.ndarray:
    """Return the FID of `lines` [(ppm, amplitude)] on `acq`'s sampling."""
    t = acq.time_axis()
    out = np.zeros(acq.n_points, complex)
    for ppm, amp in lines:
        out += amp * np.exp(2j * np.pi * (ppm - acq.centre_ppm) * acq.f0_mhz * t)
    return out * np.exp(-np.pi * lw_hz * t)


def lines_on(name: str):
    edits = EDITS_ON.get(name, {})
    return [(p, edits.get(i, a)) for i, (p, a) in enumerate(LINES_OFF[name])]


def synthetic_basis(acq: Acquisition, lw_hz: float = 0.0) -> Basis:
    """Return the synthetic MEGA-PRESS basis on `acq`'s sampling."""
    off = np.array([multiplet_fid(acq, LINES_OFF[m], lw_hz) for m in METABOLITES])
    on = np.array([multiplet_fid(acq, lines_on(m), lw_hz) for m in METABOLITES])
    return Basis(METABOLITES, off, on, acq, "synthetic")


def voigt(acq, lorentz_hz, gauss_hz, shift_hz, phase0_rad):
    """Return the time-domain factor of a Voigt line with a shift and a zero-order phase."""
    t = acq.time_axis()
    return np.exp(
        (2j * np.pi * shift_hz - np.pi * lorentz_hz) * t
        - (np.pi * gauss_hz * t) ** 2 / (4 * math.log(2))
        + 1j * phase0_rad
    )


def synth_megapress(acq, rng, noise, shift_hz=3.0, phase_rad=0.4):
    """Return (off, diff) FIDs with TRUE amplitudes, Voigt 4/3 Hz and independent ON/OFF noise.

    ON and OFF share shift and phase, as after the usual frequency/phase alignment.
    """
    basis = synthetic_basis(acq)
    a = np.array([TRUE[m] for m in METABOLITES])
    off = (a @ basis.off) * voigt(acq, 4.0, 3.0, shift_hz, phase_rad)
    on = (a @ basis.on) * voigt(acq, 4.0, 3.0, shift_hz, phase_rad)
    off = off + noise * (rng.normal(size=acq.n_points) + 1j * rng.normal(size=acq.n_points))
    on = on + noise * (rng.normal(size=acq.n_points) + 1j * rng.normal(size=acq.n_points))
    return off, on - off


def test_default_metabolites_match_constants():
    assert LcmConfig().metabolites == METABOLITES


def test_joint_fit_recovers_amplitudes_widths_shift_phase_at_high_snr():
    rng = np.random.default_rng(0)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig())
    assert r.converged, r.flags
    for m in METABOLITES:
        assert r.amplitudes[m] == pytest.approx(TRUE[m], rel=0.02), m
    np.testing.assert_allclose(r.amplitude_array, [TRUE[m] for m in METABOLITES], rtol=0.02)
    assert r.lorentz_hz == pytest.approx(4.0, abs=0.1)
    assert r.gauss_hz == pytest.approx(3.0, abs=0.3)
    for k in ("off", "diff"):
        assert r.shift_hz[k] == pytest.approx(3.0, abs=0.05)
        assert r.phase0_deg[k] == pytest.approx(np.rad2deg(0.4), abs=1.0)
        assert r.phase1_deg_per_ppm[k] == pytest.approx(0.0, abs=1.0)
    # residual is noise: its SD matches the measured noise SD
    for k in ("off", "diff"):
        assert r.residual_to_noise[k] == pytest.approx(1.0, abs=0.15), k
    assert r.ratio("NAA") == pytest.approx(TRUE["NAA"] / TRUE["Cr"], rel=0.02)


def test_separate_fits_take_gaba_from_diff():
    rng = np.random.default_rng(1)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig(mode="separate"))
    assert r.converged, r.flags
    assert r.source["GABA"] == "diff" and r.source["Cr"] == "off"
    for m in METABOLITES:
        assert r.amplitudes[m] == pytest.approx(TRUE[m], rel=0.02), m


def test_basis_resampled_from_other_sampling_and_centre():
    """Basis at 2500 Hz / 4096 points / centre 3.0 ppm, data at 2000 Hz / 2048 / 4.65 ppm."""
    basis_acq = Acquisition(f0_mhz=F0_MHZ, dwell_s=0.4e-3, n_points=4096, centre_ppm=3.0)
    rng = np.random.default_rng(2)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    # lw 1 Hz keeps the finer basis FID decaying within its 1.6 s, as simulated bases do
    basis = synthetic_basis(basis_acq, lw_hz=1.0)
    r = fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig())
    assert r.converged, r.flags
    for m in METABOLITES:
        assert r.amplitudes[m] == pytest.approx(TRUE[m], rel=0.02), m
    # the basis's own 1 Hz Lorentzian is part of the truth's 4 Hz
    assert r.lorentz_hz == pytest.approx(3.0, abs=0.15)


def test_crlb_scales_with_noise_and_is_larger_for_small_overlapped_gaba():
    rng = np.random.default_rng(3)
    basis = synthetic_basis(DATA_ACQ)
    res = []
    for noise in (0.5, 1.0):
        off, diff = synth_megapress(DATA_ACQ, rng, noise=noise)
        res.append(fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig()))
    for m in METABOLITES:
        assert res[1].crlb_abs[m] / res[0].crlb_abs[m] == pytest.approx(2.0, rel=0.15), m
    assert res[0].crlb_percent["GABA"] > res[0].crlb_percent["NAA"]
    # covariance diagonal = squared CRLB
    np.testing.assert_allclose(
        np.sqrt(np.diag(res[0].amplitude_covariance)),
        [res[0].crlb_abs[n] for n in res[0].names],
        rtol=1e-9,
    )


def _empirical_vs_crlb(n_real: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = synthetic_basis(DATA_ACQ)
    amps, crlbs = [], []
    for _ in range(n_real):
        off, diff = synth_megapress(DATA_ACQ, rng, noise=1.0)
        r = fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig())
        amps.append(r.amplitude_array)
        crlbs.append([r.crlb_abs[m] for m in METABOLITES])
    return np.std(amps, axis=0, ddof=1), np.mean(crlbs, axis=0)


def test_crlb_matches_empirical_sd_small_sample():
    # 40 realisations: the SD estimate itself has ~11 % relative error, so allow 35 % (3 sigma)
    sd, crlb = _empirical_vs_crlb(40, seed=11)
    np.testing.assert_allclose(sd / crlb, 1.0, atol=0.35)


@pytest.mark.slow
def test_crlb_matches_empirical_sd_200_realisations():
    sd, crlb = _empirical_vs_crlb(200, seed=12)
    np.testing.assert_allclose(sd / crlb, 1.0, atol=0.20)


def test_mm_component_separates_coedited_macromolecules_from_gaba():
    rng = np.random.default_rng(4)
    off, diff = synth_megapress(DATA_ACQ, rng, noise=0.05)
    # co-edited MM at 3.0 ppm (Gaussian, FWHM 0.15 ppm) in the DIFF, with the data's lineshape
    mm = 6.0 * gaussian_fid(DATA_ACQ, 3.0, 0.15) * voigt(DATA_ACQ, 4.0, 3.0, 3.0, 0.4)
    basis = synthetic_basis(DATA_ACQ)
    with_mm = fit_megapress(off, diff + mm, DATA_ACQ, basis, LcmConfig(include_mm=True))
    no_mm = fit_megapress(off, diff + mm, DATA_ACQ, basis, LcmConfig(include_mm=False))
    assert with_mm.amplitudes["GABA"] == pytest.approx(TRUE["GABA"], rel=0.05)
    assert with_mm.amplitudes["MM30"] == pytest.approx(6.0, rel=0.1)
    assert "MM30" not in no_mm.amplitudes
    # without an MM term the fit cannot tell the co-edited MM from GABA: "GABA+" is larger
    # (the flexible baseline takes part of the broad MM: GABA+ is 5-10 % high, CRLB ~0.5 %)
    assert no_mm.amplitudes["GABA"] > 1.03 * TRUE["GABA"]


def test_single_spectrum_with_smooth_baseline():
    rng = np.random.default_rng(5)
    names = ("Cr", "Glu", "NAA")
    basis_fids = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in names])
    truth = np.array([8.0, 9.0, 10.0])
    fid = (truth @ basis_fids) * voigt(DATA_ACQ, 5.0, 2.0, -4.0, -1.0)
    # broad hump (FWHM 0.8 ppm) as macromolecule/lipid baselines look
    hump = 40.0 * gaussian_fid(DATA_ACQ, 2.6, 0.8)
    fid = fid + hump
    fid = fid + 0.05 * (rng.normal(size=2048) + 1j * rng.normal(size=2048))
    r = fit_spectrum(fid, DATA_ACQ, basis_fids, names, LcmConfig())
    assert r.converged, r.flags
    np.testing.assert_allclose([r.amplitudes[n] for n in names], truth, rtol=0.03)
    assert r.shift_hz["single"] == pytest.approx(-4.0, abs=0.1)
    # the baseline took the hump: same height, largest near 2.6 ppm
    hump_spec = fid_to_spectrum(hump)[(DATA_ACQ.ppm_axis() >= 1.0) & (DATA_ACQ.ppm_axis() <= 4.2)]
    bl = np.abs(r.baseline["single"])
    assert bl.max() == pytest.approx(np.abs(hump_spec).max(), rel=0.1)
    assert abs(r.ppm[np.argmax(bl)] - 2.6) < 0.2
    np.testing.assert_allclose(r.model["single"] + r.residual["single"], r.data["single"])


def test_noise_sd_of_white_noise():
    rng = np.random.default_rng(6)
    sd_t = 0.3
    fid = sd_t * (rng.normal(size=2048) + 1j * rng.normal(size=2048))
    # white noise of SD s per real part in time has SD s * sqrt(N) per real part in frequency
    got = noise_sd(fid, DATA_ACQ, ((-2.0, 0.2), (8.8, 11.0)))
    assert got == pytest.approx(sd_t * math.sqrt(2048), rel=0.08)


# ----- bad input -------------------------------------------------------------------------------


def test_window_outside_spectral_width_is_a_data_error():
    narrow = Acquisition(f0_mhz=F0_MHZ, dwell_s=2.5e-3, n_points=512)  # 400 Hz: 3.0-6.3 ppm
    basis = synthetic_basis(narrow)
    fid = multiplet_fid(narrow, LINES_OFF["Cr"], lw_hz=3.0)
    with pytest.raises(DataError, match="does not cover the fit range"):
        fit_megapress(fid, fid, narrow, basis, LcmConfig())


def test_basis_lacking_a_metabolite_is_a_data_error():
    basis = synthetic_basis(DATA_ACQ).subset(("Cr", "NAA"))
    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(7), noise=0.05)
    with pytest.raises(DataError, match=r"lacks metabolite\(s\) \['GABA', 'Gln', 'Glu'\]"):
        fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig())


def test_non_finite_or_wrong_length_input_is_a_data_error():
    basis = synthetic_basis(DATA_ACQ)
    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(8), noise=0.05)
    bad = off.copy()
    bad[10] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_megapress(bad, diff, DATA_ACQ, basis, LcmConfig())
    with pytest.raises(DataError, match="expected one averaged FID"):
        fit_megapress(np.stack([off, off]), diff, DATA_ACQ, basis, LcmConfig())


def test_other_field_strength_is_a_data_error():
    basis = synthetic_basis(Acquisition(f0_mhz=127.75, dwell_s=0.5e-3, n_points=2048))
    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(9), noise=0.05)
    with pytest.raises(DataError, match="127.750 MHz"):
        fit_megapress(off, diff, DATA_ACQ, basis, LcmConfig())


def test_non_convergence_is_flagged_not_silent():
    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(10), noise=0.05)
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig(max_nfev=1))
    assert not r.converged
    assert any(f.startswith("not converged") for f in r.flags)


def test_config_validation():
    with pytest.raises(UsageError):
        LcmConfig(ppm_range=(4.2, 1.0))
    with pytest.raises(UsageError):
        LcmConfig(mode="both")
    with pytest.raises(UsageError):
        LcmConfig(metabolites=("Cr", "Cr"))


def test_summary_is_flat_and_json_ready():
    import json

    off, diff = synth_megapress(DATA_ACQ, np.random.default_rng(13), noise=0.05)
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig())
    s = json.loads(json.dumps(r.summary()))
    assert s["GABA"] == pytest.approx(r.amplitudes["GABA"])
    assert s["NAA_to_cr"] == pytest.approx(TRUE["NAA"] / TRUE["Cr"], rel=0.02)
    assert s["GABA_crlb_percent"] == pytest.approx(r.crlb_percent["GABA"])
    assert s["converged"] is True and "shift_hz_diff" in s


def test_large_shift_and_phase_are_found_from_the_starting_grid():
    off, diff = synth_megapress(
        DATA_ACQ, np.random.default_rng(14), noise=0.05, shift_hz=-15.0, phase_rad=2.6
    )
    r = fit_megapress(off, diff, DATA_ACQ, synthetic_basis(DATA_ACQ), LcmConfig())
    assert r.converged, r.flags
    assert r.shift_hz["off"] == pytest.approx(-15.0, abs=0.05)
    assert r.phase0_deg["off"] == pytest.approx(np.rad2deg(2.6), abs=1.0)
    np.testing.assert_allclose(r.amplitude_array, [TRUE[m] for m in METABOLITES], rtol=0.02)
