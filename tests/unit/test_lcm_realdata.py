"""Linear-combination fit against independent spectra from ../shared/data.

* The FID-A MEGA-PRESS basis (MRSNet, AGPL: read from shared only) is a second, independent
  simulator: spectra built from it are fitted with gabaapp's own physics basis.
* Real 3 T PRESS spectra (Siemens RDA TE 30, Philips SDAT TE 35), converted with spec2nii and
  fitted with a PRESS basis simulated by gabaapp.physics for their own TE and sampling.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from gabaapp.config import LcmConfig
from gabaapp.constants import METABOLITES, NAA_PPM
from gabaapp.lcm.fit import INDIVIDUAL_SHIFT_LIMIT, fit_megapress, fit_spectrum
from gabaapp.lcm.resample import resample_basis
from gabaapp.spectra import Acquisition, Basis, fid_to_spectrum

physics = pytest.importorskip("gabaapp.physics.megapress", reason="physics simulator absent")
from gabaapp.physics.sequence import MegaPressSequence  # noqa: E402
from gabaapp.physics.spins import available_metabolites, load_spin_system  # noqa: E402

FIDA_DIR = "mrsnet_fida_megapress_basis"
# SOURCE.md: B0 = 2.89425 T, 4096 points, dwell 0.4 ms, centre 3.0 ppm, Lorentzian 1 Hz.
FIDA_ACQ = Acquisition(
    f0_mhz=2.89425309168 * 42.577478518, dwell_s=0.4e-3, n_points=4096, centre_ppm=3.0
)


def simulate(names, sequence: MegaPressSequence) -> Basis:
    """Return a gabaapp.physics basis of `names` for `sequence`."""
    pairs = [physics.simulate_spin_system(load_spin_system(n), sequence) for n in names]
    off, on = zip(*pairs, strict=True)
    return Basis(tuple(names), np.array(off), np.array(on), sequence.acquisition(), sequence.hash())


@pytest.fixture(scope="module")
def fida(shared_data) -> Basis:
    """Return the FID-A basis as a gabaapp Basis (its FIDs follow gabaapp's convention)."""
    off, on = [], []
    for m in METABOLITES:
        for cond, out in (("OFF", off), ("ON", on)):
            f = shared_data / FIDA_DIR / f"FIDA_{m}_MEGA-PRESS_3T_EDIT_{cond}_LW_1.000000.mat"
            out.append(sio.loadmat(f, squeeze_me=True)["fid"])
    return Basis(METABOLITES, np.array(off), np.array(on), FIDA_ACQ, "fida-mrsnet")


def test_fida_naa_at_2_01_ppm(fida):
    spec = np.abs(fid_to_spectrum(fida.off[METABOLITES.index("NAA")]))
    assert FIDA_ACQ.ppm_axis()[np.argmax(spec)] == pytest.approx(NAA_PPM, abs=0.01)


def _ratio_sd(r, name: str, ref: str = "Cr") -> float:
    """Return the CRLB of amplitude(name) / amplitude(ref), by first-order propagation."""
    i, j = r.names.index(name), r.names.index(ref)
    c = r.amplitude_covariance
    a, b = r.amplitudes[name], r.amplitudes[ref]
    return abs(a / b) * np.sqrt(c[i, i] / a**2 + c[j, j] / b**2 - 2 * c[i, j] / (a * b))


def test_fida_spectra_give_gaba_within_crlb_with_physics_basis(fida):
    """FID-A spectra (other simulator) fitted with gabaapp's basis: GABA/Cr within its CRLB.

    Ratios to Cr remove the overall scale of each simulator (FID-A sums an 8-step phase
    cycle); the paper's sequence with instantaneous refocusing matches how this FID-A basis
    was simulated (SOURCE.md).
    """
    ours = simulate(METABOLITES, MegaPressSequence.preset("paper", ideal_refocusing=True))
    ours = resample_basis(ours, FIDA_ACQ)  # once, instead of inside every fit
    rng = np.random.default_rng(2024)
    t = FIDA_ACQ.time_axis()
    errors, crlbs = [], []
    for _ in range(6):
        conc = rng.uniform([5, 1.0, 2, 6, 8], [10, 3.0, 6, 12, 14])
        lw_hz, shift_hz, phase = rng.uniform(3, 6), rng.uniform(-3, 3), rng.uniform(-0.3, 0.3)
        decay = np.exp((2j * np.pi * shift_hz - np.pi * lw_hz) * t + 1j * phase)
        noise = [3.0 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size)) for _ in "ab"]
        off = (conc @ fida.off) * decay + noise[0]
        on = (conc @ fida.on) * decay + noise[1]
        r = fit_megapress(off, on - off, FIDA_ACQ, ours, LcmConfig())
        assert r.converged, r.flags
        truth = conc[METABOLITES.index("GABA")] / conc[METABOLITES.index("Cr")]
        errors.append(abs(r.ratio("GABA") - truth))
        crlbs.append(_ratio_sd(r, "GABA"))
        assert r.ratio("NAA") == pytest.approx(conc[4] / conc[0], rel=0.05)
    assert np.mean(errors) <= np.mean(crlbs), (errors, crlbs)


