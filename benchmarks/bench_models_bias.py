"""Benchmark: decomposition of the models' GABA error on the held-out *sim* set into a
systematic part (mean bias) and scatter, and the share due to noise (issue 7).

The sim set of bench_models_accuracy (Siemens-preset basis, paper noise rule, Lorentzian
2-10 Hz, no MM) is drawn here in one chunk of N, once with the paper noise and once noise-free
with the same seed: concentrations and linewidths are drawn before the noise, so the two sets
differ only in noise. Reported per model and metabolite: MAE, mean bias, MAE after subtracting
the mean bias ("scatter MAE"), and the same on the noise-free copy (concentrations
max-normalised per spectrum, as in bench_models_accuracy).
Writes benchmarks/results/bench_models_bias.json.
Run:
    .venv/bin/python benchmarks/bench_models_bias.py MODEL_DIR [MODEL_DIR ...] [--n 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.constants import METABOLITES
from gabaapp.models.card import load_model
from gabaapp.models.inference import predict
from gabaapp.training.loop import draw_set
from gabaapp.training.metrics import max_normalise

RESULTS = Path(__file__).parent / "results"
SEED = 20261126


def decompose(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Return MAE, mean bias and the MAE left after subtracting the mean bias, for one column
    of max-normalised concentrations (the scale of bench_models_accuracy)."""
    err = pred - y
    bias = float(err.mean())
    return {
        "mae": float(np.abs(err).mean()),
        "bias": bias,
        "scatter_mae": float(np.abs(err - bias).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_models_bias.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gabaapp.physics.basis import cached_basis
    from gabaapp.physics.sequence import MegaPressSequence
    from gabaapp.simulate.generator import SpectrumGenerator

    basis = cached_basis(MegaPressSequence.preset("siemens"))
    noisy = dataclasses.replace(AugmentationConfig.paper(), lorentz_hz=(2.0, 10.0))
    sets = {"sim": noisy, "sim_noise_free": dataclasses.replace(noisy, noise=(0.0, 0.0))}
    data = {}
    for name, aug in sets.items():
        gen = SpectrumGenerator(basis, SynthesisConfig(sampler="uniform", augmentation=aug))
        x, _, y = draw_set(gen, args.n, SEED, args.n, with_clean=False)
        data[name] = (x, y.numpy())
    assert np.array_equal(data["sim"][1], data["sim_noise_free"][1])
    out = {"seed": SEED, "n": args.n, "models": {}}
    for model_dir in args.model_dirs:
        model, _ = load_model(model_dir)
        res = out["models"][model_dir.name] = {}
        for name, (x, y) in data.items():
            pred, _ = predict(model, x, 1)
            y, pred = max_normalise(y), max_normalise(pred)
            res[name] = {m: decompose(y[:, k], pred[:, k]) for k, m in enumerate(METABOLITES)}
            g = res[name]["GABA"]
            print(
                f"{model_dir.name:>12s} {name:>15s}: GABA MAE {g['mae']:.4f} bias {g['bias']:+.4f}"
                f" scatter MAE {g['scatter_mae']:.4f}; Cr MAE {res[name]['Cr']['mae']:.4f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
