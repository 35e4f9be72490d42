"""CRLB versus the empirical SD of the fitted amplitudes over 200 noise realisations (issue 9).

Basis: gabaapp.physics Siemens preset (TE 68 MEGA-PRESS, 2048 points). One noiseless spectrum
(fixed concentrations, Voigt 4/3 Hz, 3 Hz shift, 0.4 rad phase) plus 200 independent ON/OFF
noise draws (seeded), fitted jointly; the ratio empirical SD / mean CRLB should be 1 (issue:
within 20 %). Also reports bias. Result: benchmarks/results/lcm_crlb.json.

    .venv/bin/python benchmarks/bench_lcm_crlb.py [n_realisations] [voigt|free]

With `free` (LcmConfig.lineshape) the result goes to lcm_crlb_free.json.
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
from bench_lcm_speed import make_basis  # noqa: E402

from gabaapp.config import LcmConfig  # noqa: E402
from gabaapp.constants import METABOLITES  # noqa: E402
from gabaapp.lcm.fit import fit_megapress  # noqa: E402
from gabaapp.spectra import fid_to_spectrum  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lcm_crlb.json"
CONC = np.array([8.0, 1.5, 3.0, 9.0, 10.0])  # Cr, GABA, Gln, Glu, NAA (mM)
SNR = 100.0


def main(n: int = 200, lineshape: str = "voigt") -> None:
    config = LcmConfig(lineshape=lineshape)
    results = RESULTS if lineshape == "voigt" else RESULTS.with_name("lcm_crlb_free.json")
    basis = make_basis()
    acq = basis.acquisition
    t = acq.time_axis()
    factor = np.exp((2j * np.pi * 3.0 - np.pi * 4.0) * t - (np.pi * 3.0 * t) ** 2 / (4 * np.log(2)))
    factor = factor * np.exp(0.4j)
    off0, on0 = (CONC @ basis.off) * factor, (CONC @ basis.on) * factor
    sd_t = np.abs(fid_to_spectrum(off0)).max() / SNR / np.sqrt(acq.n_points)
    rng = np.random.default_rng(77)
    amps, crlbs = [], []
    for _ in range(n):
        off = off0 + sd_t * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
        on = on0 + sd_t * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
        r = fit_megapress(off, on - off, acq, basis, config)
        amps.append(r.amplitude_array)
        crlbs.append([r.crlb_abs[m] for m in METABOLITES])
    amps, crlbs = np.array(amps), np.array(crlbs)
    sd = amps.std(axis=0, ddof=1)
    out = {
        "n_realisations": n,
        "lineshape": lineshape,
        "snr_peak_over_noise_sd": SNR,
        "empirical_sd": dict(zip(METABOLITES, sd.tolist(), strict=True)),
        "mean_crlb": dict(zip(METABOLITES, crlbs.mean(axis=0).tolist(), strict=True)),
        "sd_over_crlb": dict(zip(METABOLITES, (sd / crlbs.mean(axis=0)).tolist(), strict=True)),
        "mean_crlb_percent": dict(
            zip(METABOLITES, (100 * crlbs.mean(axis=0) / CONC).tolist(), strict=True)
        ),
        "bias_percent": dict(
            zip(METABOLITES, (100 * (amps.mean(axis=0) / CONC - 1)).tolist(), strict=True)
        ),
        "date": time.strftime("%Y-%m-%d"),
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=1) + "\n")
    for m in METABOLITES:
        print(
            f"{m}: SD/CRLB {out['sd_over_crlb'][m]:.3f}, CRLB {out['mean_crlb_percent'][m]:.2f} %,"
            f" bias {out['bias_percent'][m]:+.2f} %"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, *sys.argv[2:3])