# ----- real PRESS data -------------------------------------------------------------------------

REAL = {
    "siemens_rda": ["rda", "suspect_siemens_press/SVS_30.rda"],
    "philips_sdat": [
        "philips",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.sdat",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.spar",
    ],
    # held out: issue 9's model choices were made on the two spectra above
    "philips_sdat_sub02": [
        "philips",
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press/sub-02_PRESS_35_act.sdat",
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press/sub-02_PRESS_35_act.spar",
    ],
}
# Published in vivo ranges (Govindaraju, Young & Maudsley, NMR Biomed 13:129, 2000, Table 1):
# NAA 7.9-16.6, NAAG 0.6-2.7, Cr 5.1-10.6, PCr 3.2-5.5, Glu 6.0-12.5, Gln 3.0-5.8 mM. Extreme
# combinations give tNAA/tCr 0.5-2.3 and Glx/tCr 0.6-2.2; typical values sit near 1.1-1.5.
TNAA_TCR = (0.9, 1.9)
# What a user gets (docs/lcm.md, log item 13): gabaapp's own unedited pre-processing (Klose
# eddy-current correction with the water reference where the scan has one: both Philips
# subjects) and the basis for the protocol's TE1/TE2 split as profiled on the data (Siemens
# 15.1 ms; Philips 14.2 ms, chosen on sub-01 and applied to the held-out sub-02).
TE1_MS = {"siemens_rda": 15.1, "philips_sdat": 14.2, "philips_sdat_sub02": 14.2}
# Residual SD / noise SD of that default fit (individual shifts, 19 spin systems, MM):
# measured 1.18 (Siemens), 1.55 (Philips sub-01, its spurious echo left in: the echo removal
# is opt-in; 1.31 without it) and 1.30 (sub-02, held out). The plain average with the former
# TE1 10 ms basis ("plain" fits below): 1.24, 1.72, 1.59.
RESIDUAL_TO_NOISE_MAX = {"siemens_rda": 1.25, "philips_sdat": 1.65, "philips_sdat_sub02": 1.40}
RESIDUAL_TO_NOISE_PLAIN_MAX = {
    "siemens_rda": 1.35,
    "philips_sdat": 1.85,
    "philips_sdat_sub02": 1.70,
}
# Individual shifts must lower the residual SD at least to these fractions of the fit
# without them (measured 0.72, 0.84 and 0.80 on the default input).
SHIFT_GAIN_MAX = {"siemens_rda": 0.80, "philips_sdat": 0.92, "philips_sdat_sub02": 0.88}
GLX_TCR = (0.6, 2.2)
# With the free line shape (LcmConfig(lineshape="free")) on the default input: measured 1.15,
# 1.46 and 1.17.
RESIDUAL_TO_NOISE_FREE_MAX = {"siemens_rda": 1.25, "philips_sdat": 1.55, "philips_sdat_sub02": 1.25}
# Unsuppressed water references of the same Philips scans (the Siemens RDA has none).
WATER_REF = {
    name: [f.replace("_press/", "_press-ref/").replace("_act.", "_ref.") for f in files]
    for name, (fmt, *files) in REAL.items()
    if fmt == "philips"
}
# PE in adult brain is of the order of 1-2 mM against ~8-10 mM tCr: PE/tCr ~0.1-0.25.
PE_TCR_MAX = 0.4


