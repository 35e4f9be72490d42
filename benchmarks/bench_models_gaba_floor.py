"""Benchmark: GABA reported by the networks for GABA-free (and low-GABA) spectra, without the
phantom chain: plain noise-free synthesis (Lorentzian lines, no MM, water or other
augmentation) with the phantom concentrations (Cr 8, Gln 3, Glu 12, NAA 15 mM), through the
participant-level quantification (`pipeline.quantify_scan` on the averaged FIDs).

Tells whether the networks' GABA over-estimate on the synthetic phantoms (bench_models_phantom,
bench_models_phantom_bias) comes from the phantom chain or from the networks at low GABA.
Prints predicted minus true GABA (max-normalised) per basis, linewidth and concentration set;
writes benchmarks/results/bench_models_gaba_floor.json.
Run:
    .venv/bin/python benchmarks/bench_models_gaba_floor.py [MODEL_DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from gabaapp import pipeline
from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.models.card import read_card
from gabaapp.physics.basis import cached_basis, default_basis
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.simulate.generator import SpectrumGenerator

MODELS = Path(__file__).resolve().parents[1] / "gabaapp" / "data" / "models"
OUT = Path(__file__).parent / "results" / "bench_models_gaba_floor.json"
# Cr, GABA, Gln, Glu, NAA (mM): the phantoms of gabaapp simulate bids --phantom at GABA 0 and 3
CONCENTRATIONS = {
    "GABA 0": [8.0, 0.0, 3.0, 12.0, 15.0],
    "GABA 3": [8.0, 3.0, 3.0, 12.0, 15.0],
}
LINEWIDTHS_HZ = (2.0, 6.0)


def gaba_error(pre, card_model: str, model_dir: Path, true: np.ndarray) -> float:
    """Return predicted minus true GABA, both max-normalised, for one averaged scan."""
    q = pipeline.quantify_scan(pre, card_model, model_dir=model_dir).concentrations
    return float(q[1] / q.max() - true[1] / true.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="*", type=Path)
    args = ap.parse_args()
    dirs = args.model_dirs or [MODELS / "yae-v4", MODELS / "cnn-v2"]
    bases = {
        "default (paper preset)": default_basis(),
        "siemens": cached_basis(MegaPressSequence.preset("siemens")),
    }
    out = {"concentrations_mm": CONCENTRATIONS, "rows": []}
    for bname, basis in bases.items():
        for lw in LINEWIDTHS_HZ:
            aug = dataclasses.replace(
                AugmentationConfig.paper(), lorentz_hz=(lw, lw), noise=(0.0, 0.0)
            )
            gen = SpectrumGenerator(basis, SynthesisConfig(sampler="uniform", augmentation=aug))
            for cname, c in CONCENTRATIONS.items():
                conc = torch.tensor([c], dtype=torch.float32)
                g = torch.Generator().manual_seed(0)
                fids = gen.synthesise(conc, gen.sample_parameters(1, g), g)
                off, on = (fids[k][0].numpy().astype(np.complex128) for k in ("off", "on"))
                pre = pipeline.preprocessed_from_arrays(basis.acquisition, off, on)
                errors = {
                    d.name: round(gaba_error(pre, read_card(d)["model"], d, np.array(c)), 4)
                    for d in dirs
                }
                out["rows"].append({"basis": bname, "lorentz_hz": lw, "set": cname, **errors})
                print(f"{bname:24s} L {lw:3.0f} Hz {cname}: GABA error {errors}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
