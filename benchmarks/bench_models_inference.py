"""Benchmark: YAE (paper size) inference throughput on CPU and model load time.

Targets (issue 7): >= 3,000 spectra/s for the YAE on 2 CPU cores (batch), load <= 0.5 s.
Writes benchmarks/results/bench_models_inference.json. Run:
    .venv/bin/python benchmarks/bench_models_inference.py [--threads 2] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gabaapp.models.card import load_model, save_model
from gabaapp.models.inference import predict
from gabaapp.models.registry import build_model, model_config

OUT = Path(__file__).parent / "results" / "bench_models_inference.json"


def throughput(model, x: np.ndarray, precision: str, seconds: float) -> float:
    """Return spectra/s of predict() on `x` (one batch per call) over about `seconds`."""
    predict(model, x[:64], 1, precision=precision)  # warm-up (oneDNN kernels, allocations)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        predict(model, x, 1, batch_size=len(x), precision=precision)
        n += len(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("yae", model_config("yae", "yae_paper")).eval()
    x = np.random.default_rng(0).normal(size=(4096, 4, 2048)).astype(np.float32)
    result = {
        "model": "yae_paper",
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "throughput_spectra_per_s": {},
    }
    for precision in ("float32", "bfloat16"):
        for batch in (1024, 4096):
            rate = throughput(model, x[:batch], precision, args.seconds)
            result["throughput_spectra_per_s"][f"{precision}_batch{batch}"] = round(rate, 1)
    fp32, _ = predict(model, x[:1024], 1)
    bf16, _ = predict(model, x[:1024], 1, precision="bfloat16")
    result["bfloat16_max_abs_diff"] = float(np.abs(fp32 - bf16).max())
    with tempfile.TemporaryDirectory() as tmp:
        save_model(tmp, "yae", model)
        load_model(tmp)  # first load imports modules; time the steady state and the first
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            load_model(tmp)
            times.append(time.perf_counter() - t0)
    result["load_time_s_median"] = round(statistics.median(times), 4)
    result["load_time_s_max"] = round(max(times), 4)
    result["weights_mb"] = round(model_config_size_mb(model), 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def model_config_size_mb(model) -> float:
    """Return the float32 weight size in MB."""
    return sum(p.numel() for p in model.state_dict().values()) * 4 / 1e6


if __name__ == "__main__":
    main()
