"""Benchmark: where the cross-simulator (FID-A) gap of the bundled networks comes from.

The FID-A held-out set of bench_models_accuracy.py is drawn again (same augmentation, same seed)
from bases of gabaapp's OWN simulator: the vendor preset the models were trained on, and the
"paper" preset that reproduces FID-A's sequence (20 ms editing pulses, FID-A's timing), with
real and with ideal (instantaneous) refocusing, FID-A's simplification. If our ideal-refocusing
paper preset gives the same error as the FID-A basis, the gap is a sequence-parameter domain
shift (fixable by training on such sequences), not a difference between the two simulators.
Writes benchmarks/results/bench_models_domain.json. Run:
    .venv/bin/python benchmarks/bench_models_domain.py [MODEL_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_models_accuracy import SEED, test_sets  # noqa: E402 - sibling benchmark

from gabaapp.models.card import load_model  # noqa: E402
from gabaapp.models.inference import predict  # noqa: E402
from gabaapp.physics.basis import cached_basis  # noqa: E402
from gabaapp.physics.sequence import MegaPressSequence  # noqa: E402
from gabaapp.simulate.generator import SpectrumGenerator  # noqa: E402
from gabaapp.training.loop import draw_set  # noqa: E402
from gabaapp.training.metrics import evaluate  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "gabaapp" / "data" / "models"
OUT = Path(__file__).parent / "results" / "bench_models_domain.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="*", type=Path)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets = test_sets()
    if "fida" not in sets:
        raise SystemExit("the FID-A basis (../shared/data/mrsnet_fida_megapress_basis) is absent")
    fida_basis, fida_cfg = sets["fida"]
    bases = {
        "FID-A basis (the held-out fida set)": fida_basis,
        "gabaapp, paper preset, ideal refocusing (FID-A's sequence)": cached_basis(
            MegaPressSequence.preset("paper", ideal_refocusing=True)
        ),
        "gabaapp, paper preset (20 ms editing, FID-A timing)": cached_basis(
            MegaPressSequence.preset("paper")
        ),
        "gabaapp, siemens preset (in the training mixture)": cached_basis(
            MegaPressSequence.preset("siemens")
        ),
    }
    dirs = args.model_dirs or [MODELS / "yae-v4", MODELS / "cnn-v2"]
    models = {d.name: load_model(d)[0] for d in dirs}
    out = {"seed": SEED, "n": args.n, "augmentation": "as the fida set", "rows": {}}
    for name, basis in bases.items():
        x, _, y = draw_set(SpectrumGenerator(basis, fida_cfg), args.n, SEED, 500, with_clean=False)
        out["rows"][name] = {}
        for label, model in models.items():
            rows = evaluate(y.numpy(), predict(model, x, 1)[0])
            out["rows"][name][label] = {
                "gaba_mae": round(float(rows["GABA"].mae), 4),
                "gaba_trivial_mae": round(float(rows["GABA"].trivial_mae), 4),
                "total_mae": round(float(rows["total"].mae), 4),
            }
        cells = " | ".join(
            f"{m} GABA {v['gaba_mae']:.4f} total {v['total_mae']:.4f}"
            for m, v in out["rows"][name].items()
        )
        print(f"{name:60s} {cells}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
