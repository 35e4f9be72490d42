"""Speed and accuracy of the linear-combination fit (issue 9) on synthetic MEGA-PRESS sets.

Set "physics": spectra from gabaapp.physics' Siemens Big GABA preset basis (123.23 MHz,
2000 Hz, 2048 points, TE 68 ms) with random concentrations, Voigt broadening, shift, phase and
independent ON/OFF noise (seeded), fitted with the same basis (the speed figure; accuracy here
is the noise-limited best case). Set "fida": spectra from the FID-A basis in ../shared/data
(another simulator, 2500 Hz / 4096 points; AGPL, read in place) fitted with gabaapp's basis
for FID-A's sequence, resampled once: accuracy with an independent basis. Each spectrum is
fitted with `fit_megapress` on one core; accuracy uses the paper's metric (per-spectrum
max-normalised MAE, gabaapp.training.metrics). Result: benchmarks/results/lcm_speed.json.

    .venv/bin/python benchmarks/bench_lcm_speed.py [n_spectra]
"""

from __future__ import annotations

import os

# one core: set before numpy loads its BLAS (the fit also limits BLAS threads itself)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.io as sio  # noqa: E402

from gabaapp.config import LcmConfig  # noqa: E402
from gabaapp.constants import METABOLITES  # noqa: E402
from gabaapp.lcm import fit_megapress, resample_basis  # noqa: E402
from gabaapp.physics.megapress import simulate_spin_system  # noqa: E402
from gabaapp.physics.sequence import MegaPressSequence  # noqa: E402
from gabaapp.physics.spins import load_spin_system  # noqa: E402
from gabaapp.spectra import Acquisition, Basis, fid_to_spectrum  # noqa: E402
from gabaapp.training.metrics import evaluate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "lcm_speed.json"
FIDA = REPO.parent / "shared" / "data" / "mrsnet_fida_megapress_basis"
# mM ranges of the synthetic sets (typical adult brain values, Govindaraju et al. 2000)
CONC_LOW = np.array([4.0, 0.5, 1.0, 4.0, 6.0])
CONC_HIGH = np.array([10.0, 3.0, 6.0, 14.0, 16.0])
SNR = 100.0  # max |edit-OFF spectrum| / spectral noise SD


def make_basis(sequence: MegaPressSequence | None = None) -> Basis:
    """Return gabaapp's basis for `sequence` (default: the Siemens Big GABA preset)."""
    seq = sequence or MegaPressSequence.preset("siemens")
    pairs = [simulate_spin_system(load_spin_system(m), seq) for m in METABOLITES]
    off, on = (np.array(x) for x in zip(*pairs, strict=True))
    return Basis(METABOLITES, off, on, seq.acquisition(), seq.hash())


def fida_basis() -> Basis:
    """Return the FID-A basis (SOURCE.md: 2.89425 T, 0.4 ms, 4096 points, centre 3.0 ppm)."""
    off, on = [], []
    for m in METABOLITES:
        for cond, out in (("OFF", off), ("ON", on)):
            f = FIDA / f"FIDA_{m}_MEGA-PRESS_3T_EDIT_{cond}_LW_1.000000.mat"
            out.append(sio.loadmat(f, squeeze_me=True)["fid"])
    acq = Acquisition(2.89425309168 * 42.577478518, 0.4e-3, 4096, 0.068, centre_ppm=3.0)
    return Basis(METABOLITES, np.array(off), np.array(on), acq, "fida-mrsnet")


def make_spectrum(basis: Basis, rng: np.random.Generator):
    """Return (off, diff, true concentrations) of one synthetic MEGA-PRESS spectrum."""
    acq = basis.acquisition
    t = acq.time_axis()
    conc = rng.uniform(CONC_LOW, CONC_HIGH)
    lorentz, gauss = rng.uniform(2, 8), rng.uniform(0, 5)
    shift, phase = rng.uniform(-5, 5), np.deg2rad(rng.uniform(-30, 30))
    factor = np.exp(
        (2j * np.pi * shift - np.pi * lorentz) * t
        - (np.pi * gauss * t) ** 2 / (4 * np.log(2))
        + 1j * phase
    )
    off, on = (conc @ basis.off) * factor, (conc @ basis.on) * factor
    # spectral noise SD = peak / SNR; per time point that is / sqrt(N)
    sd_t = np.abs(fid_to_spectrum(off)).max() / SNR / np.sqrt(acq.n_points)
    off = off + sd_t * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    on = on + sd_t * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    return off, on - off, conc