@pytest.fixture(scope="module")
def real_fits(shared_data, tmp_path_factory):
    """Fits of the real spectra. real_fits[name]: the default fit of what a user gets (the
    pre-processed FID, basis at the protocol's TE1 split), its input under (name, "user
    input"), the same input without individual shifts / with the free line shape under
    (name, "no shifts") / (name, "free"); the plain average of the scanner-averaged FID with
    the former TE1 10 ms basis under (name, "input") and its fit under (name, "plain")."""
    from gabaapp.io.nifti_mrs import load_nifti_mrs
    from gabaapp.lcm.timing import press_basis
    from gabaapp.preproc.chain import preprocess_unedited

    out = tmp_path_factory.mktemp("lcm_real")
    spec2nii = Path(sys.executable).with_name("spec2nii")

    def convert(fmt: str, files: list[str], label: str):
        cmd = [str(spec2nii), fmt, "-o", str(out), "-f", label]
        subprocess.run([*cmd, *(str(shared_data / f) for f in files)], check=True)
        return load_nifti_mrs(out / f"{label}.nii.gz")

    fits = {}
    config = LcmConfig(include_mm=True)
    for name, (fmt, *files) in REAL.items():
        fids = convert(fmt, files, name)
        acq = fids.acquisition
        fid = fids.data.reshape(-1, acq.n_points).mean(axis=0)
        seq = MegaPressSequence.for_te(
            acq.te_s * 1e3,
            editing=False,
            f0_mhz=acq.f0_mhz,
            spectral_width_hz=acq.spectral_width_hz,
            n_points=acq.n_points,
        )
        basis = simulate(available_metabolites(), seq)
        fits[name, "input"] = (fid, acq, basis, seq)
        fits[name, "plain"] = fit_spectrum(fid, acq, basis, basis.names, config)
        water = convert(fmt, WATER_REF[name], f"{name}_ref") if name in WATER_REF else None
        pre = preprocess_unedited(fids, water).off
        split = press_basis(acq, TE1_MS[name])
        fits[name, "user input"] = (pre, acq, split)
        fits[name] = fit_spectrum(pre, acq, split, split.names, config)
        no_shifts = LcmConfig(include_mm=True, individual_shifts="off")
        fits[name, "no shifts"] = fit_spectrum(pre, acq, split, split.names, no_shifts)
        free = LcmConfig(include_mm=True, lineshape="free")
        fits[name, "free"] = fit_spectrum(pre, acq, split, split.names, free)
    return fits


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_press_fit(real_fits, name):
    r = real_fits[name]
    a = r.amplitudes
    tcr = a["Cr"] + a["PCr"]
    tnaa = (a["NAA"] + a["NAAG"]) / tcr
    glx = (a["Glu"] + a["Gln"]) / tcr
    assert r.converged, r.flags
    assert TNAA_TCR[0] < tnaa < TNAA_TCR[1]
    assert GLX_TCR[0] < glx < GLX_TCR[1]
    # in vivo 3 T linewidths: a few Hz of extra broadening, not the bounds
    assert 2.0 < r.lorentz_hz + r.gauss_hz < 15.0
    assert r.crlb_percent["NAA"] < 10.0
    # residual SD / noise SD: closer to noise, not there (RESIDUAL_TO_NOISE_MAX, docs/lcm.md)
    assert r.residual_to_noise["single"] < RESIDUAL_TO_NOISE_MAX[name]
    plain = real_fits[name, "plain"]
    assert plain.converged, plain.flags
    assert plain.residual_to_noise["single"] < RESIDUAL_TO_NOISE_PLAIN_MAX[name]
    # individual shifts stay inside their limit (3 prior SDs)
    _, acq, basis, _ = real_fits[name, "input"]
    limit_hz = INDIVIDUAL_SHIFT_LIMIT * LcmConfig().individual_shift_sd_ppm * acq.f0_mhz
    assert all(abs(r.individual_shift_hz[m]) <= limit_hz * (1 + 1e-9) for m in basis.names)
    # the criterion chose a stiffness among the candidates
    assert r.baseline_stiffness <= LcmConfig().baseline_stiffness


