"""Residual of the linear-combination fit on real 3 T PRESS spectra (issue 9: noise-like?).

Converts the Siemens RDA (TE 30) and Philips SDAT (TE 35) spectra of ../shared/data with
spec2nii, fits them with a 16-metabolite gabaapp.physics PRESS basis for their own TE and
sampling plus the MM set (as tests/unit/test_lcm_realdata.py does), and writes residual SD /
noise SD over the fit window and per 0.1 ppm band, the residual's power beyond 0.2 s (a check
of the noise SD inside the window), the chosen baseline stiffness, tNAA/tCr,
Glx/tCr and the fit time to benchmarks/results/lcm_realdata.json. With `--plot DIR` it also
saves data/model/baseline/residual figures there.

    .venv/bin/python benchmarks/bench_lcm_realdata.py [--plot /tmp]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gabaapp.config import LcmConfig
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.lcm.fit import fit_spectrum
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import available_metabolites, load_spin_system
from gabaapp.spectra import Basis

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "lcm_realdata.json"
REAL = {
    "siemens_rda": ["rda", "suspect_siemens_press/SVS_30.rda"],
    "philips_sdat": [
        "philips",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.sdat",
        "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.spar",
    ],
}


def load(name: str, fmt: str, files: list[str], out: Path):
    """Return (averaged FID, Acquisition, PRESS Basis) of one real spectrum."""
    spec2nii = Path(sys.executable).with_name("spec2nii")
    cmd = [str(spec2nii), fmt, "-o", str(out), "-f", name, *(str(SHARED / f) for f in files)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    fids = load_nifti_mrs(out / f"{name}.nii.gz")
    acq = fids.acquisition
    seq = MegaPressSequence.for_te(
        acq.te_s * 1e3,
        editing=False,
        f0_mhz=acq.f0_mhz,
        spectral_width_hz=acq.spectral_width_hz,
        n_points=acq.n_points,
    )
    names = available_metabolites()
    pairs = [simulate_spin_system(load_spin_system(n), seq) for n in names]
    off, on = zip(*pairs, strict=True)
    basis = Basis(tuple(names), np.array(off), np.array(on), seq.acquisition(), seq.hash())
    return fids.data.reshape(-1, acq.n_points).mean(axis=0), acq, basis


def band_ratios(r, width_ppm: float = 0.1) -> dict[str, float]:
    """Return residual SD / noise SD per ppm band of the fit window."""
    res, nsd = r.residual["single"], r.noise_sd["single"]
    edges = np.arange(r.ppm[0], r.ppm[-1] + 1e-9, width_ppm)
    out = {}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (r.ppm >= lo) & (r.ppm < hi)
        out[f"{lo:.1f}-{hi:.1f}"] = float(np.sqrt(np.mean(np.abs(res[sel]) ** 2) / 2) / nsd)
    return out


def late_power(r, f0_mhz: float, t_min_s: float = 0.2) -> float:
    """Return residual power / noise variance at pseudo-times > t_min_s (white noise: 1).

    The inverse FFT of the windowed residual is a time signal; beyond ~0.2 s the fitted lines
    have decayed below the noise, so there the residual should be noise of the measured SD.
    """
    res = r.residual["single"] / r.noise_sd["single"]
    t_s = np.fft.fftfreq(res.size, d=(r.ppm[1] - r.ppm[0]) * f0_mhz)
    pseudo = np.fft.ifft(np.fft.ifftshift(res)) * np.sqrt(res.size)
    return float(np.mean(np.abs(pseudo[np.abs(t_s) > t_min_s]) ** 2) / 2)


def plot(r, name: str, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nsd = r.noise_sd["single"]
    fig, ax = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    ax[0].plot(r.ppm, r.data["single"].real, "k", lw=0.7, label="data")
    ax[0].plot(r.ppm, r.model["single"].real, "r", lw=0.7, label="model")
    ax[0].plot(r.ppm, r.baseline["single"].real, "b", lw=0.7, label="baseline")
    ax[0].legend()
    ax[0].invert_xaxis()
    ax[1].plot(r.ppm, r.residual["single"].real / nsd, "k", lw=0.6)
    ax[1].set_ylabel("residual / noise SD")
    ax[1].set_xlabel("ppm")
    fig.savefig(folder / f"lcm_realdata_{name}.png", dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None, help="folder for figures")
    parser.add_argument("--lineshape", choices=("voigt", "free"), default="voigt")
    parser.add_argument("--lineshape-stiffness", type=float, default=None)
    parser.add_argument("--lineshape-halfwidth-ppm", type=float, default=None)
    args = parser.parse_args(argv)
    extra = {}
    if args.lineshape_stiffness is not None:
        extra["lineshape_stiffness"] = args.lineshape_stiffness
    if args.lineshape_halfwidth_ppm is not None:
        extra["lineshape_halfwidth_ppm"] = args.lineshape_halfwidth_ppm
    config = LcmConfig(include_mm=True, lineshape=args.lineshape, **extra)
    results = RESULTS if args.lineshape == "voigt" else RESULTS.with_name("lcm_realdata_free.json")
    out: dict[str, object] = {
        "lineshape": args.lineshape,
        "lineshape_stiffness": config.lineshape_stiffness,
        "lineshape_halfwidth_ppm": config.lineshape_halfwidth_ppm,
        "machine": f"{platform.machine()} {platform.processor()}; 2-core CPU sandbox, shared",
        "load_average": list(__import__("os").getloadavg()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in REAL.items():
            fid, acq, basis = load(name, fmt, files, Path(tmp))
            t0 = time.process_time()
            r = fit_spectrum(fid, acq, basis, basis.names, config)
            cpu_s = time.process_time() - t0
            a = r.amplitudes
            tcr = a["Cr"] + a["PCr"]
            out[name] = {
                "residual_to_noise": r.residual_to_noise["single"],
                "residual_to_noise_by_band": band_ratios(r),
                "noise_sd": r.noise_sd["single"],
                "late_residual_power": late_power(r, acq.f0_mhz),
                "baseline_stiffness": r.baseline_stiffness,
                "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
                "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
                "lorentz_hz": r.lorentz_hz,
                "gauss_hz": r.gauss_hz,
                "converged": r.converged,
                "cpu_seconds": cpu_s,
            }
            print(
                f"{name}: residual/noise {r.residual_to_noise['single']:.2f}, stiffness "
                f"{r.baseline_stiffness:.0e}, tNAA/tCr {out[name]['tnaa_to_tcr']:.2f}, "
                f"Glx/tCr {out[name]['glx_to_tcr']:.2f}, CPU {cpu_s:.2f} s"
            )
            if args.plot:
                plot(r, name, args.plot)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
