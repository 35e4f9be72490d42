"""Basis simulation speed, peak memory and cached-basis loading time (issue 4).

Measures, in one run on the same machine:
* the full default basis (paper preset: Cr, GABA, Gln, Glu, NAA; OFF and ON; shaped 5 ms Mao
  refocusing and 20 ms editing pulses; 8 x 8 grid; 4096 points): best of `--repeats`, target <= 5 s;
* all bundled metabolites (16), target <= 30 s;
* peak memory of one default-basis simulation (tracemalloc: numpy allocations) and process RSS;
* loading a cached basis (complex128 npz, 16 metabolites) and the bundled default: best of 20,
  target <= 50 ms;
* speed-up of the vectorised engine over the loop-based reference (gabaapp.physics.reference)
  side by side on the same case (default: Glu, full default sequence, pathway selection).
Result: benchmarks/results/physics_basis.json.

    .venv/bin/python benchmarks/bench_physics_basis.py [--repeats 3] [--reference-metabolite Glu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from gabaapp.constants import METABOLITES
from gabaapp.physics.basis import default_basis, load_basis, save_basis, simulate_basis
from gabaapp.physics.megapress import simulate_group
from gabaapp.physics.reference import simulate_group_reference
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import available_metabolites, load_spin_system

RESULTS = Path(__file__).resolve().parent / "results" / "physics_basis.json"


def best_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-metabolite", default="Glu")
    parser.add_argument("--reference-grid", type=int, default=8)
    args = parser.parse_args()
    seq = MegaPressSequence.preset("paper")
    simulate_basis(seq, ("Cr",))  # warm-up: imports, pulse bandwidth cache, BLAS init

    default_best, default_all = best_time(lambda: simulate_basis(seq, METABOLITES), args.repeats)
    every = available_metabolites()
    all_best, all_all = best_time(lambda: simulate_basis(seq, every), 1)

    tracemalloc.start()
    basis = simulate_basis(seq, every)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with tempfile.TemporaryDirectory() as tmp:
        path = save_basis(basis, Path(tmp) / "cached.npz")
        load_best, _ = best_time(lambda: load_basis(path), 20)
        size_cached = path.stat().st_size
    default_load_best, _ = best_time(default_basis, 20)

    # Vectorised vs loop reference, one coupled group, same sequence, side by side.
    ref_seq = seq.replace(grid_points=args.reference_grid)
    (group,) = [g for g in load_spin_system(args.reference_metabolite).groups if g.n_spins > 1][:1]
    with threadpool_limits(1, user_api="blas"):
        fast_best, _ = best_time(lambda: simulate_group(group, ref_seq), args.repeats)
        start = time.perf_counter()
        slow = simulate_group_reference(group, ref_seq)
        slow_time = time.perf_counter() - start
        fast = simulate_group(group, ref_seq)
    agreement = max(
        float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(fast, slow, strict=True)
    )

    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs ({platform.processor() or 'cpu'}),"
        f" load average {os.getloadavg()[0]:.1f} at the end",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "default_basis_s": {"best": default_best, "all": default_all, "target": 5.0},
        "all_metabolites_s": {"n": len(every), "best": all_best, "target": 30.0},
        "peak_traced_memory_mb": peak / 2**20,
        "max_rss_mb": rss_mb,
        "load_cached_basis_ms": {"best": 1000 * load_best, "bytes": size_cached, "target": 50.0},
        "load_default_basis_ms": {"best": 1000 * default_load_best},
        "reference": {
            "case": f"{args.reference_metabolite} ({group.n_spins} spins), paper preset, "
            f"{args.reference_grid}x{args.reference_grid} grid, pathway selection, ON+OFF",
            "vectorised_s": fast_best,
            "loop_reference_s": slow_time,
            "speed_up": slow_time / fast_best,
            "max_relative_difference": agreement,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