def test_siemens_pe_is_in_its_physiological_range(real_fits):
    """PE (added for issue 9) fits to a plausible share on the Siemens spectrum (measured
    0.17 x tCr, CRLB ~50 %; Glc and Asc fit to zero there). On both Philips spectra it is
    not identifiable: it takes 0.9-1.1 x tCr (and Asc 0.2-0.4 x), see docs/lcm.md log item 8,
    so no such bound is asserted for them."""
    a = real_fits["siemens_rda"].amplitudes
    assert 0.0 < a["PE"] / (a["Cr"] + a["PCr"]) < PE_TCR_MAX


@pytest.mark.parametrize("name", sorted(REAL))
def test_individual_shifts_bring_the_residual_closer_to_noise(real_fits, name):
    """Individual shifts (LCModel-style, prior SD 0.004 ppm, MM lines their own) explain a
    large part of the misfit that one common shift leaves; ratios stay in published ranges."""
    r, off = real_fits[name], real_fits[name, "no shifts"]
    assert off.individual_shift_hz == {}
    assert off.converged, off.flags
    gain = r.residual_to_noise["single"] / off.residual_to_noise["single"]
    assert gain < SHIFT_GAIN_MAX[name]
    for fit in (r, off):
        a = fit.amplitudes
        tcr = a["Cr"] + a["PCr"]
        assert TNAA_TCR[0] < (a["NAA"] + a["NAAG"]) / tcr < TNAA_TCR[1]
        assert GLX_TCR[0] < (a["Glu"] + a["Gln"]) / tcr < GLX_TCR[1]


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_press_fit_free_lineshape(real_fits, name):
    """The free line-shape kernel does not raise the residual (and lowers it clearly on the
    Philips spectrum, whose lines are visibly non-Voigt); ratios stay in range."""
    r, voigt = real_fits[name, "free"], real_fits[name]
    a = r.amplitudes
    tcr = a["Cr"] + a["PCr"]
    assert r.converged, r.flags
    assert TNAA_TCR[0] < (a["NAA"] + a["NAAG"]) / tcr < TNAA_TCR[1]
    assert GLX_TCR[0] < (a["Glu"] + a["Gln"]) / tcr < GLX_TCR[1]
    assert r.residual_to_noise["single"] < RESIDUAL_TO_NOISE_FREE_MAX[name]
    # measured 1.15 vs 1.18 (Siemens), 1.46 vs 1.55 and 1.17 vs 1.30 (Philips)
    assert r.residual_to_noise["single"] <= 1.005 * voigt.residual_to_noise["single"]
    assert r.lineshape_kernel.sum() == pytest.approx(1.0)


def _late_residual_power(r, f0_mhz: float, t_min_s: float = 0.2) -> float:
    """Return the residual's power / noise variance at pseudo-times beyond t_min_s.

    The inverse FFT of the windowed residual is a time signal; beyond ~0.2 s the fitted
    lines have decayed below the noise, so a correct noise SD gives a power near 1 there.
    """
    res = r.residual["single"] / r.noise_sd["single"]
    n = res.size
    t_s = np.fft.fftfreq(n, d=(r.ppm[1] - r.ppm[0]) * f0_mhz)
    pseudo = np.fft.ifft(np.fft.ifftshift(res)) * np.sqrt(n)  # unitary: white -> power 1
    return float(np.mean(np.abs(pseudo[np.abs(t_s) > t_min_s]) ** 2) / 2)


