"""LCM fit CPU time and MEGA-PRESS accuracy of the working tree against an earlier commit.

Issue 9 (residual whiteness) adds work to every fit (the fit's hat matrix for the expected
autocorrelation of a correct model's residual). To measure that cost fairly on a shared
machine, each version runs in its own child process, alternating: the commit's tree is
extracted with `git archive` into a temporary directory (the repository is not changed) and
put first on PYTHONPATH. Each child times, with one BLAS thread, N synthetic MEGA-PRESS joint
fits (bench_lcm_speed's "physics" set, same seed) and the three real PRESS spectra of
bench_lcm_realdata (default single-spectrum model, REPEATS fits each), and reports CPU
medians, the MEGA-PRESS total and GABA MAE (paper metric) and the median CRLBs.

Usage: .venv/bin/python benchmarks/bench_lcm_commits.py [--commit 4ea6b65] [--rounds 2] [--n 40]
Writes benchmarks/results/lcm_commits.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from commit_tree import export_commit, run_child  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "lcm_commits.json"
BASE_COMMIT = "4ea6b65"  # main when issue 9's whiteness and echo work began
REPEATS = 3


def child(n: int) -> None:
    """Time the gabaapp found first on sys.path; print one JSON line."""
    import numpy as np

    import gabaapp

    # the benchmark helpers of the same tree as the gabaapp being timed; data from this one
    tree = Path(gabaapp.__file__).resolve().parents[1]
    sys.path.insert(0, str(tree / "benchmarks"))
    import bench_lcm_realdata
    from bench_lcm_realdata import HELD_OUT, REAL, load
    from bench_lcm_speed import make_basis, make_spectrum

    bench_lcm_realdata.SHARED = REPO.parent / "shared" / "data"
    from gabaapp.config import LcmConfig
    from gabaapp.constants import METABOLITES
    from gabaapp.lcm import fit_megapress, fit_spectrum
    from gabaapp.training.metrics import evaluate

    out: dict = {"gabaapp": gabaapp.__file__}
    basis = make_basis()
    rng = np.random.default_rng(9)
    data = [make_spectrum(basis, rng) for _ in range(n)]
    fit_megapress(data[0][0], data[0][1], basis.acquisition, basis, LcmConfig())  # warm-up
    cpu, preds, crlb = [], [], []
    for off, diff, _ in data:
        c0 = time.process_time()
        r = fit_megapress(off, diff, basis.acquisition, basis, LcmConfig())
        cpu.append(time.process_time() - c0)
        preds.append(r.amplitude_array)
        crlb.append(r.crlb_percent_array)
    metrics = evaluate(np.array([c for _, _, c in data]), np.array(preds))
    out["megapress_joint"] = {
        "cpu_median_s": float(np.median(cpu)),
        "cpu_p95_s": float(np.percentile(cpu, 95)),
        "mae_total": metrics["total"].mae,
        "mae_gaba": metrics["GABA"].mae,
        "median_crlb_percent": dict(zip(METABOLITES, np.median(crlb, 0).tolist(), strict=True)),
    }
    config = LcmConfig(include_mm=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            fid, acq, pbasis = load(name, fmt, files, Path(tmp))
            times = []
            for _ in range(REPEATS):
                c0 = time.process_time()
                r = fit_spectrum(fid, acq, pbasis, pbasis.names, config)
                times.append(time.process_time() - c0)
            out[name] = {
                "cpu_median_s": float(np.median(times)),
                "residual_to_noise": r.residual_to_noise["single"],
                "crlb_percent_naa": r.crlb_percent["NAA"],
            }
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default=BASE_COMMIT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.n)
        return 0
    results: dict = {"commit": args.commit, "working_tree": [], "base": []}
    with tempfile.TemporaryDirectory() as tmp:
        export_commit(REPO, args.commit, Path(tmp))
        for _ in range(args.rounds):
            for label, tree in (("base", tmp), ("working_tree", str(REPO))):
                row = run_child(__file__, Path(tree), ["--n", str(args.n)])
                row["load_average"] = list(os.getloadavg())
                results[label].append(row)
                print(label, json.dumps(row), flush=True)
    results["date_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    results["machine"] = "2-core CPU sandbox, shared with other jobs; one BLAS thread"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
