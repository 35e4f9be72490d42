"""Calibration of the fit's residual whiteness test on correct models (gabaapp.lcm.whiteness).

N synthetic single spectra (the 3-metabolite multiplet basis of tests/unit/test_lcm_fit.py,
Voigt 5 / 2 Hz, shift -2 Hz, phase 0.3 rad, white noise SD 0.05), each fitted with the right
basis: the Ljung-Box p-values of the residual against the autocorrelation a correct model
leaves (what the fit reports) and against zero (a plain test), with the rejection rates at
0.05 and 0.01 (nominal if calibrated) and the mean lag-1 autocorrelation against the mean
expected one. Writes benchmarks/results/lcm_whiteness.json.

    .venv/bin/python benchmarks/bench_lcm_whiteness.py [N]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "unit"))

from test_lcm_fit import DATA_ACQ, LINES_OFF, multiplet_fid, voigt  # noqa: E402

from gabaapp.config import LcmConfig  # noqa: E402
from gabaapp.lcm.fit import fit_spectrum  # noqa: E402
from gabaapp.lcm.whiteness import whiteness  # noqa: E402

NAMES = ("Cr", "Glu", "NAA")
TRUTH = np.array([8.0, 9.0, 10.0])


def main(n: int = 60) -> int:
    fids = np.array([multiplet_fid(DATA_ACQ, LINES_OFF[m]) for m in NAMES])
    centred, plain, lag1, lag1_expected = [], [], [], []
    for seed in range(n):
        rng = np.random.default_rng(500 + seed)
        fid = (TRUTH @ fids) * voigt(DATA_ACQ, 5.0, 2.0, -2.0, 0.3)
        fid = fid + 0.05 * (rng.normal(size=2048) + 1j * rng.normal(size=2048))
        r = fit_spectrum(fid, DATA_ACQ, fids, NAMES, LcmConfig())
        w = r.residual_whiteness["single"]
        centred.append(w["p_value"])
        plain.append(whiteness(r.residual["single"])["p_value"])
        lag1.append(w["lag1_acf"])
        lag1_expected.append(w["lag1_acf_expected"])
    centred, plain = np.array(centred), np.array(plain)
    out = {
        "n_fits": n,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": list(os.getloadavg()),
        "reported_test": {
            "reject_at_0.05": float(np.mean(centred < 0.05)),
            "reject_at_0.01": float(np.mean(centred < 0.01)),
            "median_p": float(np.median(centred)),
        },
        "plain_test": {
            "reject_at_0.05": float(np.mean(plain < 0.05)),
            "reject_at_0.01": float(np.mean(plain < 0.01)),
            "median_p": float(np.median(plain)),
        },
        "mean_lag1_acf": float(np.mean(lag1)),
        "mean_lag1_acf_expected": float(np.mean(lag1_expected)),
    }
    print(json.dumps(out, indent=1))
    path = REPO / "benchmarks" / "results" / "lcm_whiteness.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
