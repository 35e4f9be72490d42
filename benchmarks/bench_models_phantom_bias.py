"""Benchmark: GABA bias of each quantifier on the synthetic phantom sets, read from the
prediction tables that bench_models_phantom.py writes (no new computation).

Prints per model the mean signed GABA error, the MAE and the mean error on the GABA-free
phantoms (max-normalised, as every model MAE here). Run after bench_models_phantom.py:
    .venv/bin/python benchmarks/bench_models_phantom_bias.py [RESULT_FOLDER ...]
(default: benchmarks/results/phantom_validation and phantom_validation_full).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
NAMES = ("cr", "gaba", "gln", "glu", "naa")


def gaba_errors(table: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {model: (true GABA, predicted - true GABA)} max-normalised per scan."""
    rows = defaultdict(list)
    with table.open() as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["model"]].append(r)
    out = {}
    for model, rs in rows.items():
        t = np.array([[float(r[f"true_{k}"]) for k in NAMES] for r in rs])
        p = np.array([[float(r[f"pred_{k}"]) for k in NAMES] for r in rs])
        t, p = t / t.max(1, keepdims=True), p / p.max(1, keepdims=True)
        out[model] = (t[:, 1], p[:, 1] - t[:, 1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = [RESULTS / "phantom_validation", RESULTS / "phantom_validation_full"]
    ap.add_argument("folders", nargs="*", type=Path, default=default)
    for folder in ap.parse_args().folders:
        for model, (true, err) in gaba_errors(folder / "validation_predictions.tsv").items():
            print(
                f"{folder.name:>24s} {model:>8s}: GABA bias {err.mean():+.4f} MAE "
                f"{np.abs(err).mean():.4f}; GABA-free phantoms {err[true == 0].mean():+.4f}"
            )


if __name__ == "__main__":
    main()