def test_siemens_noise_sd_matches_the_late_residual(real_fits):
    """The noise SD, measured outside the fit window, holds inside it.

    Independent check of gabaapp.lcm.noise on the Siemens spectrum: the residual's late part
    (no line left) has the power the noise SD predicts (measured 1.07; with the former
    single-quadratic estimate it was 0.65, i.e. that estimate overstated the noise by 24 %;
    1.09 on the default input, 1.08 on the plain average).
    """
    _, acq, _, _ = real_fits["siemens_rda", "input"]
    assert 0.8 < _late_residual_power(real_fits["siemens_rda"], acq.f0_mhz) < 1.3


def _noise_psd_ratio(fid, acq, t_lo_s: float, t_hi_s: float, lo: float, hi: float) -> float:
    """Return the noise SD over lo-hi ppm, from FID[t_lo_s:t_hi_s] (lines decayed), / the
    noise SD gabaapp.lcm.noise measures in the signal-free ranges.

    The section is detrended, Hann-windowed (power-normalised) and scaled to the full FID
    length: white noise of the measured SD gives 1.
    """
    from gabaapp.lcm.noise import noise_sd

    x = fid[int(t_lo_s / acq.dwell_s) : int(t_hi_s / acq.dwell_s)]
    n = np.arange(x.size)
    x = x - np.polyval(np.polyfit(n, x, 1), n)
    win = np.hanning(x.size) / np.sqrt(np.mean(np.hanning(x.size) ** 2))
    spec = fid_to_spectrum(x * win) * np.sqrt(acq.n_points / x.size)
    ppm = np.fft.fftshift(np.fft.fftfreq(x.size, acq.dwell_s)) / acq.f0_mhz + acq.centre_ppm
    sel = (ppm >= lo) & (ppm <= hi)
    sd = np.sqrt(np.mean(np.abs(spec[sel]) ** 2) / 2)
    return float(sd / noise_sd(fid, acq, LcmConfig().noise_ppm_ranges))


@pytest.mark.parametrize(
    ("name", "t_lo_s", "t_hi_s"),
    [("siemens_rda", 0.3, 0.55), ("philips_sdat", 0.6, 1.0), ("philips_sdat_sub02", 0.6, 1.0)],
)
def test_in_band_noise_matches_the_noise_estimate(real_fits, name, t_lo_s, t_hi_s):
    """Hypothesis 1 of issue 9, refuted: the noise inside the fit window is not higher than
    in the signal-free ranges near the window edges (where an anti-alias filter could have
    attenuated it). Measured 0.97 (Siemens), 1.08 and 1.08 (Philips) over 1.0-3.4 ppm."""
    fid, acq, _, _ = real_fits[name, "input"]
    assert 0.85 < _noise_psd_ratio(fid, acq, t_lo_s, t_hi_s, 1.0, 3.4) < 1.2


def _band_power(fid, acq, lo: float, hi: float, t_lo_s: float, t_hi_s: float) -> float:
    """Return the mean power of the FID band-limited to lo-hi ppm (Hann window) over
    t_lo_s-t_hi_s, relative to the power white noise of the measured noise SD gives."""
    from gabaapp.lcm.noise import noise_sd
    from gabaapp.spectra import spectrum_to_fid

    ppm = acq.ppm_axis()
    sel = (ppm >= lo) & (ppm <= hi)
    w = np.zeros(ppm.size)
    w[sel] = np.hanning(sel.sum())
    x = spectrum_to_fid(fid_to_spectrum(fid) * w)
    nsd = noise_sd(fid, acq, LcmConfig().noise_ppm_ranges)
    power = np.abs(x) ** 2 / 2 / (nsd**2 * np.sum(w**2) / acq.n_points**2)
    return float(power[int(t_lo_s / acq.dwell_s) : int(t_hi_s / acq.dwell_s)].mean())


