"""Residual of the linear-combination fit on real 3 T PRESS spectra (issue 9: noise-like?).

Converts the Siemens RDA (TE 30) and Philips SDAT (TE 35; sub-01, and sub-02 held out)
spectra of ../shared/data with spec2nii and fits them with the 19-spin-system gabaapp.physics
PRESS basis for their own TE and sampling plus the MM set, and writes residual SD / noise SD
over the fit window, over 1.0-3.4 ppm and per 0.1 ppm band, the residual's power beyond 0.2 s
(a check of the noise SD inside the window), the chosen baseline stiffness, tNAA/tCr, Glx/tCr
and the fit time to benchmarks/results/lcm_realdata.json.

"default" is what a user gets (docs/lcm.md, log item 13): the output of gabaapp's own
pre-processing chain for unedited scans (gabaapp.preproc.chain.preprocess_unedited, default
PreprocConfig), given the scan's water reference where one exists (both Philips subjects have
one, the Siemens RDA has none): Klose eddy-current correction with the water phase, HLSVD
residual-water removal, zero-order phasing and frequency referencing; fitted with the basis
for the protocol's TE1/TE2 split as profiled on the data (TE1_MS: Siemens 15.1 ms; Philips
14.2 ms, chosen on sub-01 and applied to held-out sub-02; bench_lcm_te1_profile.py), with
the default single-spectrum model (individual shifts, "gaussian" MM set). Other rows, one
change each against it: "echo_removed" adds gabaapp.preproc.echo.remove_late_echo (opt-in, not
in the chain), "plain_average" fits the plain average of the scanner-averaged FID instead of
the pre-processed one, "plain_average_te1_10ms" the plain average with the former basis (TE1
10 ms: the headline before log item 13), "mm_set_lcmodel" LCModel's MM/lipid set,
"no_individual_shifts" the model before individual shifts.

Is the residual noise-like? Besides the SD ratio, the fit reports the residual's lag-1
autocorrelation and a Ljung-Box test against what a correct model's residual shows
(gabaapp.lcm.whiteness); as a reference, `--null N` fits N parametric-bootstrap copies of
each default spectrum (the fitted model + baseline inside the fit window, fresh white noise
of the measured SD) and records the ratio and the p-values a correct model gives.

Two checks of the data themselves go to the same file: the noise PSD of a signal-free part
of the FID (NOISE_SECTION_S; also 0.3-0.55 s for both), per 1 ppm band relative to the noise
SD the fit uses (hypothesis 1: is the in-band noise higher than at the window edges?), and
the power of the FID band-limited to 3.4-4.2 and 1.8-2.6 ppm per 40 ms, relative to noise (a
spurious echo shows as a rise after the lines have decayed). With `--plot DIR` it also saves
data/model/baseline/residual figures there (default and echo-removed rows; with
`--lineshape free` their names end in "_free").

    .venv/bin/python benchmarks/bench_lcm_realdata.py [--plot /tmp] [--null 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from gabaapp.config import LcmConfig
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.lcm.fit import fit_spectrum
from gabaapp.lcm.noise import noise_sd
from gabaapp.lcm.timing import press_basis
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import available_metabolites, load_spin_system
from gabaapp.preproc.chain import preprocess_unedited
from gabaapp.preproc.echo import remove_late_echo
from gabaapp.spectra import Basis, fid_to_spectrum, spectrum_to_fid

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "lcm_realdata.json"
# Held out: the model choices of issue 9 were made on REAL; this second Philips subject
# (same protocol) checks them on a spectrum they were not tuned on.
HELD_OUT = {
    "philips_sdat_sub02": [
        "philips",
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press/sub-02_PRESS_35_act.sdat",
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press/sub-02_PRESS_35_act.spar",
    ],
}
# FID sections for the noise PSD: lines decayed, before the Siemens FID's end artefact
# (from 0.58 s), and on Philips (1.02 s long) after most of its spurious echo (0.24-0.5 s).
NOISE_SECTION_S = {
    "siemens_rda": (0.3, 0.55),
    "philips_sdat": (0.6, 1.0),
    "philips_sdat_sub02": (0.6, 1.0),
}
# Unsuppressed water references of the same scans (None: the scan has none).
WATER = {
    "siemens_rda": None,
    "philips_sdat": [
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press-ref/sub-01_PRESS_35_ref.sdat",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press-ref/sub-01_PRESS_35_ref.spar",
    ],
    "philips_sdat_sub02": [
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press-ref/sub-02_PRESS_35_ref.sdat",
        "osprey_philips/UnEdited/sub-02/ses-01/mrs/sub-02_ses-01_press-ref/sub-02_PRESS_35_ref.spar",
    ],
}
# The protocols' TE1/TE2 split as profiled on the data (bench_lcm_te1_profile.py, 22:44 UTC):
# Siemens in-sample; Philips chosen on sub-01 and applied to the held-out sub-02.
TE1_MS = {"siemens_rda": 15.1, "philips_sdat": 14.2, "philips_sdat_sub02": 14.2}
REAL = {
    "siemens_rda": ["rda", "suspect_siemens_press/SVS_30.rda"],
    "philips_sdat": [
        "philips",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.sdat",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.spar",
    ],
}


def load(name: str, fmt: str, files: list[str], out: Path):
    """Return (averaged FID, Acquisition, PRESS Basis) of one real spectrum."""
    spec2nii = Path(sys.executable).with_name("spec2nii")
    cmd = [str(spec2nii), fmt, "-o", str(out), "-f", name, *(str(SHARED / f) for f in files)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    fids = load_nifti_mrs(out / f"{name}.nii.gz")
    acq = fids.acquisition
    seq = MegaPressSequence.for_te(
        acq.te_s * 1e3,
        editing=False,
        f0_mhz=acq.f0_mhz,
        spectral_width_hz=acq.spectral_width_hz,
        n_points=acq.n_points,
    )
    names = available_metabolites()
    pairs = [simulate_spin_system(load_spin_system(n), seq) for n in names]
    off, on = zip(*pairs, strict=True)
    basis = Basis(tuple(names), np.array(off), np.array(on), seq.acquisition(), seq.hash())
    return fids.data.reshape(-1, acq.n_points).mean(axis=0), acq, basis


def preprocessed(name: str, fmt: str, out: Path):
    """Return (FID, preprocessing QC) of gabaapp's own unedited chain on scan `name` (after
    `load`), with its water reference where it has one."""
    metab = load_nifti_mrs(out / f"{name}.nii.gz")
    water = None
    if WATER[name]:
        spec2nii = Path(sys.executable).with_name("spec2nii")
        files = (str(SHARED / f) for f in WATER[name])
        cmd = [str(spec2nii), fmt, "-o", str(out), "-f", f"{name}_ref", *files]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        water = load_nifti_mrs(out / f"{name}_ref.nii.gz")
    result = preprocess_unedited(metab, water)
    return result.off, result.qc


def band_ratios(r, width_ppm: float = 0.1) -> dict[str, float]:
    """Return residual SD / noise SD per ppm band of the fit window."""
    res, nsd = r.residual["single"], r.noise_sd["single"]
    edges = np.arange(r.ppm[0], r.ppm[-1] + 1e-9, width_ppm)
    out = {}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (r.ppm >= lo) & (r.ppm < hi)
        out[f"{lo:.1f}-{hi:.1f}"] = float(np.sqrt(np.mean(np.abs(res[sel]) ** 2) / 2) / nsd)
    return out


def sub_band_ratio(r, lo: float, hi: float) -> float:
    """Return residual SD / noise SD over lo-hi ppm."""
    sel = (r.ppm >= lo) & (r.ppm <= hi)
    res = r.residual["single"][sel]
    return float(np.sqrt(np.mean(np.abs(res) ** 2) / 2) / r.noise_sd["single"])


def noise_psd_bands(fid, acq, t_lo_s: float = 0.3, t_hi_s: float = 0.55) -> dict[str, float]:
    """Return the noise SD per 1 ppm band / the fit's noise SD, from FID[t_lo_s:t_hi_s].

    By then the lines have decayed (band-limited FID power < 2 x noise on both spectra, see
    echo_profile), and before 0.58 s the Siemens FID's end artefact has not begun. The
    section is detrended (linear), Hann-windowed (power-normalised) and scaled to the full
    FID length, so a white noise of the fit's noise SD gives 1 in every band.
    """
    nsd = noise_sd(fid, acq, LcmConfig().noise_ppm_ranges)
    i0, i1 = int(t_lo_s / acq.dwell_s), int(t_hi_s / acq.dwell_s)
    x = fid[i0:i1]
    n = np.arange(x.size)
    x = x - np.polyval(np.polyfit(n, x, 1), n)
    win = np.hanning(x.size)
    win /= np.sqrt(np.mean(win**2))
    spec = fid_to_spectrum(x * win) * np.sqrt(acq.n_points / x.size)
    ppm = np.fft.fftshift(np.fft.fftfreq(x.size, acq.dwell_s)) / acq.f0_mhz + acq.centre_ppm
    out = {}
    for lo in np.arange(np.ceil(ppm[0]), np.floor(ppm[-1])):
        sel = (ppm >= lo) & (ppm < lo + 1)
        out[f"{lo:.0f}-{lo + 1:.0f}"] = float(np.sqrt(np.mean(np.abs(spec[sel]) ** 2) / 2) / nsd)
    sel = (ppm >= 1.0) & (ppm <= 3.4)
    out["1.0-3.4"] = float(np.sqrt(np.mean(np.abs(spec[sel]) ** 2) / 2) / nsd)
    return out


def echo_profile(fid, acq, lo: float, hi: float, step_s: float = 0.04) -> list[float]:
    """Return the power of the FID band-limited to lo-hi ppm per `step_s`, / noise power.

    The spectrum is multiplied by a Hann window over lo-hi ppm and transformed back; white
    noise of the fit's noise SD gives 1. A decaying FID falls monotonically to 1; a rise
    after the lines have decayed is a signal that starts late: a spurious echo.
    """
    nsd = noise_sd(fid, acq, LcmConfig().noise_ppm_ranges)
    ppm = acq.ppm_axis()
    sel = (ppm >= lo) & (ppm <= hi)
    w = np.zeros(ppm.size)
    w[sel] = np.hanning(sel.sum())
    x = spectrum_to_fid(fid_to_spectrum(fid) * w)
    power = np.abs(x) ** 2 / 2 / (nsd**2 * np.sum(w**2) / acq.n_points**2)
    k = int(round(step_s / acq.dwell_s))
    return [float(power[i : i + k].mean()) for i in range(0, acq.n_points - k + 1, k)]


def late_power(r, f0_mhz: float, t_min_s: float = 0.2) -> float:
    """Return residual power / noise variance at pseudo-times > t_min_s (white noise: 1).

    The inverse FFT of the windowed residual is a time signal; beyond ~0.2 s the fitted lines
    have decayed below the noise, so there the residual should be noise of the measured SD.
    """
    res = r.residual["single"] / r.noise_sd["single"]
    t_s = np.fft.fftfreq(res.size, d=(r.ppm[1] - r.ppm[0]) * f0_mhz)
    pseudo = np.fft.ifft(np.fft.ifftshift(res)) * np.sqrt(res.size)
    return float(np.mean(np.abs(pseudo[np.abs(t_s) > t_min_s]) ** 2) / 2)


def mid_time_power_by_band(
    r, f0_mhz: float, width_ppm: float = 0.4, t_s: tuple[float, float] = (0.04, 0.1)
) -> dict[str, float]:
    """Return, per `width_ppm` band of the fit window, the residual's power / noise variance at
    pseudo-times t_s (white noise: 1).

    The residual is Hann-windowed to the band and inverse-transformed; its power at 40-100 ms,
    where the residual of these fits is largest (the lines still ring there, the baseline
    no longer reaches), says which band holds the misfit of line positions and shapes.
    """
    res = r.residual["single"] / r.noise_sd["single"]
    out = {}
    for lo in np.arange(r.ppm[0], r.ppm[-1] - 1e-9, width_ppm):
        sel = np.flatnonzero((r.ppm >= lo) & (r.ppm < lo + width_ppm))
        w = np.zeros(res.size)
        w[sel] = np.hanning(sel.size + 2)[1:-1]
        t = np.fft.fftfreq(res.size, d=(r.ppm[1] - r.ppm[0]) * f0_mhz)
        pseudo = np.fft.ifft(np.fft.ifftshift(res * w)) * np.sqrt(res.size)
        keep = (np.abs(t) >= t_s[0]) & (np.abs(t) < t_s[1])
        power = np.mean(np.abs(pseudo[keep]) ** 2) / 2 * res.size / np.sum(w**2)
        out[f"{lo:.1f}-{lo + width_ppm:.1f}"] = float(power)
    return out


def plot(r, name: str, folder: Path, tag: str = "") -> None:
    """Save data/model/baseline (top), residual / noise SD with the +-2 SD band (middle; real
    and imaginary parts, phase-corrected) and the residual's autocorrelation against what
    a correct model leaves (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gabaapp.lcm.whiteness import autocorrelation

    nsd = r.noise_sd["single"]
    ph = r.phase0_deg["single"] + r.phase1_deg_per_ppm["single"] * (r.ppm - r.ppm.mean())
    rot = np.exp(-1j * np.deg2rad(ph))
    res = r.residual["single"] * rot / nsd
    fig, ax = plt.subplots(3, 1, figsize=(10, 8.5), gridspec_kw={"height_ratios": [3, 3, 1.6]})
    ax[0].plot(r.ppm, (r.data["single"] * rot).real, "k", lw=0.7, label="data")
    ax[0].plot(r.ppm, (r.model["single"] * rot).real, "r", lw=0.7, label="model")
    ax[0].plot(r.ppm, (r.baseline["single"] * rot).real, "b", lw=0.7, label="baseline")
    ax[0].legend()
    w = r.residual_whiteness["single"]
    ax[0].set_title(
        f"{name}{tag}: residual/noise {r.residual_to_noise['single']:.2f}, lag-1 autocorr."
        f" {w['lag1_acf']:.2f} (correct model {w['lag1_acf_expected']:.2f}),"
        f" Ljung-Box p {w['p_value']:.0e}",
        fontsize=9,
    )
    for off, part, colour in ((0.0, res.real, "k"), (-10.0, res.imag, "g")):
        ax[1].fill_between(r.ppm, off - 2, off + 2, color="orange", alpha=0.3, lw=0)
        ax[1].plot(r.ppm, part + off, colour, lw=0.6)
    ax[1].set_ylabel("residual / noise SD\n(real; imag - 10)")
    ax[1].set_xlabel("ppm (orange: +-2 noise SD)")
    for a in ax[:2]:
        a.set_xlim(r.ppm[-1], r.ppm[0])
    lags = np.arange(1, 21)
    acf = autocorrelation(r.residual["single"], lags.size).real
    ax[2].bar(lags, acf, color="k", width=0.6, label="residual")
    ax[2].axhline(w["lag1_acf_expected"], color="r", lw=0.8, label="lag 1, correct model")
    ax[2].axhspan(-2 / np.sqrt(res.size), 2 / np.sqrt(res.size), color="orange", alpha=0.3)
    ax[2].set_xlabel("lag (points)")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / f"lcm_realdata_{name}{tag.replace(' ', '_')}.png", dpi=80)
    plt.close(fig)


