"""Which basis and line shape for real 3 T PRESS? Side by side in one process (issue 9, cont.).

Fits the real spectra of bench_lcm_realdata.py (Siemens RDA TE 30, Philips SDAT TE 35 sub-01;
sub-02 held out, reported only) with the default LcmConfig (individual shifts, Gaussian MM
set) and
* the 16-metabolite basis the earlier log used (without PE, Glc, Asc),
* that basis plus each of PE, Glc, Asc alone, and all 19 bundled spin systems,
* all 19 with the free line shape (`lineshape="free"`),
* all 19 fitted over 1.0-3.6 ppm only (without PE's 3.98 ppm multiplet and the Philips echo
  band: which of PE's lines carries its amplitude?),
* all 19 with soft constraints on the minor metabolites' ratios to tCr (RATIO_PRIORS,
  `LcmConfig.amplitude_priors`; literature values, not fitted to these spectra), and with
  their SDs x 2 and x 0.5,
* all 19 plus a Gaussian MM line at 3.21 ppm (FWHM 0.1 ppm; does PE stand in for a broad
  background there?), and all 19 simulated with TE1 = 6 and 14 ms instead of 10 ms (the split
  is not in the headers: does PE stand in for a timing error?),
* all 19 plus LCModel's "-CrCH2" column (a negative Cr CH2 singlet at 3.913 ppm, amplitude
  >= 0: lets the in vivo CH2/CH3 ratio of creatine fall below 2:3; probe, not default),
and reports residual SD / noise SD over 1.0-4.2 and 1.0-3.4 ppm, tNAA/tCr and Glx/tCr with
their CRLBs, the added metabolites' amplitude / tCr and CRLB %, NAA and Cr CRLB %, and the CPU
time of each fit. Result: benchmarks/results/lcm_press_basis.json.

    .venv/bin/python benchmarks/bench_lcm_press_basis.py
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import gabaapp.lcm.fit as lcm_fit
from gabaapp.config import LcmConfig
from gabaapp.lcm.fit import fit_spectrum
from gabaapp.lcm.mm import MMComponent
from gabaapp.lcm.timing import press_basis, press_sequence
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import spin_system_from_dict
from gabaapp.spectra import Basis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lcm_realdata import HELD_OUT, REAL, load, ratio_crlb, sub_band_ratio  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lcm_press_basis.json"
ADDED = ("PE", "Glc", "Asc")


def subset(basis: Basis, names: tuple[str, ...]) -> Basis:
    """Return the rows `names` of `basis`."""
    idx = [basis.names.index(n) for n in names]
    return Basis(
        names, basis.off[idx], basis.on[idx], basis.acquisition, basis.sequence_hash + str(names)
    )


# Prior ratios to tCr (Cr + PCr, ~8-10 mM in adult brain), SD = the physiological spread:
# PE ~1-2 mM (0.10-0.25 x tCr), Asc 1.1 +- 0.3 mM (Terpstra et al., NMR Biomed 23:227,
# 2010), glucose ~0.5-1.5 mM at normal plasma glucose. Not fitted to these spectra.
TCR = ("Cr", "PCr")
RATIO_PRIORS = (("PE", TCR, 0.15, 0.05), ("Asc", TCR, 0.12, 0.04), ("Glc", TCR, 0.12, 0.05))


CR_CH2 = {
    "name": "CrCH2",
    "subsystems": [{"label": "CH2", "spins": [{"label": "CH2", "ppm": 3.913, "n": 2}]}],
}


def press(acq, te1_ms: float = 10.0) -> MegaPressSequence:
    """Return the PRESS sequence of `acq` (TE split as TE1 = te1_ms, TE2 = TE - TE1)."""
    return press_sequence(acq, te1_ms)


def basis_with_te1(acq, te1_ms: float) -> Basis:
    """Return all bundled spin systems simulated with TE1 = te1_ms."""
    return press_basis(acq, te1_ms)


@contextlib.contextmanager
def extra_mm(*components: MMComponent):
    """Fit with `components` added to the default MM set (probe only)."""
    old = lcm_fit.MM_COMPONENTS
    lcm_fit.MM_COMPONENTS = tuple(old) + components
    try:
        yield
    finally:
        lcm_fit.MM_COMPONENTS = old


def with_minus_cr_ch2(basis: Basis, acq, te1_ms: float = 10.0) -> Basis:
    """Return `basis` plus a negative Cr CH2 singlet column "-CrCH2" (LCModel's correction)."""
    neg = -simulate_spin_system(spin_system_from_dict(CR_CH2), press(acq, te1_ms))[0]
    off = np.vstack([basis.off, neg])
    return Basis(basis.names + ("-CrCH2",), off, off, basis.acquisition, "-CrCH2")


def row(r, cpu_s: float) -> dict[str, object]:
    """Return the JSON row of one fit."""
    a = r.amplitudes
    tcr = a["Cr"] + a["PCr"]
    finite = {k: (v if np.isfinite(v) else None) for k, v in r.crlb_percent.items()}
    return {
        "residual_to_noise": r.residual_to_noise["single"],
        "residual_to_noise_1.0_3.4_ppm": sub_band_ratio(r, 1.0, 3.4),
        "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
        "tnaa_to_tcr_crlb": ratio_crlb(r, ("NAA", "NAAG"), ("Cr", "PCr")),
        "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
        "glx_to_tcr_crlb": ratio_crlb(r, ("Glu", "Gln"), ("Cr", "PCr")),
        "tcho_to_tcr": (a["Cho"] + a["GPC"] + a["PCh"]) / tcr,
        "added_to_tcr": {n: a[n] / tcr for n in (*ADDED, "-CrCH2", "MM32") if n in a},
        "added_crlb_percent": {n: finite[n] for n in ADDED if n in a},
        "crlb_percent": {n: finite[n] for n in ("NAA", "Cr", "PCr", "Glu", "Cho", "GPC", "mI")},
        "converged": r.converged,
        "flags": list(r.flags),
        "cpu_seconds": cpu_s,
    }


def main() -> int:
    default = LcmConfig(include_mm=True)
    out: dict[str, object] = {
        "machine": "2-core CPU sandbox, shared with other jobs",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average_start": list(os.getloadavg()),
        "held_out": sorted(HELD_OUT),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            fid, acq, full = load(name, fmt, files, Path(tmp))
            base = tuple(n for n in full.names if n not in ADDED)
            variants = {"16 (no PE, Glc, Asc)": (subset(full, base), default)}
            for extra in ADDED:
                variants[f"16 + {extra}"] = (subset(full, base + (extra,)), default)
            variants["19 (all bundled)"] = (full, default)
            variants["19, free line shape"] = (full, replace(default, lineshape="free"))
            variants["19 + ratio priors"] = (full, replace(default, amplitude_priors=RATIO_PRIORS))
            for f in (2.0, 0.5):
                scaled = tuple((n, refs, r, sd * f) for n, refs, r, sd in RATIO_PRIORS)
                variants[f"19 + ratio priors, SD x {f:g}"] = (
                    full,
                    replace(default, amplitude_priors=scaled),
                )
            variants["19, fit 1.0-3.6 ppm"] = (full, replace(default, ppm_range=(1.0, 3.6)))
            variants["19 + -CrCH2"] = (with_minus_cr_ch2(full, acq), default)
            variants["19 + MM32 Gaussian"] = (full, default)
            for te1 in (6.0, 14.0):
                variants[f"19, TE1 {te1:g} ms"] = (basis_with_te1(acq, te1), default)
            rows = {}
            mm32 = MMComponent("MM32", 3.21, 0.1, ("single",))
            for label, (basis, cfg) in variants.items():
                t0 = time.process_time()
                with extra_mm(mm32) if "MM32" in label else contextlib.nullcontext():
                    r = fit_spectrum(fid, acq, basis, basis.names, cfg)
                rows[label] = row(r, time.process_time() - t0)
                x = rows[label]
                added = {k: round(v, 3) for k, v in x["added_to_tcr"].items()}
                print(
                    f"{name} {label}: {x['residual_to_noise']:.3f} "
                    f"(1.0-3.4: {x['residual_to_noise_1.0_3.4_ppm']:.3f}) "
                    f"tNAA/tCr {x['tnaa_to_tcr']:.3f} Glx/tCr {x['glx_to_tcr']:.3f} "
                    f"added {added} "
                    f"CPU {x['cpu_seconds']:.2f}",
                    flush=True,
                )
            out[name] = rows
    out["load_average_end"] = list(os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