def run(data, acq: Acquisition, basis: Basis, config: LcmConfig) -> dict:
    """Fit every (off, diff, truth) in `data`; return timings and accuracy."""
    fit_megapress(data[0][0], data[0][1], acq, basis, config)  # warm-up
    times, cpu, preds, crlb, conv = [], [], [], [], []
    for off, diff, _ in data:
        t0, c0 = time.perf_counter(), time.process_time()
        r = fit_megapress(off, diff, acq, basis, config)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        preds.append(r.amplitude_array)
        crlb.append(r.crlb_percent_array)
        conv.append(r.converged)
    truth = np.array([c for _, _, c in data])
    preds = np.array(preds)
    metrics = evaluate(truth, preds)
    # relative errors of ratios to Cr: independent of each basis's overall scale
    rel = (preds / preds[:, :1]) / (truth / truth[:, :1]) - 1
    return {
        "seconds_per_spectrum": {
            "median": float(np.median(times)),
            "mean": float(np.mean(times)),
            "p95": float(np.percentile(times, 95)),
        },
        # CPU time of this process: robust to other jobs sharing the machine
        "cpu_seconds_per_spectrum": {
            "median": float(np.median(cpu)),
            "p95": float(np.percentile(cpu, 95)),
        },
        "converged_fraction": float(np.mean(conv)),
        "mae_max_normalised": {k: v.mae for k, v in metrics.items()},
        "r2": {k: v.r2 for k, v in metrics.items()},
        "median_crlb_percent": dict(zip(METABOLITES, np.median(crlb, 0).tolist(), strict=True)),
        "median_abs_rel_error_of_ratio_to_cr_percent": dict(
            zip(METABOLITES, (100 * np.median(np.abs(rel), 0)).tolist(), strict=True)
        ),
    }


def main(n: int = 100) -> None:
    out = {}
    basis = make_basis()
    rng = np.random.default_rng(9)
    data = [make_spectrum(basis, rng) for _ in range(n)]
    for mode in ("joint", "separate"):
        out[f"physics_{mode}"] = run(data, basis.acquisition, basis, LcmConfig(mode=mode))
    # LCModel-style free line-shape kernel on top of the Voigt model (LcmConfig.lineshape)
    free = LcmConfig(lineshape="free")
    out["physics_joint_free"] = run(data, basis.acquisition, basis, free)
    if FIDA.is_dir():
        fida = fida_basis()
        ours = make_basis(MegaPressSequence.preset("paper", ideal_refocusing=True))
        ours = resample_basis(ours, fida.acquisition)
        rng = np.random.default_rng(10)
        data = [make_spectrum(fida, rng) for _ in range(n)]
        out["fida_joint"] = run(data, fida.acquisition, ours, LcmConfig())
    out["setup"] = {
        "n_spectra": n,
        "snr_peak_over_noise_sd": SNR,
        "physics_basis": "MegaPressSequence.preset('siemens'): TE 68 ms, 2000 Hz, 2048 points",
        "fida": "FID-A basis spectra (4096 points, 2500 Hz) fitted with preset('paper', "
        "ideal_refocusing=True) resampled to FID-A's grid",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, one BLAS thread",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    for key, res in out.items():
        if key == "setup":
            continue
        s, c = res["seconds_per_spectrum"], res["cpu_seconds_per_spectrum"]
        print(
            f"{key}: wall median {s['median']:.3f} s (p95 {s['p95']:.3f}); CPU median "
            f"{c['median']:.3f} s (p95 {c['p95']:.3f}); total MAE "
            f"{res['mae_max_normalised']['total']:.4f}, GABA MAE "
            f"{res['mae_max_normalised']['GABA']:.4f}; converged {res['converged_fraction']:.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