def null_fits(r, fid, acq, basis, cfg, n: int, seed: int = 0) -> dict[str, object]:
    """Return the residual/noise ratios and Ljung-Box p-values of `n` parametric-bootstrap
    fits: inside the fit window the spectrum is replaced by the fitted model (+ baseline)
    plus fresh complex white noise of the measured SD (outside it stays as measured), i.e.
    data for which the model is right and the noise white."""
    rng = np.random.default_rng(seed)
    spec = fid_to_spectrum(fid)
    sel = np.flatnonzero((acq.ppm_axis() >= r.ppm[0]) & (acq.ppm_axis() <= r.ppm[-1]))
    nsd = r.noise_sd["single"]
    ratios, pvals, lag1 = [], [], []
    for _ in range(n):
        s = spec.copy()
        s[sel] = r.model["single"] + nsd * (
            rng.normal(size=sel.size) + 1j * rng.normal(size=sel.size)
        )
        rb = fit_spectrum(spectrum_to_fid(s), acq, basis, basis.names, cfg)
        ratios.append(rb.residual_to_noise["single"])
        pvals.append(rb.residual_whiteness["single"]["p_value"])
        lag1.append(rb.residual_whiteness["single"]["lag1_acf"])
    return {
        "n": n,
        "residual_to_noise": [
            float(np.min(ratios)),
            float(np.median(ratios)),
            float(np.max(ratios)),
        ],
        "lag1_acf": [float(np.min(lag1)), float(np.median(lag1)), float(np.max(lag1))],
        "ljung_box_p": [float(np.min(pvals)), float(np.median(pvals)), float(np.max(pvals))],
        "fraction_p_below_0.01": float(np.mean(np.array(pvals) < 0.01)),
    }


