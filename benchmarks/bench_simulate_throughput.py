"""Throughput and memory of the on-the-fly spectrum generator (issue 6 targets).

Measures, for batches of 1024 network-ready spectra on the CPU (all torch threads) and on CUDA
when present: spectra per second of `SpectrumGenerator.batch` for the presets "none",
"paper" and "default", with and without the clean copy, the split between synthesis and
`network_input`, and the peak resident memory added by one batch of 1024 (measured in a fresh
child process: VmHWM after the batch minus VmRSS before it).

Basis: the bundled default basis when built, else the FID-A MEGA-PRESS basis in
../shared/data (read in place), else a singlet basis; the JSON names which and its sampling.

Usage: .venv/bin/python benchmarks/bench_simulate_throughput.py [--repeats 5] [--quick]
Writes benchmarks/results/simulate_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "simulate_throughput.json"
FIDA = REPO.parent / "shared" / "data" / "mrsnet_fida_megapress_basis"


def load_basis():
    """Return (basis, description)."""
    from gabaapp.constants import METABOLITES
    from gabaapp.spectra import Acquisition, Basis

    try:
        from gabaapp.physics.basis import default_basis, default_basis_path

        if default_basis_path().is_file():
            return default_basis(), "gabaapp default basis"
    except ImportError:
        pass
    if FIDA.is_dir():
        import scipy.io as sio

        off, on = [], []
        for m in METABOLITES:
            for edit, rows in (("OFF", off), ("ON", on)):
                f = FIDA / f"FIDA_{m}_MEGA-PRESS_3T_EDIT_{edit}_LW_1.000000.mat"
                rows.append(sio.loadmat(f, squeeze_me=True)["fid"])
        d = sio.loadmat(f, squeeze_me=True)
        t = d["t"]
        acq = Acquisition(float(d["omega"]) * 42.577, float(t[1] - t[0]), len(t), centre_ppm=3.0)
        return Basis(METABOLITES, np.array(off), np.array(on), acq, "fida"), "FID-A (shared data)"
    sys.path.insert(0, str(REPO / "tests" / "unit"))
    from test_simulate_generator import singlet_basis

    return singlet_basis(), "singlet test basis"


def configs():
    from gabaapp.config import AugmentationConfig, SynthesisConfig

    return {
        "none": SynthesisConfig(augmentation=AugmentationConfig.none()),
        "paper": SynthesisConfig.paper(),
        "default": SynthesisConfig(),
        "default_2048pts": SynthesisConfig(n_points=2048),
    }


def time_batches(gen, n: int, repeats: int, with_clean: bool, device) -> dict:
    from gabaapp.preproc.features import network_input

    g = torch.Generator(device=device).manual_seed(0)
    gen.batch(n, g, with_clean=with_clean)  # warm-up (plans, caches)
    totals, synth, cpu = [], [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        gen.batch(n, g, with_clean=with_clean)
        if device.type == "cuda":
            torch.cuda.synchronize()
        totals.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        conc = gen.sample_concentrations(n, g)
        fids = gen.synthesise(conc, gen.sample_parameters(n, g), g)
        if device.type == "cuda":
            torch.cuda.synchronize()
        synth.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    network_input(fids["off"], fids["on"], gen.acquisition, align=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    ni = time.perf_counter() - t0
    best = min(totals)
    return {
        "best_s": best,
        "median_s": float(np.median(totals)),
        "spectra_per_s_best": n / best,
        "spectra_per_s_median": n / float(np.median(totals)),
        # CPU seconds of this process (all threads) per batch: less sensitive than wall time to
        # other jobs on a shared machine; n / cpu_s = spectra per dedicated core-second.
        "cpu_s_median": float(np.median(cpu)),
        "spectra_per_core_s": n / float(np.median(cpu)),
        "synthesis_best_s": min(synth),
        "network_input_one_call_s": ni,
    }


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return -1


def memory_child(preset: str, n: int) -> None:
    """Child process: print the extra peak RSS (bytes) of one batch of n after a warm-up of 8."""
    basis, _ = load_basis()
    from gabaapp.simulate import SpectrumGenerator

    gen = SpectrumGenerator(basis, configs()[preset])
    g = torch.Generator().manual_seed(0)
    gen.batch(8, g)
    before = _vm("VmRSS")
    gen.batch(n, g)
    print(json.dumps({"extra_peak_bytes": _vm("VmHWM") - before}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--memory-child", default=None)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch)
        return
    from gabaapp.simulate import SpectrumGenerator

    basis, basis_desc = load_basis()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results: dict = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "basis": basis_desc,
        "basis_sampling": {
            "n_points": basis.acquisition.n_points,
            "dwell_s": basis.acquisition.dwell_s,
            "f0_mhz": basis.acquisition.f0_mhz,
        },
        "batch": args.batch,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": {},
    }
    for device in devices:
        for name, cfg in configs().items():
            gen = SpectrumGenerator(basis, cfg, device=device)
            for with_clean in (True, False):
                key = f"{device.type}/{name}/{'with' if with_clean else 'without'}_clean"
                r = time_batches(gen, args.batch, args.repeats, with_clean, device)
                results["runs"][key] = r
                print(
                    f"{key:36s} {r['spectra_per_s_best']:9.0f} spectra/s (best), "
                    f"{r['spectra_per_s_median']:9.0f} (median), "
                    f"{r['spectra_per_core_s']:6.0f} per core-s; synthesis "
                    f"{r['synthesis_best_s'] * 1e3:.0f} ms, network_input "
                    f"{r['network_input_one_call_s'] * 1e3:.0f} ms per call"
                )
    for name in ("paper", "default"):
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", name, "--batch", str(args.batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        extra = json.loads(child.stdout.strip().splitlines()[-1])["extra_peak_bytes"]
        results["runs"][f"cpu/{name}/memory_extra_peak_mb"] = extra / 2**20
        print(f"cpu/{name}: one batch of {args.batch} adds {extra / 2**20:.0f} MB peak RSS")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
