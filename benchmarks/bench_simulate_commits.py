"""Grid-path synthesis throughput of the working tree against an earlier commit, side by side.

The compiled loops (gabaapp.simulate.fused, gabaapp.preproc.kernels) change together with the
generator, so old code cannot be loaded next to new code in one process (as
bench_simulate_throughput.py does for the pre-numba generator). Here each version runs in its
own child process, alternating: the commit's tree is extracted with `git archive` into a
temporary directory (nothing in the repository changes) and put first on PYTHONPATH. Each
child times `SpectrumGenerator.batch` (grid sampling, batch 1,024, all torch threads) for the
paper and default presets with and without the clean copy, 5 batches each after a warm-up,
and reports spectra/s (best, median of wall time) and spectra per CPU second of the process,
and a digest of one seeded batch (256 spectra, input and clean copy) per preset: equal digests
mean bit-identical values.

Usage: .venv/bin/python benchmarks/bench_simulate_commits.py [--commit fc91644] [--rounds 2]
Writes benchmarks/results/simulate_commits.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from commit_tree import export_commit, run_child

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "simulate_commits.json"
# main before the default preset's extra work was compiled (helper h1's compiled grid path)
BASE_COMMIT = "fc91644"


def child(repeats: int) -> None:
    """Time the gabaapp found on sys.path; print one JSON line."""
    from dataclasses import replace

    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_simulate_throughput import configs, load_basis

    import gabaapp
    from gabaapp.simulate import SpectrumGenerator

    basis, _ = load_basis()
    gens = {
        p: SpectrumGenerator(basis, replace(configs()[p], sampling="grid"))
        for p in ("paper", "default")
    }
    g = torch.Generator().manual_seed(0)
    for gen in gens.values():  # warm-up: numba compile or cache load, FFT plans, buffers
        gen.batch(1024, g)
        gen.batch(1024, g, with_clean=False)
    # the values: a digest of one seeded batch (input and clean copy) per preset, which
    # versions that claim the same values must share
    digests = {}
    for name, gen in gens.items():
        gen.reset()
        b = gen.batch(256, torch.Generator().manual_seed(11))
        data = b.x.numpy().tobytes() + b.clean.numpy().tobytes()
        digests[name] = hashlib.sha256(data).hexdigest()[:16]
    runs: dict = {}
    for _ in range(repeats):
        for name, gen in gens.items():
            for clean in (True, False):
                t0, c0 = time.perf_counter(), time.process_time()
                gen.batch(1024, g, with_clean=clean)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                key = f"{name}/{'with' if clean else 'without'}_clean"
                runs.setdefault(key, []).append((1024 / wall, 1024 / cpu))
    out = {}
    for key, r in runs.items():
        walls, cpus = sorted(x[0] for x in r), sorted(x[1] for x in r)
        out[key] = {
            "spectra_per_s_best": round(walls[-1]),
            "spectra_per_s_median": round(walls[len(walls) // 2]),
            "spectra_per_core_s": round(cpus[len(cpus) // 2]),
        }
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(
        json.dumps(
            {"code": gabaapp.__file__, "load_after": load, "batch_digests": digests, "runs": out}
        )
    )


def run_version(path: Path, repeats: int) -> dict:
    """Run the child with `path` first on PYTHONPATH; return its JSON."""
    return run_child(__file__, path, ["--repeats", str(repeats)], cwd=path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commit", default=BASE_COMMIT)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.repeats)
        return
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "base": args.commit,
        "head": head,
        "rounds": [],
    }
    with open("/proc/loadavg") as f:
        results["load_before"] = f.read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        base = export_commit(REPO, args.commit, Path(tmp) / "base")
        for _ in range(args.rounds):  # alternate, so both see the same load on average
            round_ = {}
            for tag, path in ((args.commit, base), ("working tree", REPO)):
                round_[tag] = run_version(path, args.repeats)
                for key, v in round_[tag]["runs"].items():
                    print(
                        f"{tag:13s} {key:24s} {v['spectra_per_s_best']:6d}/s best, "
                        f"{v['spectra_per_s_median']:6d} median, {v['spectra_per_core_s']:6d} "
                        "per core-s",
                        flush=True,
                    )
            results["rounds"].append(round_)
            digests = {tag: r["batch_digests"] for tag, r in round_.items()}
            print("batch digests (same values where equal):", digests, flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