def ratio_crlb(r, num: tuple[str, ...], den: tuple[str, ...]) -> float:
    """Return the CRLB of sum(num) / sum(den) by first-order propagation of the amplitude
    covariance (sums of amplitudes, e.g. tNAA / tCr)."""
    a = r.amplitudes
    top, bottom = sum(a[n] for n in num), sum(a[n] for n in den)
    grad = np.zeros(len(r.names))
    for n in num:
        grad[r.names.index(n)] += 1.0 / bottom
    for n in den:
        grad[r.names.index(n)] -= top / bottom**2
    return float(np.sqrt(grad @ r.amplitude_covariance @ grad))


def summarise(r, acq, cpu_s: float) -> dict[str, object]:
    """Return the JSON row of one fit."""
    a = r.amplitudes
    tcr = a["Cr"] + a["PCr"]
    return {
        "residual_to_noise": r.residual_to_noise["single"],
        "residual_to_noise_1.0_3.4_ppm": sub_band_ratio(r, 1.0, 3.4),
        "residual_to_noise_by_band": band_ratios(r),
        "noise_sd": r.noise_sd["single"],
        "late_residual_power": late_power(r, acq.f0_mhz),
        "residual_power_40_100_ms_by_band": mid_time_power_by_band(r, acq.f0_mhz),
        "baseline_stiffness": r.baseline_stiffness,
        "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
        "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
        "tnaa_to_tcr_crlb": ratio_crlb(r, ("NAA", "NAAG"), ("Cr", "PCr")),
        "glx_to_tcr_crlb": ratio_crlb(r, ("Glu", "Gln"), ("Cr", "PCr")),
        "crlb_percent": {k: (v if np.isfinite(v) else None) for k, v in r.crlb_percent.items()},
        "residual_whiteness": r.residual_whiteness["single"],
        "individual_shift_hz": r.individual_shift_hz,
        "mm_to_tcr": {k: v / tcr for k, v in a.items() if k.startswith(("MM", "Lip"))},
        "lorentz_hz": r.lorentz_hz,
        "gauss_hz": r.gauss_hz,
        "converged": r.converged,
        "cpu_seconds": cpu_s,
    }


