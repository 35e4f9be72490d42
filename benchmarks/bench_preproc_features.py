"""Throughput of gabaapp.preproc.features.network_input (OFF/ON FIDs -> [N, 4, 2048]).

Torch complex64 batches of 1024 OFF/ON pairs (the simulator's use) for several samplings, with
B0 alignment, 2 threads; and numpy complex128 latency for one measured spectrum. The cost
grows with n_points (Bluestein FFTs of length >= n_points + 2047), so a simulator may feed
FIDs at a lower spectral width; any sampling covering 0.75-4.75 ppm is accepted.
The grid-matched sampling (`grid_acquisition`: 1767 points at ~863 Hz, the simulator's
`sampling="grid"`) is timed twice in the same run: its one-FFT path and, forced, the chirp-z
path on the same FIDs.
Result: benchmarks/results/preproc_features.json.

    .venv/bin/python benchmarks/bench_preproc_features.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gabaapp.preproc.features import grid_acquisition, network_input
from gabaapp.spectra import Acquisition

RESULTS = Path(__file__).resolve().parent / "results" / "preproc_features.json"
SAMPLINGS = {
    "4096 pts, 2000 Hz (paper simulations)": Acquisition(123.23, 1 / 2000, 4096),
    "4096 pts, 2500 Hz, centre 3.0 ppm (FID-A basis)": Acquisition(
        123.23, 4e-4, 4096, centre_ppm=3.0
    ),
    "2048 pts, 2000 Hz (typical 3T scan)": Acquisition(123.23, 1 / 2000, 2048),
    "1024 pts, 1000 Hz, centre 2.75 ppm (decimated)": Acquisition(
        123.23, 1e-3, 1024, centre_ppm=2.75
    ),
    "1767 pts, 863 Hz, grid-matched (one FFT)": grid_acquisition(123.23, 2.048),
}


def _batch(acq: Acquisition, n: int, rng) -> np.ndarray:
    t = acq.time_axis()
    d = rng.uniform(-0.1, 0.1, (n, 1))
    hz = lambda ppm: (ppm + d - acq.centre_ppm) * acq.f0_mhz  # noqa: E731
    return np.exp(2j * np.pi * hz(2.01) * t - np.pi * 4 * t) + 0.7 * np.exp(
        2j * np.pi * hz(3.02) * t - np.pi * 4 * t
    )


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    out = {"batch": 1024, "threads": 2, "torch_complex64": {}}
    for name, acq in SAMPLINGS.items():
        x = torch.from_numpy(_batch(acq, 1024, rng)).to(torch.complex64)
        best = _best(lambda x=x, acq=acq: network_input(x, x, acq), args.repeats)
        out["torch_complex64"][name] = {
            "seconds_per_batch": round(best, 4),
            "spectra_per_s": round(1024 / best),
        }
    acq = SAMPLINGS["1767 pts, 863 Hz, grid-matched (one FFT)"]
    x = torch.from_numpy(_batch(acq, 1024, rng)).to(torch.complex64)
    best = _best(lambda: network_input(x, x, acq, transform="chirp-z"), args.repeats)
    out["torch_complex64"]["1767 pts, 863 Hz, grid-matched, chirp-z forced"] = {
        "seconds_per_batch": round(best, 4),
        "spectra_per_s": round(1024 / best),
    }
    # The simulator's clean copy: the shift measured on the noisy spectrum is passed in, so no
    # peak search runs (one FFT fewer per OFF/ON pair).
    acq = SAMPLINGS["4096 pts, 2000 Hz (paper simulations)"]
    x = torch.from_numpy(_batch(acq, 1024, rng)).to(torch.complex64)
    _, shift = network_input(x, x, acq, return_shift_hz=True)
    best = _best(lambda: network_input(x, x, acq, shift_hz=shift), args.repeats)
    out["torch_complex64"]["4096 pts, 2000 Hz, shift given (clean copy)"] = {
        "seconds_per_batch": round(best, 4),
        "spectra_per_s": round(1024 / best),
    }
    one = _batch(SAMPLINGS["2048 pts, 2000 Hz (typical 3T scan)"], 1, rng)
    acq = SAMPLINGS["2048 pts, 2000 Hz (typical 3T scan)"]
    out["numpy_one_spectrum_ms"] = round(
        1000 * _best(lambda: network_input(one, one, acq), args.repeats), 2
    )
    out["machine"] = f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}"
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
