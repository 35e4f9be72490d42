"""Benchmark: seconds per training epoch of 100,000 on-the-fly spectra (YAE, paper protocol).

Measures, on this machine, (a) the spectrum generator's rate for the default basis and default
augmentation (with the clean copy the YAE needs) and (b) the YAE's optimisation steps per second
at batch 16, and extrapolates one 100k-spectrum epoch = 100k / rate + 6250 / steps_per_s
(the loop does nothing else per epoch except a 2000-spectrum validation pass, also timed).
Writes benchmarks/results/bench_models_training.json. Run:
    .venv/bin/python benchmarks/bench_models_training.py [--device cpu|cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from gabaapp.config import SynthesisConfig
from gabaapp.models.registry import build_model, model_config
from gabaapp.training.loop import evaluate_loss, sum_normalise, train_step

OUT = Path(__file__).parent / "results" / "bench_models_training.json"
N_EPOCH = 100_000
BATCH = 16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--model", default="yae", choices=("yae", "cnn", "fcnn"))
    ap.add_argument("--preset", default=None)
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(max(threads))
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    result = {
        "model": args.model,
        "preset": args.preset,
        "device": str(dev)
        + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "platform": platform.platform(),
    }
    # (a) generator rate
    try:
        from gabaapp.physics.basis import default_basis
        from gabaapp.simulate.generator import SpectrumGenerator

        gen = SpectrumGenerator(default_basis(), SynthesisConfig(), dev)
        g = torch.Generator(device=dev).manual_seed(0)
        gen.batch(64, g)
        sync()
        t0 = time.perf_counter()
        batch = gen.batch(1024, g)
        sync()
        rate = 1024 / (time.perf_counter() - t0)
        result["generator_spectra_per_s"] = round(rate, 1)
        x, clean, y = batch.x, batch.clean, batch.y
    except Exception as err:  # noqa: BLE001 - report what is missing, still time the model
        result["generator_error"] = f"{type(err).__name__}: {err}"
        rate = None
        x = torch.randn(1024, 4, 2048, device=dev)
        clean, y = x.clone(), torch.rand(1024, 5, device=dev)
    # (b) optimisation steps, for each thread count
    result["by_threads"] = {}
    target = sum_normalise(y)
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        torch.manual_seed(0)
        model = build_model(args.model, model_config(args.model, args.preset)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        for i in range(5):  # warm-up
            sl = slice(i * BATCH, (i + 1) * BATCH)
            train_step(model, opt, x[sl], clean[sl], target[sl], 0, 1.0)
        sync()
        t0 = time.perf_counter()
        for i in range(args.steps):
            sl = slice((i * BATCH) % 1008, (i * BATCH) % 1008 + BATCH)
            train_step(model, opt, x[sl], clean[sl], target[sl], 0, 1.0)
        sync()
        steps_per_s = args.steps / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate_loss(model, x, clean, y, 0)
        sync()
        val_s = (time.perf_counter() - t0) * 2000 / len(x)
        steps = N_EPOCH // BATCH
        gen_s = N_EPOCH / rate if rate else 0.0
        result["by_threads"][str(n_threads)] = {
            "train_steps_per_s_batch16": round(steps_per_s, 2),
            "validation_2000_s": round(val_s, 2),
            "epoch_100k_s_model_only": round(steps / steps_per_s, 1),
            "epoch_100k_s_extrapolated": round(steps / steps_per_s + val_s + gen_s, 1),
        }
    result["note"] = "extrapolated from timed steps; generator time included only if measured"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
