"""Benchmark: do ensembles or MC-dropout averaging lower the networks' held-out error (issue 7)?

Averaging only removes the part of the error the members do not share. This runs the bundled
networks (and any further model folders given) on the held-out *sim* and *fida* sets of
bench_models_accuracy.py (same draws, seed 20261126), each deterministic and as the mean of 16
MC-dropout passes, and the plain means of every pair and of all models; prints GABA, Cr and total
max-normalised MAE. Writes benchmarks/results/bench_models_ensemble.json.
Run:
    .venv/bin/python benchmarks/bench_models_ensemble.py [MODEL_DIR ...] [--n 2000] [--threads 2]
(an older model: `git show f1c8325:gabaapp/data/models/yae-v3/...` into a folder.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from bench_models_accuracy import N_TEST, SEED, test_sets

from gabaapp.models.card import load_model
from gabaapp.models.inference import predict
from gabaapp.simulate.generator import SpectrumGenerator
from gabaapp.training.loop import draw_set
from gabaapp.training.metrics import evaluate

MODELS = Path(__file__).resolve().parents[1] / "gabaapp" / "data" / "models"
OUT = Path(__file__).parent / "results" / "bench_models_ensemble.json"
MC_PASSES = 16


def figures(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Return {GABA, Cr, total} max-normalised MAE of `pred` against `y`."""
    rows = evaluate(y, pred)
    return {k: round(float(rows[k].mae), 5) for k in ("GABA", "Cr", "total")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="*", type=Path)
    ap.add_argument("--n", type=int, default=N_TEST)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dirs = [MODELS / "yae-v4", MODELS / "cnn-v2", *args.model_dirs]
    models = {d.name: load_model(d)[0] for d in dirs}
    out: dict = {
        "seed": SEED,
        "n": args.n,
        "mc_passes": MC_PASSES,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": list(os.getloadavg()),
        "sets": {},
    }
    for name, (basis, synth) in test_sets().items():
        x, _, y = draw_set(SpectrumGenerator(basis, synth), args.n, SEED, 500, with_clean=False)
        y = y.numpy()
        single = {k: predict(m, x, 1)[0] for k, m in models.items()}
        rows = {}
        for k, m in models.items():
            rows[k] = figures(y, single[k])
            rows[f"{k} MC-{MC_PASSES}"] = figures(y, predict(m, x, MC_PASSES)[0])
        for size in range(2, len(single) + 1):
            for combo in itertools.combinations(single, size):
                rows[" + ".join(combo)] = figures(y, np.mean([single[k] for k in combo], 0))
        out["sets"][name] = rows
        for k, v in rows.items():
            print(
                f"{name:5s} {k:40s} GABA {v['GABA']:.4f}  Cr {v['Cr']:.4f}  total {v['total']:.4f}"
            )
    OUT.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
