"""Loading a typical MEGA-PRESS NIfTI-MRS file versus merely decompressing it (issue 3).

Writes a 32-coil x 320-transient (160 per edit condition) x 2048-point complex64 .nii.gz made
by gabaapp.testing (noisy FIDs compress like real ones, ~0.9), then times, side by side and
interleaved, (a) reading + gunzipping the file bytes with zlib and (b)
`gabaapp.io.nifti_mrs.load_nifti_mrs(path, require_edit=True)`. Reports the best of N runs of
each and their ratio; the target is ratio <= 1.2. Result: benchmarks/results/io_load.json.

    .venv/bin/python benchmarks/bench_io_load.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.spectra import Acquisition
from gabaapp.testing import make_mega_fids, write_mega_nifti_mrs

RESULTS = Path(__file__).resolve().parent / "results" / "io_load.json"


def decompress(path: Path) -> int:
    """Read the file and gunzip it in one go: the practical lower bound of any loader."""
    return len(zlib.decompress(path.read_bytes(), 31))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    acq = Acquisition(f0_mhz=123.2, dwell_s=5e-4, n_points=2048, te_s=0.068)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sub-01_acq-megapress_svs.nii.gz"
        fids = make_mega_fids(
            np.random.default_rng(0), n_coils=32, n_transients=160, acquisition=acq
        )
        write_mega_nifti_mrs(path, fids, edit_condition=("ON", "OFF"))
        del fids
        size_mb = path.stat().st_size / 1e6
        raw_mb = len(gzip.decompress(path.read_bytes())) / 1e6
        t_dec, t_load = [], []
        for _ in range(args.repeats):  # interleaved so both see the same machine load
            t0 = time.perf_counter()
            decompress(path)
            t1 = time.perf_counter()
            loaded = load_nifti_mrs(path, require_edit=True)
            t2 = time.perf_counter()
            del loaded
            t_dec.append(t1 - t0)
            t_load.append(t2 - t1)
    result = {
        "file": "32 coils x 160 transients x 2 edit x 2048 points, complex64, .nii.gz",
        "file_mb": round(size_mb, 1),
        "uncompressed_mb": round(raw_mb, 1),
        "repeats": args.repeats,
        "decompress_s_best": round(min(t_dec), 3),
        "load_s_best": round(min(t_load), 3),
        "ratio_best": round(min(t_load) / min(t_dec), 3),
        "ratio_median": round(float(np.median(t_load) / np.median(t_dec)), 3),
        "decompress_s_all": [round(t, 3) for t in t_dec],
        "load_s_all": [round(t, 3) for t in t_load],
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