def run_context() -> dict[str, object]:
    """Return the machine, UTC time and load average that every real-data LCM run records."""
    return {
        "machine": f"{platform.machine()} {platform.processor()}; 2-core CPU sandbox, shared",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None, help="folder for figures")
    parser.add_argument("--lineshape", choices=("voigt", "free"), default="voigt")
    parser.add_argument("--lineshape-stiffness", type=float, default=None)
    parser.add_argument("--lineshape-halfwidth-ppm", type=float, default=None)
    parser.add_argument("--null", type=int, default=0, help="parametric-bootstrap fits")
    args = parser.parse_args(argv)
    extra = {}
    if args.lineshape_stiffness is not None:
        extra["lineshape_stiffness"] = args.lineshape_stiffness
    if args.lineshape_halfwidth_ppm is not None:
        extra["lineshape_halfwidth_ppm"] = args.lineshape_halfwidth_ppm
    config = LcmConfig(include_mm=True, lineshape=args.lineshape, **extra)
    # label: (config, input FID, basis): "pre" gabaapp's chain, "echo" that + echo removal,
    # "raw" the plain average; "split" the protocol's TE1 split, "10ms" the former basis
    variants = {
        "default": (config, "pre", "split"),
        "echo_removed": (config, "echo", "split"),
        "plain_average": (config, "raw", "split"),
        "plain_average_te1_10ms": (config, "raw", "10ms"),
        "mm_set_lcmodel": (replace(config, mm_set="lcmodel"), "pre", "split"),
        "no_individual_shifts": (replace(config, individual_shifts="off"), "pre", "split"),
    }
    results = RESULTS if args.lineshape == "voigt" else RESULTS.with_name("lcm_realdata_free.json")
    out: dict[str, object] = {
        "lineshape": args.lineshape,
        "lineshape_stiffness": config.lineshape_stiffness,
        "lineshape_halfwidth_ppm": config.lineshape_halfwidth_ppm,
        "individual_shift_sd_ppm": config.individual_shift_sd_ppm,
        "te1_ms": TE1_MS,
        **run_context(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            fid, acq, basis_10ms = load(name, fmt, files, Path(tmp))
            bases = {"split": press_basis(acq, TE1_MS[name]), "10ms": basis_10ms}
            row: dict[str, object] = {
                "noise_psd_section_s": NOISE_SECTION_S[name],
                "noise_psd_by_band": noise_psd_bands(fid, acq, *NOISE_SECTION_S[name]),
                "noise_psd_by_band_0.3_0.55_s": noise_psd_bands(fid, acq, 0.3, 0.55),
                "band_power_per_40ms_3.4_4.2_ppm": echo_profile(fid, acq, 3.4, 4.2),
                "band_power_per_40ms_1.8_2.6_ppm": echo_profile(fid, acq, 1.8, 2.6),
            }
            pre, qc = preprocessed(name, fmt, Path(tmp))
            row["preprocessing_qc"] = {
                k: qc[k] for k in ("water_reference_used", "eddy_current_corrected") if k in qc
            }
            t0 = time.process_time()
            pre_clean, echo = remove_late_echo(
                pre, acq, noise_sd(pre, acq, config.noise_ppm_ranges)
            )
            row["echo_removal_cpu_seconds"] = time.process_time() - t0
            row["echo_bands"] = [
                {k: getattr(b, k) for k in b.__dataclass_fields__} for b in echo.bands
            ]
            inputs = {"pre": pre, "echo": pre_clean, "raw": fid}
            for label, (cfg, which, split) in variants.items():
                x, basis = inputs[which], bases[split]
                t0 = time.process_time()
                r = fit_spectrum(x, acq, basis, basis.names, cfg)
                cpu_s = time.process_time() - t0
                row[label] = summarise(r, acq, cpu_s)
                if label == "default" and args.null:
                    row["null_default"] = null_fits(r, x, acq, basis, cfg, args.null)
                print(
                    f"{name} {label}: residual/noise {r.residual_to_noise['single']:.3f} "
                    f"(1.0-3.4 ppm {row[label]['residual_to_noise_1.0_3.4_ppm']:.2f}), "
                    f"tNAA/tCr {row[label]['tnaa_to_tcr']:.2f}, "
                    f"Glx/tCr {row[label]['glx_to_tcr']:.2f}, "
                    f"lag-1 {r.residual_whiteness['single']['lag1_acf']:.2f} "
                    f"(correct model {r.residual_whiteness['single']['lag1_acf_expected']:.2f}), "
                    f"Ljung-Box p {r.residual_whiteness['single']['p_value']:.1e}, CPU {cpu_s:.2f} s",
                    flush=True,
                )
                # the echo-removed figure only where an echo was found
                if args.plot and (label == "default" or (label == "echo_removed" and echo.bands)):
                    tag = "" if label == "default" else " echo removed"
                    tag += " free" if args.lineshape == "free" else ""
                    plot(r, name, args.plot, tag)
            if "null_default" in row:
                print(f"{name} null_default (correct model, white noise): {row['null_default']}")
            out[name] = row
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
