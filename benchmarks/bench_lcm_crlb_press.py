"""CRLB versus empirical SD for single (PRESS) spectra, with and without individual shifts.

Basis: gabaapp.physics PRESS (MEGA-PRESS sequence with editing off), TE 30 ms, 123.2 MHz,
2000 Hz, 2048 points, all bundled metabolites (19 since PE, Glc and Asc were added). One noiseless spectrum (typical brain
concentrations, Voigt 4/3 Hz, 3 Hz shift, 0.4 rad phase) plus n independent noise draws at
SNR 100 (max |spectrum| / noise SD), fitted with `fit_spectrum` and the default LcmConfig
(individual shifts on for single spectra, prior SD 0.004 ppm) and with individual_shifts
"off". Reports empirical SD / mean CRLB and bias for the metabolites whose CRLB is below 20 %,
and the CPU time per fit. Result: benchmarks/results/lcm_crlb_press.json.

    .venv/bin/python benchmarks/bench_lcm_crlb_press.py [n_realisations] [voigt|free]

With `free` both fits also use the free line-shape kernel (LcmConfig.lineshape); the result
goes to lcm_crlb_press_free.json. With a third argument `priors` both fits also use the
soft constraints of bench_lcm_press_basis.RATIO_PRIORS (PE, Asc, Glc to tCr; the truth here,
PE 0.17, Asc and Glc 0.11 x tCr, sits 0.1-0.4 prior SDs from their means); the result goes
to lcm_crlb_press[_free]_priors.json.

    .venv/bin/python benchmarks/bench_lcm_crlb_press.py 200 voigt priors
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from gabaapp.config import LcmConfig  # noqa: E402
from gabaapp.lcm.fit import fit_spectrum  # noqa: E402
from gabaapp.physics.megapress import simulate_spin_system  # noqa: E402
from gabaapp.physics.sequence import MegaPressSequence  # noqa: E402
from gabaapp.physics.spins import available_metabolites, load_spin_system  # noqa: E402
from gabaapp.spectra import fid_to_spectrum  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lcm_crlb_press.json"
# Typical adult brain concentrations, mM (mid-range of Govindaraju et al., NMR Biomed 13:129,
# 2000, Table 1; Cho, GPC, PCh split the ~1.5 mM of choline compounds). PE, Glc, Asc (added
# for issue 9): about 1 mM each (Asc 1.1 mM, Terpstra et al., NMR Biomed 23:227, 2010; brain
# glucose ~1 mM at normal plasma glucose; PE taken at 1.5 mM, the order of its published values).
CONC = {
    "Asp": 2.0, "Cho": 0.3, "Cr": 5.0, "GABA": 1.5, "Gln": 3.0, "Glu": 9.0, "GPC": 0.8,
    "GSH": 2.0, "Lac": 0.5, "mI": 6.0, "NAA": 10.0, "NAAG": 1.0, "PCh": 0.5, "PCr": 4.0,
    "sI": 0.3, "Tau": 1.5, "PE": 1.5, "Glc": 1.0, "Asc": 1.0,
}  # fmt: skip
SNR = 100.0


def main(n: int = 200, lineshape: str = "voigt", priors: str = "") -> None:
    seq = MegaPressSequence.for_te(
        30.0, editing=False, f0_mhz=123.2, spectral_width_hz=2000.0, n_points=2048
    )
    names = available_metabolites()
    basis = np.array([simulate_spin_system(load_spin_system(m), seq)[0] for m in names])
    acq = seq.acquisition()
    conc = np.array([CONC[m] for m in names])
    t = acq.time_axis()
    factor = np.exp((2j * np.pi * 3.0 - np.pi * 4.0) * t - (np.pi * 3.0 * t) ** 2 / (4 * np.log(2)))
    clean = (conc @ basis) * factor * np.exp(0.4j)
    sd_t = np.abs(fid_to_spectrum(clean)).max() / SNR / np.sqrt(acq.n_points)
    out: dict[str, object] = {
        "n_realisations": n,
        "lineshape": lineshape,
        "snr_peak_over_noise_sd": SNR,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": list(os.getloadavg()),
    }
    prior = ()
    if priors == "priors":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_lcm_press_basis import RATIO_PRIORS

        prior = RATIO_PRIORS
        out["amplitude_priors"] = [list(p) for p in prior]
    configs = {
        "individual_shifts": LcmConfig(lineshape=lineshape, amplitude_priors=prior),
        "off": LcmConfig(lineshape=lineshape, individual_shifts="off", amplitude_priors=prior),
    }
    for label, config in configs.items():
        rng = np.random.default_rng(78)
        amps, crlbs, cpu = [], [], []
        for _ in range(n):
            fid = clean + sd_t * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
            t0 = time.process_time()
            r = fit_spectrum(fid, acq, basis, names, config)
            cpu.append(time.process_time() - t0)
            amps.append([r.amplitudes[m] for m in names])
            crlbs.append([r.crlb_abs[m] for m in names])
        amps, crlbs = np.array(amps), np.array(crlbs)
        sd, mean_crlb = amps.std(axis=0, ddof=1), crlbs.mean(axis=0)
        keep = [i for i, m in enumerate(names) if mean_crlb[i] < 0.2 * conc[i]]
        row = {
            "sd_over_crlb": {names[i]: float(sd[i] / mean_crlb[i]) for i in keep},
            "mean_crlb_percent": {names[i]: float(100 * mean_crlb[i] / conc[i]) for i in keep},
            "bias_percent": {
                names[i]: float(100 * (amps[:, i].mean() / conc[i] - 1)) for i in keep
            },
            "cpu_s_median": float(np.median(cpu)),
            "cpu_s_p95": float(np.percentile(cpu, 95)),
        }
        out[label] = row
        print(label, f"CPU median {row['cpu_s_median']:.3f} s (p95 {row['cpu_s_p95']:.3f})")
        for m in row["sd_over_crlb"]:
            print(
                f"  {m}: SD/CRLB {row['sd_over_crlb'][m]:.3f}, CRLB "
                f"{row['mean_crlb_percent'][m]:.2f} %, bias {row['bias_percent'][m]:+.2f} %"
            )
    results = RESULTS if lineshape == "voigt" else RESULTS.with_name("lcm_crlb_press_free.json")
    if prior:
        results = results.with_name(results.stem + "_priors.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, *sys.argv[2:4])
