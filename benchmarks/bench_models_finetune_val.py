"""Benchmark: validation MAE of models on the validation set of a training config (the same
spectra `gabaapp train` draws: n_val spectra, seed val_seed, the config's bases and synthesis).

Used for issue 7 to compare the starting models (trained before the co-edited MM was tied to the
MM level) with their fine-tuned successors on the *new* synthesis, by validation data only
(never by the test sets). Prints per model the total max-normalised MAE (the training loop's
val MAE and model-selection objective) and the GABA MAE.
Run from the folder whose relative basis paths the config names (see the config's header):
    .venv/bin/python benchmarks/bench_models_finetune_val.py CONFIG MODEL_DIR [MODEL_DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gabaapp.cli.train import _prepare, build_train_parser
from gabaapp.models.card import load_model
from gabaapp.models.inference import predict
from gabaapp.training.loop import draw_set
from gabaapp.training.metrics import evaluate, total_mae


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    train_args = build_train_parser().parse_args(
        ["unused-out", "--config", str(args.config), "--threads", str(args.threads)]
    )
    cfg, _, source, _ = _prepare(train_args)
    torch.set_num_threads(args.threads)
    x, _, y = draw_set(source, cfg.n_val, cfg.val_seed, cfg.draw_size, "cpu", with_clean=False)
    out = {"config": str(args.config), "n_val": cfg.n_val, "val_seed": cfg.val_seed, "models": {}}
    for model_dir in args.model_dirs:
        model, _ = load_model(model_dir)
        pred, _ = predict(model, x, 1)
        rows = evaluate(y.numpy(), pred)
        res = {"total_mae": total_mae(y.numpy(), pred), "gaba_mae": rows["GABA"].mae}
        res["gaba_bias"] = rows["GABA"].bias
        out["models"][str(model_dir)] = res
        print(
            f"{model_dir}: val total MAE {res['total_mae']:.4f}, GABA MAE {res['gaba_mae']:.4f}"
            f" (bias {res['gaba_bias']:+.4f})"
        )
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
