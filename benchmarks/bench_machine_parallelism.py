"""How much two processes gain over one on this machine, for the kinds of work a scan does.

`--nprocs 2` can only scale the participant level as far as the machine lets two processes
run side by side. This runs each workload once alone and then twice at the same time (two
processes), and reports the speed-up in throughput (2 x time alone / time of the pair):
* python: a pure-Python loop (cache-resident, no memory traffic);
* zlib: decompressing 40 MB (what loading a .nii.gz spends most of its time on);
* fft: numpy FFTs of a 4096 x 4096 array (memory-heavy numerics, like pre-processing);
* scan: gabaapp's load + pre-processing of one 32-coil x 320-transient MEGA-PRESS scan.
Writes benchmarks/results/machine_parallelism.json.

    .venv/bin/python benchmarks/bench_machine_parallelism.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

RESULT = Path(__file__).parent / "results" / "machine_parallelism.json"


def _python() -> None:
    s = 0
    for i in range(15_000_000):
        s += i * i


def _zlib() -> None:
    data = os.urandom(2_000_000) * 20
    packed = zlib.compress(data, 1)
    for _ in range(5):
        zlib.decompress(packed)


def _fft() -> None:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((4096, 4096))
    for _ in range(3):
        np.fft.fft(a, axis=1)


def _scan(folder: str) -> None:
    from gabaapp import pipeline

    metab, water = pipeline.load_scan(f"{folder}/m.nii.gz", f"{folder}/w.nii.gz", {})
    pipeline.preprocess_scan(metab, water)


def _make_scan(folder: Path) -> None:
    import numpy as np

    from gabaapp import testing
    from gabaapp.io.nifti_mrs import save_nifti_mrs

    rng = np.random.default_rng(0)
    fids = testing.make_mega_fids(rng, n_coils=32, n_transients=160)
    testing.write_mega_nifti_mrs(folder / "m.nii.gz", fids)
    water = testing.make_water_fids(rng, n_coils=32)
    save_nifti_mrs(folder / "w.nii.gz", water, header_extra={"EchoTime": 0.068})


def _run_worker(kind: str, folder: str) -> float:
    """Run one workload in this process; return its wall time (imports excluded)."""
    if kind == "scan":
        from gabaapp import pipeline  # noqa: F401 - import before timing

    t0 = time.perf_counter()
    {"python": _python, "zlib": _zlib, "fft": _fft}.get(kind, lambda: _scan(folder))()
    return time.perf_counter() - t0


def _spawn(kind: str, folder: str, n: int) -> list[float]:
    """Start `n` worker processes at once; return each one's wall time."""
    cmd = [sys.executable, __file__, "--worker", kind, folder]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return [float(p.communicate()[0].strip()) for p in procs]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _make_scan(Path(tmp))
        rows = {}
        for kind in ("python", "zlib", "fft", "scan"):
            alone = min(_spawn(kind, tmp, 1)[0] for _ in range(2))
            pair = max(_spawn(kind, tmp, 2))
            rows[kind] = {"alone_s": alone, "pair_s": pair, "throughput_gain": 2 * alone / pair}
            print(
                f"{kind:7s} alone {alone:.2f} s, two at once {pair:.2f} s: "
                f"{2 * alone / pair:.2f}x throughput"
            )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "workloads": rows,
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(_run_worker(sys.argv[2], sys.argv[3]))
    else:
        main()
