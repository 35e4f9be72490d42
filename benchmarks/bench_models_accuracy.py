"""Benchmark: accuracy of trained models on held-out simulated test sets, with the
trivial-predictor MAE beside every figure (paper-notes §1.2).

Test sets (never used in training or selection: the uniform concentration sampler and seed
20261126 differ from training, which uses the Sobol stream):
* sim: 2,000 spectra from gabaapp's own Siemens-preset basis, the paper's noise rule and
  Lorentzian linewidths 2-10 Hz, no other augmentation (issue 7 "simulated test set");
* fida: 2,000 spectra from the FID-A MEGA-PRESS basis of the paper's authors in
  ../shared/data/mrsnet_fida_megapress_basis (read in place, never copied; an independent
  simulator), with Voigt broadening, frequency shifts, zero/first-order phase and noise.
Writes benchmarks/results/bench_models_accuracy.json and one metrics TSV per model and set.
Run:
    .venv/bin/python benchmarks/bench_models_accuracy.py MODEL_DIR [MODEL_DIR ...]
        [--device cuda] [--fida-dir DIR] [--results DIR]
(The test sets are always drawn on the CPU, so they are identical on every machine.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.constants import METABOLITES
from gabaapp.models.card import load_model
from gabaapp.models.inference import predict
from gabaapp.spectra import Acquisition, Basis
from gabaapp.training.loop import draw_set
from gabaapp.training.metrics import evaluate, metrics_to_dict, write_metrics_tsv

RESULTS = Path(__file__).parent / "results"
FIDA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mrsnet_fida_megapress_basis"
SEED = 20261126
N_TEST = 2000


def fida_basis(fida_dir: Path = FIDA_DIR) -> Basis:
    """Return the FID-A basis (2500 Hz, 4096 points, centre 3.0 ppm, 1 Hz lines) as a Basis."""
    from scipy.io import loadmat

    off, on = [], []
    for m in METABOLITES:
        for rows, edit in ((off, "OFF"), (on, "ON")):
            mat = loadmat(
                fida_dir / f"FIDA_{m}_MEGA-PRESS_3T_EDIT_{edit}_LW_1.000000.mat", squeeze_me=True
            )
            rows.append(np.asarray(mat["fid"], dtype=complex))
    acq = Acquisition(f0_mhz=123.23, dwell_s=0.0004, n_points=4096, centre_ppm=3.0)
    return Basis(METABOLITES, np.array(off), np.array(on), acq, "fida-mrsnet-f7e9091")


def test_sets(fida_dir: Path = FIDA_DIR) -> dict[str, tuple[Basis, SynthesisConfig]]:
    """Return {name: (basis, synthesis config)} of the held-out sets available here."""
    from gabaapp.physics.basis import cached_basis
    from gabaapp.physics.sequence import MegaPressSequence

    paper_noise = dataclasses.replace(AugmentationConfig.paper(), lorentz_hz=(2.0, 10.0))
    sets = {
        "sim": (
            cached_basis(MegaPressSequence.preset("siemens")),
            SynthesisConfig(sampler="uniform", augmentation=paper_noise),
        )
    }
    if fida_dir.is_dir():
        realistic = dataclasses.replace(
            AugmentationConfig.none(),
            lorentz_hz=(1.0, 8.0),
            gauss_hz=(0.0, 6.0),
            shift_hz=(-5.0, 5.0),
            phase0_deg=(-20.0, 20.0),
            phase1_deg_per_ppm=(-3.0, 3.0),
            noise=(0.0, 0.03),
            enabled=True,
        )
        sets["fida"] = (
            fida_basis(fida_dir),
            SynthesisConfig(sampler="uniform", augmentation=realistic),
        )
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=N_TEST)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where the models run (cpu, cuda)")
    ap.add_argument("--fida-dir", type=Path, default=FIDA_DIR, help="the FID-A basis folder")
    ap.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    ap.add_argument(
        "--precision", default="float32", choices=("float32", "bfloat16"), help="network arithmetic"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = args.results
    from gabaapp.simulate.generator import SpectrumGenerator

    data = {}
    for name, (basis, synth) in test_sets(args.fida_dir).items():
        t0 = time.perf_counter()
        x, _, y = draw_set(SpectrumGenerator(basis, synth), args.n, SEED, 500, with_clean=False)
        data[name] = (x, y.numpy())
        print(f"test set {name}: {args.n} spectra in {time.perf_counter() - t0:.1f} s")
    out = {"seed": SEED, "n": args.n, "precision": args.precision, "models": {}}
    for model_dir in args.model_dirs:
        model, card = load_model(model_dir)
        model.to(args.device)
        label = model_dir.name
        out["models"][label] = {"model": card["model"], "sets": {}}
        for name, (x, y) in data.items():
            pred, _ = predict(model, x, 1, precision=args.precision)
            rows = evaluate(y, pred)
            results.mkdir(parents=True, exist_ok=True)
            write_metrics_tsv(rows, results / f"accuracy_{label}_{name}.tsv")
            out["models"][label]["sets"][name] = metrics_to_dict(rows)
            g, t = rows["GABA"], rows["total"]
            print(
                f"{label:>20s} {name:>5s}: GABA MAE {g.mae:.4f} (trivial {g.trivial_mae:.4f}) "
                f"slope {g.slope:.3f} R2 {g.r2:.3f}; Cr MAE {rows['Cr'].mae:.4f}; "
                f"total {t.mae:.4f} (trivial {t.trivial_mae:.4f})"
            )
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench_models_accuracy.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
