"""Full MEGA-PRESS pre-processing time of a 32-coil x 320-transient scan with water reference.

Scan: 32 coils x 160 dynamics x 2 edit conditions (320 transients) x 2048 points, complex64,
plus a 32-coil x 2-transient water reference, synthesised with known drift, phase jitter,
6 corrupted transients and residual water (tests/unit/test_preproc_synth.py). Times
`gabaapp.preproc.chain.preprocess_megapress` with the default PreprocConfig (WSVD coil
combination, Klose ECC, robust spectral registration, outlier rejection, HLSVD water removal,
ON-to-OFF alignment, phasing, referencing, QC), interleaved repeats, best and median.
Target (issue 5): <= 2 s on 2 CPU cores. Result: benchmarks/results/preproc_chain.json.

    .venv/bin/python benchmarks/bench_preproc_chain.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from test_preproc_synth import make_scan  # noqa: E402

from gabaapp.preproc.chain import preprocess_megapress  # noqa: E402
from gabaapp.spectra import FIDs  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "preproc_chain.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scan = make_scan(np.random.default_rng(0), n_coils=32, n_dyn=160, snr=20.0, n_corrupted=6)
    metab = FIDs(scan.metab.data.astype(np.complex64), scan.metab.dims, scan.metab.acquisition)
    water = FIDs(scan.water.data.astype(np.complex64), scan.water.dims, scan.water.acquisition)
    del scan
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = preprocess_megapress(metab, water)
        times.append(time.perf_counter() - t0)
    out = {
        "scan": "32 coils x 160 dyn x 2 edit x 2048 points complex64 + 32 x 2 water reference",
        "repeats": args.repeats,
        "seconds_best": round(min(times), 3),
        "seconds_median": round(float(np.median(times)), 3),
        "seconds_all": [round(t, 3) for t in times],
        "target_seconds": 2.0,
        "n_rejected": result.qc["n_rejected"],
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
