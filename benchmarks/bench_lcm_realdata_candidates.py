"""What is left after eddy-current correction and the TE1 split? (issue 9, one change at a time)

Starting point: the real PRESS spectra of bench_lcm_realdata.py after gabaapp's own
pre-processing (Klose eddy-current correction with the water reference where there is one),
the opt-in spurious-echo removal, and the basis for the TE1 split chosen in
bench_lcm_te1_profile.py (Siemens 15.1 ms in-sample, Philips 14.2 ms chosen on sub-01). Each
variant changes one thing against that default fit; Philips sub-02 is held out (nothing here is
chosen on it). Writes residual SD / noise SD, lag-1 autocorrelation, residual power at 40-100
ms per 0.4 ppm band, tNAA/tCr, Glx/tCr, PE/tCr, MM amplitudes near 3-4 ppm and CPU to
benchmarks/results/lcm_realdata_candidates.json.

Variants: "free" line shape; LCModel's MM/lipid set; LCModel's -CrCH2 column; individual
shift prior 0.008 ppm; extra Lorentzian width per column (SD 1 Hz); fit window 1.0-4.0 ppm (a
diagnostic of the 4.0-4.2 ppm edge, not a model); Gaussian MM lines at 3.24 ppm (FWHM 0.16
ppm) and at 3.98 ppm (FWHM 0.36 ppm) (the positions and 7 T widths of Bell et al. 2024 from the
metabolite-nulled spectra of Povazan et al. 2015), and at 3.75 and 4.0 ppm (FWHM 0.1 ppm);
"water_lineshape": every basis FID multiplied by the non-Voigt part of the eddy-current
corrected water reference's magnitude (|water| / its fitted Voigt envelope), the metabolites'
B0 line shape measured on water (Philips only); "water_suppression_notch_W": every basis
spectrum multiplied by 1 - exp(-4 ln 2 ((ppm - 4.65) / W)^2), a Gaussian notch of FWHM W ppm at
water, a first approximation of the partial saturation that water-suppression pulses (CHESS,
Haase et al. 1985; VAPOR, Tkac et al. 1999) leave on resonances within ~1 ppm of water (Cr
CH2 3.92, mI 4.06, Glx alpha 3.75, PE/Asc ~4.0); the simulated basis assumes none. The
vendors' suppression bandwidths are not in the headers; W is a grid, not a fit.

    .venv/bin/python benchmarks/bench_lcm_realdata_candidates.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_lcm_press_basis import extra_mm, with_minus_cr_ch2
from bench_lcm_realdata import (
    HELD_OUT,
    REAL,
    REPO,
    SHARED,
    WATER,
    load,
    mid_time_power_by_band,
    preprocessed,
    run_context,
    sub_band_ratio,
)
from scipy.optimize import least_squares

import gabaapp.lcm.fit as lcm_fit
from gabaapp.config import LcmConfig
from gabaapp.constants import WATER_PPM
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.lcm.mm import MMComponent
from gabaapp.lcm.noise import noise_sd
from gabaapp.lcm.timing import press_basis
from gabaapp.preproc.echo import remove_late_echo
from gabaapp.preproc.eddy import eddy_current_phase
from gabaapp.spectra import Basis, fid_to_spectrum, spectrum_to_fid

RESULTS = REPO / "benchmarks" / "results" / "lcm_realdata_candidates.json"
NOTCH_FWHM_PPM = (0.6, 0.8, 1.0, 1.2)
TE1_MS = {"siemens_rda": 15.1, "philips_sdat": 14.2, "philips_sdat_sub02": 14.2}
_S = ("single",)


def water_lineshape(name: str, fmt: str, acq, out: Path) -> np.ndarray | None:
    """Return |water| / its fitted Voigt envelope (the non-Voigt part of the B0 line shape),
    [n_points], held at its last value where |water| < 50 noise SD; None without water."""
    if not WATER[name]:
        return None
    spec2nii = Path(sys.executable).with_name("spec2nii")
    cmd = [str(spec2nii), fmt, "-o", str(out), "-f", f"{name}_ref"]
    subprocess.run([*cmd, *(str(SHARED / f) for f in WATER[name])], check=True)
    w = load_nifti_mrs(out / f"{name}_ref.nii.gz").data.reshape(-1, acq.n_points).mean(axis=0)
    w = w * np.exp(-1j * eddy_current_phase(w, acq))
    env, t = np.abs(w), acq.time_axis()
    reliable = env > 50 * np.std(w[-200:])
    stop = int(np.argmin(reliable[1:])) + 1  # first point (index 0) is the scanner's half point
    sl = slice(1, stop)

    def voigt_log(p):
        return p[0] - np.pi * p[1] * t - (np.pi * p[2] * t) ** 2 / (4 * np.log(2))

    p = least_squares(
        lambda p: (np.log(env[sl]) - voigt_log(p)[sl]) * np.sqrt(env[sl]),
        [np.log(env[1]), 5.0, 3.0],
    ).x
    d = np.ones(acq.n_points)
    d[sl] = env[sl] / np.exp(voigt_log(p)[sl])
    d[0], d[stop:] = d[1], d[stop - 1]
    return d


def notched(basis: Basis, acq, fwhm_ppm: float) -> Basis:
    """Return `basis` with every spectrum multiplied by a Gaussian notch of FWHM `fwhm_ppm`
    at water (depth 1): signal near water partly saturated by the water suppression."""
    ppm = acq.ppm_axis()
    keep = 1.0 - np.exp(-4 * np.log(2) * ((ppm - WATER_PPM) / fwhm_ppm) ** 2)
    off = np.array([spectrum_to_fid(fid_to_spectrum(f) * keep) for f in basis.off])
    return Basis(basis.names, off, off, basis.acquisition, f"notch {fwhm_ppm}")


def main() -> int:
    config = LcmConfig(include_mm=True)
    variants = {
        "default": (config, None),
        "free": (replace(config, lineshape="free"), None),
        "mm_set_lcmodel": (replace(config, mm_set="lcmodel"), None),
        "minus_cr_ch2": (config, "crch2"),
        "individual_shift_sd_0.008": (replace(config, individual_shift_sd_ppm=0.008), None),
        "individual_width_sd_1hz": (replace(config, individual_width_sd_hz=1.0), None),
        "window_1.0_4.0_ppm": (replace(config, ppm_range=(1.0, 4.0)), None),
        "mm_3.24": (config, (MMComponent("MM324", 3.24, 0.16, _S),)),
        "mm_3.98": (config, (MMComponent("MM398", 3.98, 0.36, _S),)),
        "mm_3.75_4.0": (
            config,
            (MMComponent("MM375", 3.75, 0.1, _S), MMComponent("MM400", 4.0, 0.1, _S)),
        ),
        "water_lineshape": (config, "water"),
        **{f"water_suppression_notch_{w:g}ppm": (config, ("notch", w)) for w in NOTCH_FWHM_PPM},
    }
    out: dict[str, object] = {
        "te1_ms": TE1_MS,
        **run_context(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            _, acq, _ = load(name, fmt, files, Path(tmp))
            x, _ = preprocessed(name, fmt, Path(tmp))
            x, _ = remove_late_echo(x, acq, noise_sd(x, acq, config.noise_ppm_ranges))
            basis = press_basis(acq, TE1_MS[name])
            rows = {}
            for label, (cfg, extra) in variants.items():
                b, mm = basis, ()
                if extra == "crch2":
                    b = with_minus_cr_ch2(basis, acq, TE1_MS[name])
                elif isinstance(extra, tuple) and extra[0] == "notch":
                    b = notched(basis, acq, extra[1])
                elif extra == "water":
                    d = water_lineshape(name, fmt, acq, Path(tmp))
                    if d is None:
                        continue
                    b = Basis(basis.names, basis.off * d, basis.on * d, basis.acquisition, "w")
                elif extra:
                    mm = extra
                t0 = time.process_time()
                with extra_mm(*mm):
                    r = lcm_fit.fit_spectrum(x, acq, b, b.names, cfg)
                cpu_s = time.process_time() - t0
                a = r.amplitudes
                tcr = a["Cr"] + a["PCr"]
                w = r.residual_whiteness["single"]
                rows[label] = {
                    "residual_to_noise": r.residual_to_noise["single"],
                    "residual_to_noise_1.0_3.4_ppm": sub_band_ratio(r, 1.0, 3.4),
                    "lag1_acf": w["lag1_acf"],
                    "lag1_acf_expected": w["lag1_acf_expected"],
                    "ljung_box_p": w["p_value"],
                    "residual_power_40_100_ms_by_band": mid_time_power_by_band(r, acq.f0_mhz),
                    "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
                    "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
                    "pe_to_tcr": a["PE"] / tcr,
                    "mm_3_to_4_ppm_to_tcr": {k: v / tcr for k, v in a.items() if k[:3] == "MM3"},
                    "converged": r.converged,
                    "cpu_seconds": cpu_s,
                }
                print(
                    f"{name} {label}: residual/noise {r.residual_to_noise['single']:.3f}, "
                    f"lag-1 {w['lag1_acf']:.2f}, tNAA/tCr {rows[label]['tnaa_to_tcr']:.3f}, "
                    f"Glx/tCr {rows[label]['glx_to_tcr']:.3f}, "
                    f"PE/tCr {rows[label]['pe_to_tcr']:.2f}, CPU {cpu_s:.2f} s",
                    flush=True,
                )
            out[name] = rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
