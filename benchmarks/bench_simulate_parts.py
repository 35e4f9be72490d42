"""Where a spectrum's CPU time goes on the compiled grid path, and what two threads cost.

Single-threaded (one 64-spectrum slice at a time, subnormals flushed as in the worker
threads), per spectrum, for the paper and default presets: `SpectrumGenerator.synthesise`
(metabolites, nuisances, noise), the compiled metabolite loop alone (`_fused_metabolites`),
the nuisance loop alone (`fused.grid_nuisances`), the noise of both acquisitions
(`fused.add_noise` x 2), the grid function for the input and its clean copy
(`network_input_and_clean`) with and without a first-order phase, and a whole batch of 1,024
run slice after slice in the calling thread. Then the same batches with two threads in one
process (the benchmark setting) against two single-threaded processes side by side, with the
page faults and system time of each (resource.getrusage). Last, the current code against
the code with one of this round's changes switched off (`VARIANTS`), two threads, one child
process per variant, alternating.

Usage: .venv/bin/python benchmarks/bench_simulate_parts.py
Writes benchmarks/results/simulate_parts.json.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "simulate_parts.json"
sys.path.insert(0, str(REPO / "benchmarks"))


def _per_spectrum_us(fn, n: int = 64, reps: int = 100) -> float:
    """Return the lower-quartile time of fn() in us per spectrum (n spectra per call)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e6 * times[len(times) // 4] / n


def parts() -> dict:
    """Single-threaded per-spectrum costs of the pieces, paper and default presets."""
    from bench_simulate_throughput import load_basis

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    basis, _ = load_basis()
    out: dict = {}
    for preset in ("paper", "default"):
        out[preset] = _preset_parts(basis, preset)
        print(preset, json.dumps(out[preset]), flush=True)
    return out


def _preset_parts(basis, preset: str) -> dict:
    """Return the single-threaded per-spectrum costs (us) of `parts` for one preset."""
    from bench_simulate_throughput import configs

    import gabaapp.simulate.generator as gmod
    from gabaapp.preproc.features import network_input_and_clean
    from gabaapp.simulate import SpectrumGenerator, fused

    gen = SpectrumGenerator(basis, replace(configs()[preset], sampling="grid"))
    g = torch.Generator().manual_seed(3)
    conc, p = gen.sample_concentrations(64, g), gen.sample_parameters(64, g)
    gg = torch.Generator().manual_seed(1)
    r: dict = {}
    r["synthesise"] = _per_spectrum_us(lambda: gen.synthesise(conc, p, gg))
    r["metabolite_loop"] = _per_spectrum_us(lambda: gen._fused_metabolites(conc, p, True))
    if preset == "default":
        for name, keys in (
            ("synthesise_without_gauss", ("gauss_hz",)),
            ("synthesise_without_mismatch", ("onoff_shift_hz", "onoff_phase_deg")),
        ):
            q = dict(p)
            for k in keys:
                q[k] = torch.zeros_like(p[k])
            r[name] = _per_spectrum_us(lambda q=q: gen.synthesise(conc, q, gg))
        off = torch.zeros((64, gen.t_s.shape[0]), dtype=torch.complex64)
        on = torch.zeros_like(off)
        args = gen._nuisance_args(conc, p, gg, True, True)
        keys = ("shift_hz", "phase0_deg", "onoff_shift_hz", "onoff_phase_deg", "onoff_gain")
        head = gmod._np(conc, *(p[k] for k in keys))
        r["nuisance_loop"] = _per_spectrum_us(
            lambda: fused.grid_nuisances(*head, *args, gmod._floats(off), gmod._floats(on))
        )
    fids = gen.synthesise(conc, p, gg)
    o2 = fids["off"].clone()
    n2 = fids["on"].clone()

    def noise():
        for fid, key in ((o2, "noise_off"), (n2, "noise_on")):
            f = gmod._floats(fid)
            fused.add_noise(f, 5, p[key].numpy(), gen.first_weight, gen.noise_scale, f)

    r["noise_both"] = _per_spectrum_us(noise)
    x, c = torch.empty(64, 4, 2048), torch.empty(64, 4, 2048)
    acq = gen.acquisition
    args4 = (fids["off"], fids["on"], fids["clean_off"], fids["clean_on"], acq)
    r["grid_function_with_clean"] = _per_spectrum_us(
        lambda: network_input_and_clean(*args4, align=True, out=x, out_clean=c)
    )
    phase1 = (np.full(64, 0.05), np.full(64, 3.0))
    r["grid_function_with_clean_phase1"] = _per_spectrum_us(
        lambda: network_input_and_clean(*args4, align=True, out=x, out_clean=c, phase1=phase1)
    )
    serial = gmod._run_slices

    def in_order(work, n_slices, device, workers):
        for i in range(n_slices):
            work(i)

    gmod._run_slices = in_order
    try:
        r["batch_1024_in_order"] = _per_spectrum_us(lambda: gen.batch(1024, gg), n=1024, reps=6)
    finally:
        gmod._run_slices = serial
    return {k: round(v, 2) for k, v in r.items()}


# This round's changes, each switched off alone in `ablations` (children): the calling
# thread's torch calls single-threaded during a batch (generator._serial_torch), the FFTs by
# the DFTI of torch's MKL (preproc.dfti), the grid function in one compiled call
# (features._one_call_rows).
VARIANTS = ("current", "torch_threads_in_caller", "torch_fft", "chunk_loop_in_python")


def _switch_off(variant: str) -> None:
    """Switch off one of this round's changes in this process (`VARIANTS`)."""
    import contextlib

    import gabaapp.simulate.generator as gmod
    from gabaapp.preproc import dfti, features

    if variant == "torch_threads_in_caller":

        @contextlib.contextmanager
        def as_before(device):
            yield torch.get_num_threads()

        gmod._serial_torch = as_before
    elif variant == "torch_fft":
        dfti.available = lambda: False
    elif variant == "chunk_loop_in_python":
        features._one_call_rows = lambda *args, **kwargs: None
    elif variant != "current":
        raise ValueError(variant)


def batches_child(threads: int, n_batches: int, variant: str = "current") -> None:
    """Child: default preset, grid, with clean; print rate, user/sys us and faults per spectrum
    (with `variant`'s change switched off, `_switch_off`)."""
    from bench_simulate_throughput import configs, load_basis

    from gabaapp.simulate import SpectrumGenerator

    _switch_off(variant)
    torch.set_num_threads(threads)
    basis, _ = load_basis()
    gen = SpectrumGenerator(basis, replace(configs()["default"], sampling="grid"))
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        gen.batch(1024, g)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(n_batches):
        gen.batch(1024, g)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    n = 1024 * n_batches
    print(
        json.dumps(
            {
                "spectra_per_s": n / wall,
                "user_us": 1e6 * (r1.ru_utime - r0.ru_utime) / n,
                "sys_us": 1e6 * (r1.ru_stime - r0.ru_stime) / n,
                "minor_faults": (r1.ru_minflt - r0.ru_minflt) / n,
            }
        )
    )


def threads_vs_processes(n_batches: int = 6) -> dict:
    """Default preset with the clean copy: one process with two threads, then two
    single-threaded processes at once (their rates summed)."""

    def start(threads: int):
        return subprocess.Popen(
            [sys.executable, __file__, "--child", str(threads), str(n_batches)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def result(proc) -> dict:
        stdout, _ = proc.communicate()
        return json.loads(stdout.strip().splitlines()[-1])

    two_threads = result(start(2))
    procs = [start(1), start(1)]
    singles = [result(p) for p in procs]
    out = {
        "one_process_two_threads": two_threads,
        "two_processes_one_thread_each": singles,
        "two_processes_total_spectra_per_s": sum(s["spectra_per_s"] for s in singles),
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def ablations(rounds: int = 2, n_batches: int = 6) -> dict:
    """Default preset with the clean copy, two threads: the current code and the code with one
    of this round's changes switched off (`VARIANTS`), one child process each, alternating
    for `rounds` rounds (the same load on average); per variant the rounds' results."""
    out: dict = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", "2", str(n_batches), variant],
                capture_output=True,
                text=True,
                check=True,
            )
            out[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(variant, out[variant][-1], flush=True)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        batches_child(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
        return
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": load_before,
        "us_per_spectrum_single_thread": parts(),
        "threads_vs_processes": threads_vs_processes(),
        "ablations_two_threads": ablations(),
    }
    with open("/proc/loadavg") as f:
        results["load_after"] = f.read().split()[:3]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
