"""Throughput and memory of the on-the-fly spectrum generator (issue 6 targets).

Measures, for batches of 1024 network-ready spectra on the CPU (all torch threads) and on CUDA
when present: spectra per second of `SpectrumGenerator.batch` for the presets "none",
"paper" and "default", each with `sampling="basis"` (FIDs at the basis' sampling, chirp-z grid
transform) and `sampling="grid"` (grid-matched sampling, one FFT per FID), with and without the
clean copy, and the peak resident memory added by one batch of 1024 (measured in a fresh
child process: VmHWM after the batch minus VmRSS before it).

All generators of one preset are timed in the same process, interleaved batch by batch (so
they see the same load). Wall time and process CPU time are both recorded: on a shared machine
CPU seconds (spectra per core-second) are the steadier figure. The floor: single-threaded
rates of the two unavoidable costs, complex64 FFTs (torch) and normal random numbers (torch's
generator, and the counter-based one of gabaapp.simulate.noise that the CPU path uses), and
what they allow per spectrum at grid sampling.

On CPU the grid path is timed three ways side by side: "grid" (current code, with the compiled
numba loops of gabaapp.preproc.kernels / gabaapp.simulate.fused), "grid_torch" (current code
with those loops switched off, as where numba is missing) and "grid_before" (the generator,
line and grid-function code of git BEFORE_COMMIT, the grid path before this work). With
--reference, also the code as first committed (git REFERENCE_COMMIT). Old code is read with
`git show`; nothing is copied into the repository.

Basis: the bundled default basis when built, else the FID-A MEGA-PRESS basis in
../shared/data (read in place), else a singlet basis; the JSON names which and its sampling.
Grid sampling re-simulates the basis once (gabaapp.physics cache) and needs a gabaapp basis.

Usage: .venv/bin/python benchmarks/bench_simulate_throughput.py [--repeats 5] [--reference]
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
# The last commit before the compiled (numba) loops, recycled outputs and the persistent worker
# pool: "grid_before" rows time its generator side by side with the current one.
BEFORE_COMMIT = "4e82789"


def load_reference(commit: str = REFERENCE_COMMIT, tag: str = "reference"):
    """Return the SpectrumGenerator class of git `commit` (with its own lines and grid
    function, as modules _<tag>_features etc.), or None when git or that commit is
    unavailable."""
    import types

    def source(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:{path}"],
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
        .replace("from gabaapp.preproc.features import", f"from _{tag}_features import")
        .replace("from gabaapp.simulate.lines import", f"from _{tag}_lines import")
    )
    for name in ("features", "lines", "generator"):
        mod = types.ModuleType(f"_{tag}_{name}")
        sys.modules[mod.__name__] = mod
        exec(compile(texts[name], f"{commit}:{name}.py", "exec"), mod.__dict__)
    return sys.modules[f"_{tag}_generator"].SpectrumGenerator


class WithoutNumba:
    """The current generator with its compiled loops switched off (torch and array-API code
    only, as where numba is missing), for side-by-side timing."""

    def __init__(self, gen):
        self.gen = gen
        gen._fused = False

    def batch(self, n, generator, *, with_clean=True):
        from gabaapp.preproc import kernels

        kernels.AVAILABLE = False
        try:
            return self.gen.batch(n, generator, with_clean=with_clean)
        finally:
            kernels.AVAILABLE = True


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
    """Return {preset: config} (sampling "basis"; the grid variant is made by replace)."""
    from gabaapp.config import AugmentationConfig, SynthesisConfig

    return {
        "none": SynthesisConfig(augmentation=AugmentationConfig.none()),
        "paper": SynthesisConfig.paper(),
        "default": SynthesisConfig(),
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


def time_batches(gens: dict, n: int, repeats: int, with_clean: bool, device) -> dict:
    """Time gen.batch for every generator in `gens`, interleaved batch by batch."""
    state = {k: torch.Generator(device=device).manual_seed(0) for k in gens}
    for k, gen in gens.items():  # warm-up (plans, caches, buffers)
        gen.batch(n, state[k], with_clean=with_clean)
    walls: dict = {k: [] for k in gens}
    cpus: dict = {k: [] for k in gens}
    for _ in range(repeats):
        for k, gen in gens.items():
            w, c = _timed(lambda g=gen, k=k: g.batch(n, state[k], with_clean=with_clean), device)
            walls[k].append(w)
            cpus[k].append(c)
    return {k: _summary(n, walls[k], cpus[k]) for k in gens}


def floor(device) -> dict:
    """Return single-threaded rates of FFTs and normal random numbers, and the per-spectrum
    floor they set at grid sampling (per OFF/ON pair: a 2048-point search FFT and two
    4096-point FFTs for the input, two more for the clean copy; 2 x 2 x n normals)."""
    from gabaapp.preproc.features import grid_acquisition

    n = grid_acquisition(123.23, 2.048).n_points
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(64, 4096, dtype=torch.complex64, device=device)
        x2 = torch.randn(64, 2048, dtype=torch.complex64, device=device)
        z = torch.empty(64, 4 * n, device=device)
        g = torch.Generator(device=device).manual_seed(0)

        def best(fn) -> float:
            fn()
            times = []
            for _ in range(20):
                times.append(_timed(fn, device)[0])
            return min(times) / 64

        fft4096 = best(lambda: torch.fft.fft(x))
        # one row per call: torch's per-call cost (descriptor set-up, output allocation)
        x1 = x[:1].clone()
        fft4096_one_row = 64 * best(lambda: torch.fft.fft(x1))
        fft2048 = best(lambda: torch.fft.fft(x2))
        normals = best(lambda: z.normal_(generator=g))
        counter = None
        dfti_rates = {}
        if device.type == "cpu":
            from gabaapp.preproc import dfti
            from gabaapp.simulate import fused

            if dfti.available():  # the same MKL routine, a kept descriptor, 32 rows per call
                for length, src in ((4096, x), (2048, x2)):
                    a = src[:32].numpy().copy()
                    o = a.copy()
                    dfti_rates[f"fft{length}_dfti_us"] = 1e6 * best(lambda a=a, o=o: dfti.fft(a, o))
                    dfti_rates[f"fft{length}_dfti_us"] *= 64 / 32  # best() divides by 64

            if fused.AVAILABLE:
                zn = z.view(-1).numpy()
                counter = best(lambda: fused.fill_normal_pairs(7, 0, zn))
    finally:
        torch.set_num_threads(threads)
    result = {
        "grid_n_points": n,
        "fft4096_us": 1e6 * fft4096,
        "fft2048_us": 1e6 * fft2048,
        "fft4096_one_row_per_call_us": 1e6 * fft4096_one_row,
        "normals_per_spectrum_us": 1e6 * normals,
        "normal_ns_each": 1e9 * normals / (4 * n),
        **dfti_rates,
    }
    ffts_with, ffts_without = fft2048 + 4 * fft4096, fft2048 + 2 * fft4096
    # the floor with torch's normals, and with the counter-based ones the CPU path now uses
    for tag, noise in (("torch_normals", normals), ("counter_normals", counter)):
        if noise is None:
            continue
        result[f"{tag}_ns_each"] = 1e9 * noise / (4 * n)
        for clean, ffts in (("with_clean", ffts_with), ("without_clean", ffts_without)):
            per = ffts + noise
            result[f"floor_us_per_spectrum_core_{clean}_{tag}"] = 1e6 * per
            result[f"floor_spectra_per_s_2_cores_{clean}_{tag}"] = 2 / per
    return result


def _numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return -1


def memory_child(preset: str, n: int) -> None:
    """Child process: print the extra peak RSS (bytes) of one batch of n after a warm-up of 8.

    `preset` is "<preset>/<sampling>"."""
    from dataclasses import replace

    basis, _ = load_basis()
    from gabaapp.simulate import SpectrumGenerator

    name, sampling = preset.split("/")
    gen = SpectrumGenerator(basis, replace(configs()[name], sampling=sampling))
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
    ap.add_argument("--reference", action="store_true", help="also time git REFERENCE_COMMIT")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch)
        return
    from dataclasses import replace

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
    reference_cls = load_reference() if args.reference else None
    results["reference"] = (
        f"git {REFERENCE_COMMIT} (whole-batch generator)" if reference_cls else "not run"
    )
    before_cls = load_reference(BEFORE_COMMIT, "before")
    results["grid_before"] = (
        f"git {BEFORE_COMMIT} (grid path before the compiled loops)" if before_cls else "not run"
    )
    results["numba"] = _numba_version()
    with open("/proc/loadavg") as f:
        results["load_average_before"] = f.read().split()[:3]
    for device in devices:
        results["floor"] = floor(device) if device.type == "cpu" else results.get("floor")
        for name, cfg in configs().items():
            grid_cfg = replace(cfg, sampling="grid")
            gens = {
                "basis": SpectrumGenerator(basis, cfg, device=device),
                "grid": SpectrumGenerator(basis, grid_cfg, device=device),
            }
            if device.type == "cpu":
                gens["grid_torch"] = WithoutNumba(SpectrumGenerator(basis, grid_cfg))
                if before_cls:
                    gens["grid_before"] = before_cls(basis, grid_cfg)
            if reference_cls:
                gens["reference"] = reference_cls(basis, cfg, device=device)
            for with_clean in (True, False):
                key = f"{device.type}/{name}/{'with' if with_clean else 'without'}_clean"
                r = time_batches(gens, args.batch, args.repeats, with_clean, device)
                r["speedup_grid_over_basis_cpu_time"] = (
                    r["basis"]["cpu_s_median"] / r["grid"]["cpu_s_median"]
                )
                if "grid_before" in r:
                    r["speedup_grid_over_before_cpu_time"] = (
                        r["grid_before"]["cpu_s_median"] / r["grid"]["cpu_s_median"]
                    )
                results["runs"][key] = r
                for k, v in r.items():
                    if isinstance(v, dict):
                        print(
                            f"{key:30s} {k:11s} {v['spectra_per_s_best']:7.0f} spectra/s (best), "
                            f"{v['spectra_per_s_median']:7.0f} (median), "
                            f"{v['spectra_per_core_s']:6.0f} per core-s",
                            flush=True,
                        )
    with open("/proc/loadavg") as f:
        results["load_average_after"] = f.read().split()[:3]
    for name in ("paper", "default"):
        for sampling in ("basis", "grid"):
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    f"{name}/{sampling}",
                    "--batch",
                    str(args.batch),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            extra = json.loads(child.stdout.strip().splitlines()[-1])["extra_peak_bytes"]
            results["runs"][f"cpu/{name}/{sampling}/memory_extra_peak_mb"] = extra / 2**20
            print(f"cpu/{name}/{sampling}: one batch of {args.batch} adds {extra / 2**20:.0f} MB")
    print(json.dumps(results["floor"], indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
