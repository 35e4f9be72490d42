"""Participant level for one 32-coil x 320-transient MEGA-PRESS scan, NIfTI-MRS to report.

Measures, in one process after imports (interpreter start-up excluded):
1. the step functions of gabaapp.pipeline for one scan (load, preprocess, network grid,
   quantify with the paper-size YAE and 32 MC-dropout passes, derivatives + figures,
   participant HTML), cold (first scan: model loading included) and warm (repeats);
2. the nipype participant level over N such scans with --nprocs 1 and 2 (scaling).

The YAE has random weights of the paper's architecture (inference cost is what matters; the
bundled weights are not needed). Writes benchmarks/results/bench_participant_scan.json.

    .venv/bin/python benchmarks/bench_participant_scan.py [--repeats 3] [--scaling-scans 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gabaapp import pipeline, testing
from gabaapp.io.nifti_mrs import save_nifti_mrs

N_COILS, N_PER_CONDITION = 32, 160  # 320 transients in all, as in Big GABA
RESULT = Path(__file__).parent / "results" / "bench_participant_scan.json"


def make_dataset(root: Path, n_scans: int, rng: np.random.Generator) -> Path:
    """Write a BIDS dataset of `n_scans` subjects with full-size scans (copies of one scan)."""
    testing.write_bids_dataset(
        root, rng, subjects=("01",), acq="megapress", n_coils=2, n_transients=2
    )
    mrs = root / "sub-01" / "mrs"
    fids = testing.make_mega_fids(rng, n_coils=N_COILS, n_transients=N_PER_CONDITION)
    testing.write_mega_nifti_mrs(mrs / "sub-01_acq-megapress_svs.nii.gz", fids)
    save_nifti_mrs(
        mrs / "sub-01_acq-megapress_mrsref.nii.gz",
        testing.make_water_fids(rng, n_coils=N_COILS),
        header_extra={"EchoTime": 0.068, "WaterSuppressed": False},
    )
    sidecar = json.loads((mrs / "sub-01_acq-megapress_svs.json").read_text())
    sidecar["NumberOfTransients"] = 2 * N_PER_CONDITION
    (mrs / "sub-01_acq-megapress_svs.json").write_text(json.dumps(sidecar))
    for i in range(2, n_scans + 1):
        sub = f"{i:02d}"
        dest = root / f"sub-{sub}" / "mrs"
        dest.mkdir(parents=True, exist_ok=True)
        for f in mrs.iterdir():
            shutil.copy(f, dest / f.name.replace("sub-01", f"sub-{sub}"))
    (root / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{i:02d}\n" for i in range(1, n_scans + 1))
    )
    return root


def time_steps(scan_dir: Path, out_dir: Path, model_dir: Path) -> dict[str, float]:
    """Return the wall time of each pipeline step for sub-01 (seconds)."""
    mrs = scan_dir / "sub-01" / "mrs"
    sidecar = json.loads((mrs / "sub-01_acq-megapress_svs.json").read_text())
    times: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = now - t
        t = now

    metab, water = pipeline.load_scan(
        mrs / "sub-01_acq-megapress_svs.nii.gz", mrs / "sub-01_acq-megapress_mrsref.nii.gz", sidecar
    )
    lap("load")
    pre = pipeline.preprocess_scan(metab, water)
    lap("preprocess")
    x = pipeline.network_grid(pre)
    lap("network_grid")
    q = pipeline.quantify_network(x, "yae", model_dir=model_dir)
    lap("quantify_yae_mc32")
    entities = {"subject": "01", "acquisition": "megapress", "suffix": "svs", "datatype": "mrs"}
    pipeline.write_scan_outputs(
        out_dir, entities, mrs / "sub-01_acq-megapress_svs.nii.gz", pre, [q]
    )
    lap("derivatives_and_figures")
    pipeline.write_participant_report(out_dir, "01", ["yae"])
    lap("participant_html")
    times["total"] = time.perf_counter() - t0
    return times


def time_workflow(bids: Path, base: Path, model_dir: Path, nprocs: int) -> float:
    """Return the wall time of the nipype participant level over every scan in `bids`."""
    from gabaapp.workflows.base import run_participant_level

    out, work = base / f"out_{nprocs}", base / f"work_{nprocs}"
    t = time.perf_counter()
    code = run_participant_level(
        bids, out, work_dir=work, nprocs=nprocs, model_dirs={"yae": model_dir}, validate=False
    )
    elapsed = time.perf_counter() - t
    if code != 0:
        raise RuntimeError(f"participant level failed with exit code {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scaling-scans", type=int, default=4, help="0 skips the nipype part")
    args = parser.parse_args()
    import torch

    from gabaapp.models.card import save_model
    from gabaapp.models.registry import build_model, model_config

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_participant_") as tmp:
        base = Path(tmp)
        torch.manual_seed(0)
        model_dir = base / "yae"
        save_model(model_dir, "yae", build_model("yae", model_config("yae", "yae_paper")))
        bids = make_dataset(base / "bids", max(args.scaling_scans, 1), rng)
        runs = [time_steps(bids, base / f"steps_{i}", model_dir) for i in range(args.repeats)]
        steps = {k: [r[k] for r in runs] for k in (runs[0] if runs else {})}
        result = {
            "scan": f"{N_COILS} coils x {2 * N_PER_CONDITION} transients x 2048 points, complex64",
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
            f"{torch.get_num_threads()}",
            "load_average_at_start": os.getloadavg(),
            "steps_s": {
                k: {"cold": v[0], "warm_median": statistics.median(v[1:] or v)}
                for k, v in steps.items()
            },
            "date": time.strftime("%Y-%m-%d"),
        }
        if args.scaling_scans:
            n = args.scaling_scans
            t1 = time_workflow(bids, base, model_dir, 1)
            t2 = time_workflow(bids, base, model_dir, 2)
            result["workflow"] = {
                "n_scans": n,
                "nprocs1_s": t1,
                "nprocs2_s": t2,
                "per_scan_nprocs1_s": t1 / n,
                "per_scan_nprocs2_s": t2 / n,
                "speedup": t1 / t2,
            }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