def test_philips_spectrum_has_a_spurious_echo_at_3_4_to_4_2_ppm(real_fits):
    """What limits the Philips residual: a signal that starts late (a spurious echo).

    Band-limited to 3.4-4.2 ppm the FID decays to noise by 0.16-0.2 s (power 2.7 x noise),
    then rises again to 10-27 x noise at 0.24-0.4 s; at 1.8-2.6 ppm it stays at 1-2.4. No
    sum of decaying basis lines can fit that, so the residual at 3.4-4.2 ppm stays high.
    """
    fid, acq, _, _ = real_fits["philips_sdat", "input"]
    decayed = _band_power(fid, acq, 3.4, 4.2, 0.16, 0.20)
    echo = _band_power(fid, acq, 3.4, 4.2, 0.24, 0.40)
    quiet = _band_power(fid, acq, 1.8, 2.6, 0.24, 0.40)
    assert echo > 4.0 * decayed
    assert echo > 5.0 * quiet and quiet < 2.5
    # the other Philips subject, same protocol, has none (measured 2.1)
    fid2, acq2, _, _ = real_fits["philips_sdat_sub02", "input"]
    assert _band_power(fid2, acq2, 3.4, 4.2, 0.24, 0.40) < 3.0


# Added to the bundle for issue 9 (gabaapp/data/spins): the spectra above are fitted with them.
LATER_BUNDLED = ("PE", "Glc", "Asc")


def test_larger_basis_keeps_the_start_near_the_true_shift(real_fits):
    """With PE added, the start once sat at the +20 Hz shift bound (residual 8.8 x noise).

    The complex-amplitude grid search let 17 free columns fit a wrong shift; the
    non-negative re-ranking of the best grid points must keep the fit with all bundled spin
    systems (PE, Glc, Asc included) where the fit without the three is.
    """
    fid, acq, basis, _ = real_fits["siemens_rda", "input"]
    keep = [i for i, n in enumerate(basis.names) if n not in LATER_BUNDLED]
    names = tuple(basis.names[i] for i in keep)
    small = Basis(names, basis.off[keep], basis.on[keep], basis.acquisition, "without PE Glc Asc")
    ref = fit_spectrum(fid, acq, small, names, LcmConfig(include_mm=True))
    r = real_fits["siemens_rda", "plain"]
    assert set(LATER_BUNDLED) <= set(r.names)
    assert r.converged, r.flags
    assert r.shift_hz["single"] == pytest.approx(ref.shift_hz["single"], abs=1.0)
    assert r.residual_to_noise["single"] <= 1.005 * ref.residual_to_noise["single"]


def test_the_spurious_echo_is_removed_before_the_fit(real_fits):
    """gabaapp.preproc.echo finds the Philips sub-01 echo (3.2-4.2 ppm, starting ~0.2 s) and
    removing it lowers that fit's residual (measured 1.72 -> 1.50) and its late residual
    power to the level of the echo-free sub-02 (2.43 -> 1.27; sub-02 1.24), with tNAA/tCr
    and Glx/tCr unchanged; on sub-02 it finds nothing and changes nothing (docs/lcm.md,
    log item 11)."""
    from gabaapp.lcm.noise import noise_sd
    from gabaapp.preproc.echo import remove_late_echo

    config = LcmConfig(include_mm=True)
    fid, acq, basis, _ = real_fits["philips_sdat", "input"]
    clean, report = remove_late_echo(fid, acq, noise_sd(fid, acq, config.noise_ppm_ranges))
    assert report.detected
    assert all(b.ppm[0] >= 3.0 and 0.15 <= b.start_s <= 0.3 for b in report.bands)
    r = fit_spectrum(clean, acq, basis, basis.names, config)
    before = real_fits["philips_sdat", "plain"]
    assert r.residual_to_noise["single"] < 0.9 * before.residual_to_noise["single"]
    assert _late_residual_power(r, acq.f0_mhz) < 1.5
    for num, den in ((("NAA", "NAAG"), ("Cr", "PCr")), (("Glu", "Gln"), ("Cr", "PCr"))):
        ratio = [
            sum(x.amplitudes[n] for n in num) / sum(x.amplitudes[n] for n in den)
            for x in (r, before)
        ]
        assert ratio[0] == pytest.approx(ratio[1], rel=0.02)
    fid2, acq2, _, _ = real_fits["philips_sdat_sub02", "input"]
    clean2, report2 = remove_late_echo(fid2, acq2, noise_sd(fid2, acq2, config.noise_ppm_ranges))
    assert not report2.detected
    np.testing.assert_array_equal(clean2, fid2)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_press_residual_whiteness_is_reported(real_fits, name):
    """Every fit reports whether its residual is white: on these spectra it is not (default
    fits: lag-1 autocorrelation +0.17 / +0.08 / +0.25 where a correct model leaves -0.14 /
    -0.12 / -0.12, Ljung-Box p < 1e-38; plain average with the 10 ms basis +0.20 to +0.43,
    p < 1e-60) and the fit says so in its flags. The expected value is the fit's own: a
    correct model's residual anti-correlates neighbours a little (docs/lcm.md)."""
    for r in (real_fits[name], real_fits[name, "plain"]):
        w = r.residual_whiteness["single"]
        assert -0.25 < w["lag1_acf_expected"] < 0.0
        assert w["lag1_acf"] > w["lag1_acf_expected"] + 0.15
        assert w["p_value"] < 1e-20
        assert any("not white" in f for f in r.flags)


