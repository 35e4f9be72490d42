"""Benchmark: bundled networks vs the LCM baseline on one synthetic phantom BIDS dataset.

A phantom dataset (`write_synthetic_bids(..., phantom=True)`: raw coil/transient data with the
synthesis issue's imperfections, true concentrations in participants.tsv) goes through the real
participant-level pre-processing and each quantifier via `gabaapp.training.validate` (the code
behind `gabaapp train validate`). Reported: GABA and total max-normalised MAE per model beside
the trivial-predictor MAE (paper-notes §1.2), GABA slope/R^2, and the quantification time per
scan. Default: 12 participants, 8 coils x 64 transients, seed 20261126 (< 5 min on 2 cores).
Writes benchmarks/results/bench_models_phantom.json (+ the validation tables under
benchmarks/results/phantom_validation/).
Run:
    .venv/bin/python benchmarks/bench_models_phantom.py [--participants 12] [--coils 8]
        [--transients 64] [--models yae-v4 cnn-v2 lcm] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from gabaapp.physics.basis import default_basis
from gabaapp.simulate.bids_dataset import write_synthetic_bids
from gabaapp.training.validate import POOLED, format_table, split_targets, validate

RESULTS = Path(__file__).parent / "results"
SEED = 20261126


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=12)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--transients", type=int, default=64)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--models", nargs="+", default=["yae-v4", "cnn-v2", "lcm"])
    ap.add_argument("--tag", default="", help="suffix of the result names (other sizes)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ds = write_synthetic_bids(
            Path(tmp) / "phantom",
            args.participants,
            default_basis(),
            phantom=True,
            seed=args.seed,
            n_coils=args.coils,
            n_transients=args.transients,
        )
        synth_s = time.perf_counter() - start
        models, datasets = split_targets([*args.models, str(ds)])
        start = time.perf_counter()
        suffix = f"_{args.tag}" if args.tag else ""
        result = validate(models, datasets, RESULTS / f"phantom_validation{suffix}")
        validate_s = time.perf_counter() - start
    print(format_table(result.metrics))  # noqa: T201 - benchmark output

    per_model = {}
    for p in result.predictions:
        rows = result.metrics[(POOLED, p.model)]
        per_model[p.model] = {
            "n_scans": len(p.scans),
            "gaba_mae": rows["GABA"].mae,
            "gaba_trivial_mae": rows["GABA"].trivial_mae,
            "gaba_slope": rows["GABA"].slope,
            "gaba_r2": rows["GABA"].r2,
            "total_mae": rows["total"].mae,
            "total_trivial_mae": rows["total"].trivial_mae,
            "mae_per_metabolite": {k: v.mae for k, v in rows.items() if k != "total"},
            "seconds_per_scan": p.seconds / max(1, len(p.scans)),
        }
    out = {
        "benchmark": "models vs lcm on a synthetic phantom set",
        "dataset": {
            "participants": args.participants,
            "coils": args.coils,
            "transients": args.transients,
            "seed": args.seed,
            "generator": "gabaapp.simulate.bids_dataset.write_synthetic_bids(phantom=True)",
        },
        "models": per_model,
        "failures": result.failures,
        "synthesis_s": synth_s,
        "validate_s": validate_s,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "note": "2-core CPU sandbox, shared with other jobs during measurement",
        },
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench_models_phantom{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}  (synthesis {synth_s:.1f} s, validation {validate_s:.1f} s)")  # noqa: T201


if __name__ == "__main__":
    main()
