"""The chain on real data (shared/data): 7T STEAM multi-coil transients, 3T PRESS (Philips,
Siemens), and MEGA-PRESS transients synthesised from the independent FID-A basis."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from gabaapp.config import PreprocConfig
from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.preproc.chain import preprocess_megapress, preprocess_unedited
from gabaapp.preproc.coils import combine_coils, noise_covariance
from gabaapp.preproc.phase import zero_filled_spectrum
from gabaapp.preproc.qc import diff_residual, fwhm_hz, peak_ppm, snr
from gabaapp.spectra import Acquisition, FIDs

PLAIN = PreprocConfig(align_method="none", reject_outliers=False)


@pytest.fixture(scope="module")
def steam(shared_data):
    folder = shared_data / "nifti_mrs_tools_steam7t"
    return load_nifti_mrs(folder / "metab_raw.nii.gz"), load_nifti_mrs(folder / "wref_raw.nii.gz")


def test_7t_coil_combination_snr_vs_independent_baselines(steam):
    metab, water = steam
    acq = metab.acquisition
    result = preprocess_unedited(metab, water, PLAIN)
    ours = snr(result.off, acq)
    # Baseline 1: S/N^2 weighting with the water reference's first point (Hall et al. 2014).
    data = metab.data  # [coil, dyn, time]
    sigma2 = np.real(np.diag(noise_covariance(data)))
    w = water.data.mean(axis=1)[:, 0] / sigma2
    w *= np.exp(-1j * np.angle(np.vdot(w, water.data.mean(axis=1)[:, 0])))
    baseline = snr(combine_coils(data, w).mean(axis=0), acq)
    best_single = max(snr(data[c].mean(axis=0), acq) for c in range(data.shape[0]))
    assert ours >= 0.95 * baseline
    assert ours >= 0.95 * best_single


def test_7t_alignment_reduces_frequency_spread_and_references_naa(steam):
    metab, water = steam
    acq = metab.acquisition
    r = preprocess_unedited(metab, water)
    plain = preprocess_unedited(metab, water, PLAIN)
    # The spread of per-transient frequencies, re-measured after correction, shrinks.
    assert np.std(r.shift_hz_after) < 0.2 * np.std(r.shift_hz)
    assert np.std(r.shift_hz_after) < np.std(plain.shift_hz_after)
    assert peak_ppm(r.off, acq, (1.9, 2.1)) == pytest.approx(2.01, abs=0.02)
    assert peak_ppm(r.off, acq, (2.9, 3.1)) == pytest.approx(3.02, abs=0.03)
    # SNR at least, and NAA FWHM at most, those of the plain average.
    assert r.qc["snr"] >= plain.qc["snr"]
    assert r.qc["naa_fwhm_hz"] <= plain.qc["naa_fwhm_hz"]


def _spec2nii(args, out: Path) -> Path:
    exe = Path(sys.executable).with_name("spec2nii")
    if not exe.exists() and shutil.which("spec2nii") is None:
        pytest.skip("spec2nii not installed")
    cmd = [
        str(exe) if exe.exists() else "spec2nii",
        *args[:1],
        "-o",
        str(out.parent),
        "-f",
        out.name,
        *args[1:],
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.with_suffix(".nii.gz")


@pytest.mark.parametrize("vendor", ["philips", "siemens"])
def test_3t_press_snr_and_fwhm(shared_data, tmp_path, vendor):
    if vendor == "philips":
        base = shared_data / "osprey_philips/UnEdited/sub-01/ses-01/mrs"
        act = base / "sub-01_ses-01_press/sub-01_PRESS_35_act"
        ref = base / "sub-01_ses-01_press-ref/sub-01_PRESS_35_ref"
        metab = load_nifti_mrs(
            _spec2nii(["philips", f"{act}.sdat", f"{act}.spar"], tmp_path / "act")
        )
        water = load_nifti_mrs(
            _spec2nii(["philips", f"{ref}.sdat", f"{ref}.spar"], tmp_path / "ref")
        )
    else:
        rda = shared_data / "suspect_siemens_press/SVS_30.rda"
        metab, water = load_nifti_mrs(_spec2nii(["rda", str(rda)], tmp_path / "act")), None
    r = preprocess_unedited(metab, water)
    acq = metab.acquisition
    assert peak_ppm(r.off, acq, (1.9, 2.1)) == pytest.approx(2.01, abs=0.02)
    # In vivo 3T PRESS: SNR in the tens to hundreds, NAA FWHM 4-12 Hz (0.03-0.1 ppm).
    assert 30 < r.qc["snr"] < 1000
    assert 4 < r.qc["naa_fwhm_hz"] < 12


FIDA = ("Cr", "GABA", "Gln", "Glu", "NAA")
CONC_MM = {"Cr": 8.0, "GABA": 1.5, "Gln": 3.0, "Glu": 10.0, "NAA": 12.0}  # in vivo-like


def _fida(shared_data, names):
    folder = shared_data / "mrsnet_fida_megapress_basis"
    acq = Acquisition(f0_mhz=123.23, dwell_s=0.4e-3, n_points=4096, centre_ppm=3.0, te_s=0.068)
    off = on = 0
    for name in names:
        for edit in ("OFF", "ON"):
            mat = scipy.io.loadmat(
                folder / f"FIDA_{name}_MEGA-PRESS_3T_EDIT_{edit}_LW_1.000000.mat", squeeze_me=True
            )
            fid = CONC_MM[name] * mat["fid"]
            if edit == "OFF":
                off = off + fid
            else:
                on = on + fid
    return acq, off, on


def _mega_transients(rng, acq, off, on, n_dyn=32, snr_per_transient=40.0):
    """[coil=2, dyn, edit, time]: 4 Hz extra Lorentzian, drift, phase jitter, ON/OFF offset."""
    t = acq.time_axis()
    lw = np.exp(-np.pi * 4.0 * t)
    drift = np.cumsum(rng.normal(0, 0.4, (n_dyn, 2)).reshape(-1)).reshape(n_dyn, 2)
    drift[:, 1] += 0.8  # ON shifted against OFF
    phase = np.radians(rng.normal(0, 8, (n_dyn, 2)))
    phase[:, 1] += np.radians(6)
    base = np.stack([off, on]) * lw
    x = base[None] * np.exp(1j * (2 * np.pi * drift[..., None] * t + phase[..., None]))
    sens = np.array([1.0, 0.4 + 0.3j])
    height = np.abs(np.fft.fft(off * lw)).max()
    sd = height / snr_per_transient / np.sqrt(acq.n_points / 2)
    noise = sd * (rng.normal(size=(2, *x.shape)) + 1j * rng.normal(size=(2, *x.shape))) / np.sqrt(2)
    data = sens[:, None, None, None] * x[None] + noise
    return FIDs(data, (DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME), acq)


def test_fida_mega_diff_shows_gaba_and_glx(shared_data):
    acq, off, on = _fida(shared_data, FIDA)
    r = preprocess_megapress(_mega_transients(np.random.default_rng(0), acq, off, on))
    # Edited GABA (the outer lines of its C4 triplet, ~2.94/3.06 ppm) is centred on 3.0 ppm
    # and Glx (Glu/Gln H2 multiplets) at 3.75 ppm, both positive in DIFF phased like edit-OFF.
    ppm, spec = zero_filled_spectrum(r.diff, acq)
    gaba = np.clip(spec.real, 0, None) * (np.abs(ppm - 3.0) < 0.15)
    assert np.sum(ppm * gaba) / np.sum(gaba) == pytest.approx(3.0, abs=0.03)
    glx = np.clip(spec.real, 0, None) * (np.abs(ppm - 3.75) < 0.12)
    assert np.sum(ppm * glx) / np.sum(glx) == pytest.approx(3.75, abs=0.03)
    assert np.sum(gaba) > 0.1 * np.sum(np.abs(spec.real) * (np.abs(ppm - 3.0) < 0.15))
    assert peak_ppm(r.off, acq, (1.9, 2.1)) == pytest.approx(2.01, abs=0.01)


def test_fida_cr_residual_in_diff_below_2_percent(shared_data):
    # Only Cr and NAA (nothing edited near Cr), same drift and ON/OFF offset, more SNR so
    # that the residual measures the alignment rather than the noise.
    acq, off, on = _fida(shared_data, ("Cr", "NAA"))
    fids = _mega_transients(np.random.default_rng(1), acq, off, on, snr_per_transient=200.0)
    plain = preprocess_megapress(
        fids, options=PreprocConfig(align_method="none", align_on_to_off=False)
    )
    r = preprocess_megapress(fids)
    assert diff_residual(r.off, r.diff, acq, 3.03) < 0.02
    assert diff_residual(r.off, r.diff, acq, 3.92) < 0.02
    assert diff_residual(plain.off, plain.diff, acq, 3.03) > 0.1  # the injected misalignment
    assert fwhm_hz(r.off, acq, (2.9, 3.1)) < fwhm_hz(plain.off, acq, (2.9, 3.1))