def test_eddy_current_correction_with_the_water_reference_lowers_the_residual(
    real_fits, shared_data, tmp_path
):
    """gabaapp's own unedited pre-processing chain (preprocess_unedited: Klose eddy-current
    correction with the water phase, HLSVD water removal, phasing, referencing) fitted
    instead of the plain average: on both Philips subjects the water reference removes the
    time-varying phase that made the NAA/Cr/Cho lines dispersion-shaped (measured residual
    1.72 -> 1.65 on sub-01, 1.59 -> 1.36 on held-out sub-02; docs/lcm.md log item 12), PE's
    non-physiological share falls, and the ratios stay in published ranges. Without eddy-
    current correction the same chain changes nothing (HLSVD alone: 1.72, 1.61)."""
    from gabaapp.config import PreprocConfig
    from gabaapp.io.nifti_mrs import load_nifti_mrs
    from gabaapp.preproc.chain import preprocess_unedited

    spec2nii = Path(sys.executable).with_name("spec2nii")
    config = LcmConfig(include_mm=True)
    for name, files in WATER_REF.items():
        fmt, *act = REAL[name]
        for tag, f in (("act", act), ("ref", files)):
            cmd = [str(spec2nii), fmt, "-o", str(tmp_path), "-f", f"{name}_{tag}"]
            subprocess.run([*cmd, *(str(shared_data / x) for x in f)], check=True)
        metab = load_nifti_mrs(tmp_path / f"{name}_act.nii.gz")
        water = load_nifti_mrs(tmp_path / f"{name}_ref.nii.gz")
        _, acq, basis, _ = real_fits[name, "input"]
        before = real_fits[name, "plain"]
        pre = preprocess_unedited(metab, water)
        assert pre.qc["eddy_current_corrected"] == 1.0
        r = fit_spectrum(pre.off, acq, basis, basis.names, config)
        assert r.converged, r.flags
        assert r.residual_to_noise["single"] < 0.97 * before.residual_to_noise["single"]
        a, b = r.amplitudes, before.amplitudes
        tcr = a["Cr"] + a["PCr"]
        assert TNAA_TCR[0] < (a["NAA"] + a["NAAG"]) / tcr < TNAA_TCR[1]
        assert GLX_TCR[0] < (a["Glu"] + a["Gln"]) / tcr < GLX_TCR[1]
        assert a["PE"] / tcr < 0.85 * b["PE"] / (b["Cr"] + b["PCr"])
        # the same chain without the eddy-current correction: no gain (HLSVD, phasing and
        # referencing do not change what the fit sees)
        plain = preprocess_unedited(metab, water, PreprocConfig(eddy_current=False))
        r0 = fit_spectrum(plain.off, acq, basis, basis.names, config)
        assert r0.residual_to_noise["single"] > 0.99 * before.residual_to_noise["single"]


