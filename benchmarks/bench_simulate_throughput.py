"""Throughput and memory of the on-the-fly spectrum generator (issue 6 targets).

Measures, for batches of 1024 network-ready spectra on the CPU (all torch threads) and on CUDA
when present: spectra per second of `SpectrumGenerator.batch` for the presets "none",
"paper" and "default", with and without the clean copy, the split between synthesis and
`network_input`, and the peak resident memory added by one batch of 1024 (measured in a fresh
child process: VmHWM after the batch minus VmRSS before it).

Side by side, in the same process and interleaved batch by batch (so both see the same load),
the `reference`: the generator, line and grid-function code as first committed (git commit
REFERENCE_COMMIT, read with `git show`, nothing copied into the repository), on the same basis
and settings. Wall time and process CPU time are both recorded: on a shared machine CPU
seconds (spectra per core-second) are the steadier figure.

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
# The commit holding the first (whole-batch) generator and grid function: the reference.
REFERENCE_COMMIT = "4d46a20"


def load_reference():
    """Return the SpectrumGenerator class of REFERENCE_COMMIT (its own lines and grid function),
    or None when git or that commit is unavailable."""
    import types

    def source(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), "show", f"{REFERENCE_COMMIT}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    try:
        texts = {
            "features": source("gabaapp/preproc/features.py"),
            "lines": source("gabaapp/simulate/lines.py"),
            "generator": source("gabaapp/simulate/generator.py"),
        }
    except (OSError, subprocess.CalledProcessError):
        return None
    texts["generator"] = (
        texts["generator"]
        .replace("from gabaapp.preproc.features import", "from _reference_features import")
        .replace("from gabaapp.simulate.lines import", "from _reference_lines import")
    )
    for name in ("features", "lines", "generator"):
        mod = types.ModuleType(f"_reference_{name}")
        sys.modules[mod.__name__] = mod
        exec(compile(texts[name], f"{REFERENCE_COMMIT}:{name}.py", "exec"), mod.__dict__)
    return sys.modules["_reference_generator"].SpectrumGenerator


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


def _timed(fn, device) -> tuple[float, float]:
    """Return (wall s, process CPU s) of fn()."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def _summary(n: int, walls: list, cpus: list) -> dict:
    return {
        "best_s": min(walls),
        "median_s": float(np.median(walls)),
        "spectra_per_s_best": n / min(walls),
        "spectra_per_s_median": n / float(np.median(walls)),
        # CPU seconds of this process (all threads) per batch: less sensitive than wall time to
        # other jobs on a shared machine; n / cpu_s = spectra per dedicated core-second.
        "cpu_s_median": float(np.median(cpus)),
        "spectra_per_core_s": n / float(np.median(cpus)),
    }


def time_batches(gen, ref, n: int, repeats: int, with_clean: bool, device) -> dict:
    """Time gen.batch (and ref.batch, interleaved, when ref is not None)."""
    from gabaapp.preproc.features import network_input

    g = torch.Generator(device=device).manual_seed(0)
    g_ref = torch.Generator(device=device).manual_seed(0)
    gen.batch(n, g, with_clean=with_clean)  # warm-up (plans, caches)
    if ref is not None:
        ref.batch(n, g_ref, with_clean=with_clean)
    new_w, new_c, ref_w, ref_c, synth = [], [], [], [], []
    for _ in range(repeats):
        w, c = _timed(lambda: gen.batch(n, g, with_clean=with_clean), device)
        new_w.append(w)
        new_c.append(c)
        if ref is not None:
            w, c = _timed(lambda: ref.batch(n, g_ref, with_clean=with_clean), device)
            ref_w.append(w)
            ref_c.append(c)
        conc = gen.sample_concentrations(n, g)
        params = gen.sample_parameters(n, g)
        w, _ = _timed(lambda c=conc, p=params: gen.synthesise(c, p, g), device)
        synth.append(w)
    fids = gen.synthesise(conc, params, g)
    ni, _ = _timed(lambda: network_input(fids["off"], fids["on"], gen.acquisition), device)
    out = _summary(n, new_w, new_c)
    out["synthesis_whole_batch_best_s"] = min(synth)
    out["network_input_one_call_s"] = ni
    if ref is not None:
        out["reference"] = _summary(n, ref_w, ref_c)
        out["speedup_wall_median"] = float(np.median(ref_w) / np.median(new_w))
        out["speedup_cpu_median"] = float(np.median(ref_c) / np.median(new_c))
    return out


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
    reference_cls = load_reference()
    results["reference"] = (
        f"git {REFERENCE_COMMIT} (whole-batch generator)" if reference_cls else "unavailable"
    )
    with open("/proc/loadavg") as f:
        results["load_average_before"] = f.read().split()[:3]
    for device in devices:
        for name, cfg in configs().items():
            gen = SpectrumGenerator(basis, cfg, device=device)
            ref = reference_cls(basis, cfg, device=device) if reference_cls else None
            for with_clean in (True, False):
                key = f"{device.type}/{name}/{'with' if with_clean else 'without'}_clean"
                r = time_batches(gen, ref, args.batch, args.repeats, with_clean, device)
                results["runs"][key] = r
                line = (
                    f"{key:36s} {r['spectra_per_s_best']:7.0f} spectra/s (best), "
                    f"{r['spectra_per_s_median']:7.0f} (median), "
                    f"{r['spectra_per_core_s']:6.0f} per core-s"
                )
                if ref is not None:
                    rr = r["reference"]
                    line += (
                        f" | reference {rr['spectra_per_s_median']:6.0f} (median), "
                        f"{rr['spectra_per_core_s']:5.0f} per core-s | speed-up wall "
                        f"{r['speedup_wall_median']:.1f}x, CPU {r['speedup_cpu_median']:.1f}x"
                    )
                print(line, flush=True)
    with open("/proc/loadavg") as f:
        results["load_average_after"] = f.read().split()[:3]
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
