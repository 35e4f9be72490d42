"""Which TE1/TE2 split fits the real PRESS spectra? (issue 9, gabaapp.lcm.timing)

The headers give TE but not its split; the basis assumes TE1 = 10 ms. For each real spectrum
of bench_lcm_realdata.py (gabaapp's own pre-processing with the water reference where there is
one, then the opt-in spurious-echo removal), the default single-spectrum fit is repeated with
the PRESS basis (all bundled spin systems) of each TE1 on a grid (te1_profile), and the
residual SD / noise SD, its whiteness, the residual power at 40-100 ms per 0.4 ppm band, tNAA/tCr,
Glx/tCr and PE/tCr are written to benchmarks/results/lcm_te1_profile.json.

Choice and check: the split is a property of the protocol. It is chosen on the tuning
spectra (Siemens: in-sample, the only Siemens scan; Philips: sub-01) and applied to the
held-out Philips sub-02 (same protocol), whose own profile is recorded only as a check.
`--null N` adds N parametric-bootstrap fits (a correct model + white noise) at the chosen
split; `--plot DIR` saves the fits at the chosen split.

    .venv/bin/python benchmarks/bench_lcm_te1_profile.py [--null 20] [--plot docs/figures]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_lcm_realdata import (
    HELD_OUT,
    REAL,
    REPO,
    load,
    mid_time_power_by_band,
    null_fits,
    plot,
    preprocessed,
    ratio_crlb,
    run_context,
)

from gabaapp.config import LcmConfig
from gabaapp.lcm.fit import fit_spectrum
from gabaapp.lcm.noise import noise_sd
from gabaapp.lcm.timing import press_basis, te1_profile
from gabaapp.preproc.echo import remove_late_echo

RESULTS = REPO / "benchmarks" / "results" / "lcm_te1_profile.json"
GRID_MS = {
    30.0: (6.0, 8.0, 10.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 20.0),
    35.0: (6.0, 8.0, 10.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.5, 20.0, 22.0),
}
# Which tuning spectrum chooses the split of each spectrum (the held-out one takes sub-01's).
CHOSEN_ON = {
    "siemens_rda": "siemens_rda",
    "philips_sdat": "philips_sdat",
    "philips_sdat_sub02": "philips_sdat",
}


def row(r, acq) -> dict[str, object]:
    """Return the JSON row of one fit."""
    a = r.amplitudes
    tcr = a["Cr"] + a["PCr"]
    sel = (r.ppm >= 1.0) & (r.ppm <= 3.4)
    w = r.residual_whiteness["single"]
    return {
        "residual_to_noise": r.residual_to_noise["single"],
        "residual_to_noise_1.0_3.4_ppm": float(
            np.sqrt(np.mean(np.abs(r.residual["single"][sel]) ** 2) / 2) / r.noise_sd["single"]
        ),
        "lag1_acf": w["lag1_acf"],
        "lag1_acf_expected": w["lag1_acf_expected"],
        "ljung_box_p": w["p_value"],
        "residual_power_40_100_ms_by_band": mid_time_power_by_band(r, acq.f0_mhz),
        "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
        "tnaa_to_tcr_crlb": ratio_crlb(r, ("NAA", "NAAG"), ("Cr", "PCr")),
        "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
        "glx_to_tcr_crlb": ratio_crlb(r, ("Glu", "Gln"), ("Cr", "PCr")),
        "pe_to_tcr": a["PE"] / tcr,
        "lorentz_hz": r.lorentz_hz,
        "gauss_hz": r.gauss_hz,
        "converged": r.converged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null", type=int, default=0, help="bootstrap fits at the choice")
    parser.add_argument("--plot", type=Path, default=None, help="folder for figures")
    args = parser.parse_args(argv)
    config = LcmConfig(include_mm=True)
    out: dict[str, object] = {
        "data": "gabaapp pre-processing (water reference where present) + echo removal",
        **run_context(),
        "chosen_on": CHOSEN_ON,
    }
    chosen: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            _, acq, _ = load(name, fmt, files, Path(tmp))
            x, _ = preprocessed(name, fmt, Path(tmp))
            x, _ = remove_late_echo(x, acq, noise_sd(x, acq, config.noise_ppm_ranges))
            grid = GRID_MS[round(acq.te_s * 1e3, 1)]
            t0 = time.process_time()
            prof = te1_profile(x, acq, grid, config=config)
            cpu_s = time.process_time() - t0
            res: dict[str, object] = {
                "te_ms": prof.te_ms,
                "profile_cpu_seconds": cpu_s,
                "own_best_te1_ms": prof.best_te1_ms,
                "own_best_at_grid_edge": prof.at_grid_edge,
                "by_te1_ms": {
                    f"{t:g}": row(r, acq) for t, r in zip(prof.te1_ms, prof.fits, strict=True)
                },
            }
            for t, r in zip(prof.te1_ms, prof.fits, strict=True):
                print(
                    f"{name} TE1 {t:g} ms: residual/noise {r.residual_to_noise['single']:.3f}, "
                    f"lag-1 {r.residual_whiteness['single']['lag1_acf']:.2f}, "
                    f"tNAA/tCr {res['by_te1_ms'][f'{t:g}']['tnaa_to_tcr']:.3f}, "
                    f"Glx/tCr {res['by_te1_ms'][f'{t:g}']['glx_to_tcr']:.3f}",
                    flush=True,
                )
            if CHOSEN_ON[name] == name:
                chosen[name] = round(prof.best_te1_ms, 1)
            te1 = chosen[CHOSEN_ON[name]]
            basis = press_basis(acq, te1)
            t0 = time.process_time()
            r = fit_spectrum(x, acq, basis, basis.names, config)
            fit_cpu = time.process_time() - t0
            res["chosen_te1_ms"] = te1
            res["at_chosen_te1"] = {**row(r, acq), "cpu_seconds": fit_cpu}
            print(
                f"{name}: own best TE1 {prof.best_te1_ms:.1f} ms; at the chosen {te1:.1f} ms "
                f"(chosen on {CHOSEN_ON[name]}): residual/noise "
                f"{r.residual_to_noise['single']:.3f}, lag-1 "
                f"{r.residual_whiteness['single']['lag1_acf']:.2f} "
                f"(correct model {r.residual_whiteness['single']['lag1_acf_expected']:.2f}), "
                f"CPU {fit_cpu:.2f} s",
                flush=True,
            )
            if args.null:
                res["null_at_chosen_te1"] = null_fits(r, x, acq, basis, config, args.null)
                print(f"{name} null: {res['null_at_chosen_te1']}", flush=True)
            if args.plot:
                plot(r, name, args.plot, f" preprocessed TE1 {te1:.1f} ms")
            out[name] = res
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
