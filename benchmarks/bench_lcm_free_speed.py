"""CPU time of the free line shape on the real PRESS spectra, working tree against a commit.

Issue 9: `lineshape="free"` gives the largest residual gain on the real spectra but took
0.64 s CPU on Philips sub-01 (bench_lcm_realdata_candidates.py, 23:04 UTC), over the 0.5 s
single-spectrum budget. This times it, and the Voigt default, on what a user fits (the three
real spectra of bench_lcm_realdata.py after gabaapp's own pre-processing, at the protocols'
TE1 split; and Philips sub-01 with the opt-in echo removal as well, the case that was timed
at 0.64 s), for the working tree and for an earlier commit, each in its own child process,
alternating, one BLAS thread; the commit's tree is extracted with `git archive` into a
temporary directory (the repository is not changed). The inputs (pre-processed FIDs, bases)
are prepared once by this process and shared, so both trees fit identical inputs. Writes CPU
min / median over REPEATS fits, the residual ratio and the largest relative amplitude
difference between the trees (amplitudes above 1e-6 of the largest) to
benchmarks/results/lcm_free_speed.json.

Usage: .venv/bin/python benchmarks/bench_lcm_free_speed.py [--commit a1a2907] [--rounds 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from commit_tree import export_commit, run_child  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "lcm_free_speed.json"
BASE_COMMIT = "a1a2907"  # main before the free line-shape speed-up
REPEATS = 5
BUDGET_S = 0.5


def prepare(path: Path) -> None:
    """Pickle {case: (fid, acquisition, basis)} for the children."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_lcm_realdata import HELD_OUT, REAL, TE1_MS, load, preprocessed

    from gabaapp.config import LcmConfig
    from gabaapp.lcm.noise import noise_sd
    from gabaapp.lcm.timing import press_basis
    from gabaapp.preproc.echo import remove_late_echo

    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in {**REAL, **HELD_OUT}.items():
            _, acq, _ = load(name, fmt, files, Path(tmp))
            pre, _ = preprocessed(name, fmt, Path(tmp))
            basis = press_basis(acq, TE1_MS[name])
            cases[name] = (pre, acq, basis)
            if name == "philips_sdat":
                nsd = noise_sd(pre, acq, LcmConfig().noise_ppm_ranges)
                cases[f"{name}_echo_removed"] = (remove_late_echo(pre, acq, nsd)[0], acq, basis)
    path.write_bytes(pickle.dumps(cases))


def child(path: Path) -> None:
    """Time the gabaapp found first on sys.path; print one JSON line."""
    import numpy as np

    import gabaapp
    from gabaapp.config import LcmConfig
    from gabaapp.lcm import fit_spectrum

    cases = pickle.loads(path.read_bytes())
    out: dict = {"gabaapp": gabaapp.__file__}
    for lineshape in ("free", "voigt"):
        config = LcmConfig(include_mm=True, lineshape=lineshape)
        for name, (fid, acq, basis) in cases.items():
            fit_spectrum(fid, acq, basis, basis.names, config)  # warm-up
            times = []
            for _ in range(REPEATS):
                c0 = time.process_time()
                r = fit_spectrum(fid, acq, basis, basis.names, config)
                times.append(time.process_time() - c0)
            out[f"{name} {lineshape}"] = {
                "cpu_min_s": float(np.min(times)),
                "cpu_median_s": float(np.median(times)),
                "residual_to_noise": r.residual_to_noise["single"],
                "amplitudes": r.amplitude_array.tolist(),
                "converged": r.converged,
            }
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default=BASE_COMMIT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    results: dict = {
        "commit": args.commit,
        "repeats": REPEATS,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": "2-core CPU sandbox, shared with other jobs; one BLAS thread",
        "working_tree": [],
        "base": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.pkl"
        prepare(inputs)
        tree = export_commit(REPO, args.commit, Path(tmp) / "base")
        for _ in range(args.rounds):
            for label, src in (("base", str(tree)), ("working_tree", str(REPO))):
                row = run_child(__file__, Path(src), [str(inputs)])
                row["load_average"] = list(os.getloadavg())
                results[label].append(row)
                brief = {k: v["cpu_median_s"] for k, v in row.items() if isinstance(v, dict)}
                print(label, json.dumps(brief), flush=True)
    import numpy as np

    summary = {}
    for key in (k for k, v in results["base"][0].items() if isinstance(v, dict)):
        a = np.array(results["base"][0][key]["amplitudes"])
        b = np.array(results["working_tree"][0][key]["amplitudes"])
        big = a > 1e-6 * a.max()
        summary[key] = {
            "cpu_median_s_base": [r[key]["cpu_median_s"] for r in results["base"]],
            "cpu_median_s_working_tree": [r[key]["cpu_median_s"] for r in results["working_tree"]],
            "cpu_min_s_working_tree": min(r[key]["cpu_min_s"] for r in results["working_tree"]),
            "max_relative_amplitude_difference": float(np.max(np.abs(b - a)[big] / a[big])),
            "residual_to_noise": [
                results["base"][0][key]["residual_to_noise"],
                results["working_tree"][0][key]["residual_to_noise"],
            ],
            "within_budget": all(
                r[key]["cpu_median_s"] <= BUDGET_S for r in results["working_tree"]
            ),
        }
        print(key, json.dumps(summary[key]), flush=True)
    results["summary"] = summary
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
