"""Benchmark on a CUDA GPU, in one short run: synthesis throughput (issue 6), YAE inference
throughput (issue 7) and training-step rates of the YAE and the paper-size CNN (issue 7).

Made for a time-boxed GPU lease (`--quick --device cpu` dry-runs every code path on a CPU
with tiny sizes before a lease is spent): every part is timed with CUDA synchronisation after warm-up,
the median of a few repeats is kept, and the whole script takes about a minute. Writes JSON to
`--out` (default benchmarks/results/bench_gpu.json). Needs a CUDA device.

    python benchmarks/bench_gpu.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gabaapp.config import SynthesisConfig
from gabaapp.models.inference import predict
from gabaapp.models.registry import build_model, model_config
from gabaapp.physics.basis import default_basis
from gabaapp.simulate.generator import SpectrumGenerator
from gabaapp.training.loop import sum_normalise, train_step

OUT = Path(__file__).parent / "results" / "bench_gpu.json"


QUICK = False  # --quick: tiny sizes (dry run)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_median(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Return the median wall time in seconds of fn() (CUDA-synchronised) after warm-up."""
    if QUICK:
        repeats, warmup = 1, 1
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sizes(*full: int) -> tuple[int, ...]:
    """Return the batch sizes to time (tiny ones with --quick)."""
    return tuple(max(2, n // 256) for n in full) if QUICK else full


def synthesis_rates(dev: torch.device) -> dict[str, float]:
    """Return {case: spectra/s} of SpectrumGenerator.batch on `dev`, plus peak memory (MB)."""
    basis = default_basis()
    out: dict[str, float] = {}
    for preset, synth in (("paper", SynthesisConfig.paper()), ("default", SynthesisConfig())):
        gen = SpectrumGenerator(basis, synth, dev)
        g = torch.Generator(device=dev).manual_seed(0)
        for n in sizes(1024, 8192):
            for with_clean in (True, False):
                s = timed_median(
                    lambda gen=gen, n=n, g=g, c=with_clean: gen.batch(n, g, with_clean=c), 5
                )
                out[f"{preset}_batch{n}_{'clean' if with_clean else 'noclean'}"] = round(n / s)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            gen.batch(1024, g)
            torch.cuda.synchronize()
            peak_mb = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
            out[f"{preset}_batch1024_peak_mb"] = round(peak_mb, 1)
    return out


def inference_rates(dev: torch.device) -> dict[str, float]:
    """Return {case: spectra/s} of the paper-size YAE: predict() from host arrays (transfers
    included) and the bare forward pass on device-resident input."""
    torch.manual_seed(0)
    model = build_model("yae", model_config("yae", "yae_paper")).to(dev).eval()
    x_host = np.random.default_rng(0).normal(size=(max(sizes(8192)), 4, 2048)).astype(np.float32)
    x_dev = torch.as_tensor(x_host, device=dev)
    out: dict[str, float] = {}
    for precision in ("float32", "bfloat16"):
        for n in sizes(1024, 8192):
            s = timed_median(
                lambda n=n, p=precision: predict(model, x_host[:n], 1, batch_size=n, precision=p),
                5,
            )
            out[f"predict_{precision}_batch{n}"] = round(n / s)

            def forward(n=n, bf16=precision == "bfloat16"):
                with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
                    model(x_dev[:n])

            out[f"forward_on_device_{precision}_batch{n}"] = round(n / timed_median(forward, 10))
    return out


def training_rates(dev: torch.device) -> dict[str, float]:
    """Return {case: spectra/s} of optimisation steps (Adam, clip-norm, bf16 autocast) on
    device-resident batches."""
    out: dict[str, float] = {}
    cases = (("yae", "yae_paper", (16, 128, 512)), ("cnn", "cnn_paper", (16, 64)))
    if QUICK:
        cases = (("yae", "yae_paper", (4,)), ("cnn", "cnn_cpu", (4,)))
    for name, preset, batches in cases:
        torch.manual_seed(0)
        model = build_model(name, model_config(name, preset)).to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        for b in batches:
            x = torch.randn(b, 4, 2048, device=dev)
            clean = x.clone()
            target = sum_normalise(torch.rand(b, 5, device=dev))
            steps = 2 if QUICK else 20 if name == "cnn" else 50

            def run(model=model, opt=opt, x=x, clean=clean, target=target, steps=steps):
                for _ in range(steps):
                    train_step(model, opt, x, clean, target, 30, 1.0)

            s = timed_median(run, repeats=3, warmup=1)
            out[f"{preset}_batch{b}_spectra_per_s"] = round(b * steps / s)
        del model, opt
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every path")
    args = ap.parse_args()
    global QUICK
    QUICK = args.quick
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py: no CUDA device (use --device cpu --quick for a dry run)")
    result: dict[str, object] = {
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "quick": QUICK,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    for part, fn in (
        ("synthesis_spectra_per_s", synthesis_rates),
        ("yae_inference_spectra_per_s", inference_rates),
        ("training_spectra_per_s", training_rates),
    ):
        t0 = time.perf_counter()
        try:
            result[part] = fn(dev)
        except Exception as err:  # noqa: BLE001 - keep the other parts of a one-shot run
            result[part] = {"error": f"{type(err).__name__}: {err}"}
        print(f"{part} ({time.perf_counter() - t0:.0f} s): {json.dumps(result[part])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