def _preprocessed_clean(real_fits, shared_data, tmp_path, name):
    """Return (FID, Acquisition): gabaapp's unedited chain with the scan's water reference,
    then the opt-in spurious-echo removal, as benchmarks/bench_lcm_te1_profile.py fits."""
    from gabaapp.io.nifti_mrs import load_nifti_mrs
    from gabaapp.lcm.noise import noise_sd
    from gabaapp.preproc.chain import preprocess_unedited
    from gabaapp.preproc.echo import remove_late_echo

    spec2nii = Path(sys.executable).with_name("spec2nii")
    fmt, *act = REAL[name]
    for tag, f in (("act", act), ("ref", WATER_REF[name])):
        cmd = [str(spec2nii), fmt, "-o", str(tmp_path), "-f", f"{name}_{tag}"]
        subprocess.run([*cmd, *(str(shared_data / x) for x in f)], check=True)
    metab = load_nifti_mrs(tmp_path / f"{name}_act.nii.gz")
    water = load_nifti_mrs(tmp_path / f"{name}_ref.nii.gz")
    _, acq, _, _ = real_fits[name, "input"]
    x = preprocess_unedited(metab, water).off
    return remove_late_echo(x, acq, noise_sd(x, acq, LcmConfig().noise_ppm_ranges))[0], acq


@pytest.mark.slow
def test_te1_split_chosen_on_sub01_lowers_the_held_out_residual(real_fits, shared_data, tmp_path):
    """The TE1/TE2 split is not in the headers (log item 9); profiled on Philips sub-01
    (gabaapp.lcm.timing) the misfit is least near TE1 = 14 ms, not the assumed 10 ms, and that
    choice, applied to the held-out sub-02 of the same protocol, lowers its residual too
    (measured 1.36 -> 1.30) and halves the residual power of the 2.2-2.6 ppm multiplet band
    (docs/lcm.md, log item 12). Basis simulations: ~50 s."""
    from gabaapp.lcm.timing import press_basis, te1_profile

    config = LcmConfig(include_mm=True)
    x1, acq = _preprocessed_clean(real_fits, shared_data, tmp_path, "philips_sdat")
    prof = te1_profile(x1, acq, (10.0, 12.0, 14.0, 16.0), config=config)
    assert not prof.at_grid_edge
    assert 12.5 <= prof.best_te1_ms <= 15.5
    assert min(prof.residual_to_noise) < 0.95 * prof.residual_to_noise[0]  # vs 10 ms
    x2, acq2 = _preprocessed_clean(real_fits, shared_data, tmp_path, "philips_sdat_sub02")
    fits = {}
    for te1 in (10.0, round(prof.best_te1_ms, 1)):
        basis = press_basis(acq2, te1)
        fits[te1] = fit_spectrum(x2, acq2, basis, basis.names, config)
    before, after = fits.values()
    assert after.converged, after.flags
    assert after.residual_to_noise["single"] < 0.97 * before.residual_to_noise["single"]

    def band(r, lo=2.2, hi=2.6):
        """Residual power of the band at pseudo-times 40-100 ms (Hann-windowed band, inverse
        FFT), where the multiplets' misfit sits; white noise contributes as much at any
        split, so the plain band variance hides it."""
        sel = np.flatnonzero((r.ppm >= lo) & (r.ppm < hi))
        w = np.zeros(r.ppm.size)
        w[sel] = np.hanning(sel.size + 2)[1:-1]
        t = np.fft.fftfreq(r.ppm.size, d=(r.ppm[1] - r.ppm[0]) * acq2.f0_mhz)
        pseudo = np.fft.ifft(np.fft.ifftshift(r.residual["single"] * w))
        keep = (np.abs(t) >= 0.04) & (np.abs(t) < 0.1)
        return np.mean(np.abs(pseudo[keep]) ** 2)

    # measured 4.2 -> 2.0 x the noise power
    assert band(after) < 0.7 * band(before)
    a = after.amplitudes
    tcr = a["Cr"] + a["PCr"]
    assert TNAA_TCR[0] < (a["NAA"] + a["NAAG"]) / tcr < TNAA_TCR[1]
    assert GLX_TCR[0] < (a["Glu"] + a["Gln"]) / tcr < GLX_TCR[1]
