"""Accuracy of gabaapp.preproc: alignment, outlier rejection, ON/OFF subtraction, real data.

1. Alignment: synthetic transients (tests/unit/test_preproc_synth.py: NAA/Cr/Cho/Cr-CH2
   Lorentzians 6-8 Hz, residual water, 4 coils) with a random-walk drift (0.4 Hz steps, several
   Hz over the scan) and 10 deg phase jitter; RMS error of the recovered offsets (common
   offset removed) per method and per-transient SNR (NAA height / spectral noise SD of one
   combined transient). 5 seeds x 2 edit conditions x 64 transients each.
2. Outliers: 100 dynamics x 2, 8 corrupted transients (signal loss + broadening, or a
   spurious broad line), per-transient SNR 20; detection rate and false-rejection rate.
3. FID-A MEGA-PRESS basis (shared/data, independent simulation): Cr residual in DIFF after
   alignment (Cr + NAA only, ON shifted 0.8 Hz / 6 deg against OFF, drift, SNR 200).
4. Real data: 7T STEAM (4 coils x 16 transients + water): SNR, NAA FWHM, frequency spread,
   plain average vs chain; 3T PRESS Philips (with water reference) and Siemens RDA: SNR, FWHM.
Result: benchmarks/results/preproc_accuracy.json.

    .venv/bin/python benchmarks/bench_preproc_accuracy.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_preproc_realdata import FIDA, _fida, _mega_transients  # noqa: E402
from test_preproc_synth import ACQ, make_scan  # noqa: E402

from gabaapp.config import PreprocConfig  # noqa: E402
from gabaapp.io.nifti_mrs import load_nifti_mrs  # noqa: E402
from gabaapp.preproc.align import align_transients  # noqa: E402
from gabaapp.preproc.chain import preprocess_megapress, preprocess_unedited  # noqa: E402
from gabaapp.preproc.coils import coil_weights, combine_coils, noise_covariance  # noqa: E402
from gabaapp.preproc.outliers import deviation_from_median, find_outliers  # noqa: E402
from gabaapp.preproc.qc import diff_residual  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "preproc_accuracy.json"
SHARED = ROOT.parent / "shared" / "data"


def _combined(scan):
    data = scan.metab.data
    return combine_coils(data, coil_weights(scan.water.data, noise_covariance(data)))


def alignment_accuracy() -> dict:
    out = {}
    for snr in (5, 10, 20, 30, 40):
        for method in ("sr", "robust"):
            ef, ep = [], []
            for seed in range(5):
                scan = make_scan(np.random.default_rng(seed), n_coils=4, n_dyn=64, snr=snr)
                x = _combined(scan)
                for e in (0, 1):
                    res = align_transients(x[:, e], ACQ, method=method)
                    f = res.freq_hz - scan.drift_hz[:, e]
                    p = np.angle(np.exp(1j * (res.phase_rad - scan.phase_rad[:, e])))
                    ef.append(f - f.mean())
                    ep.append(p - p.mean())
            out[f"{method}_snr{snr}"] = {
                "rms_hz": round(float(np.sqrt(np.mean(np.concatenate(ef) ** 2))), 4),
                "rms_deg": round(float(np.degrees(np.sqrt(np.mean(np.concatenate(ep) ** 2)))), 3),
            }
    return out


def outlier_rates() -> dict:
    found = total_bad = false = total_good = 0
    for seed in range(5):
        scan = make_scan(
            np.random.default_rng(100 + seed), n_coils=4, n_dyn=100, snr=20.0, n_corrupted=8
        )
        x = _combined(scan)
        for e in (0, 1):
            aligned = align_transients(x[:, e], ACQ).aligned
            rejected, _ = find_outliers(deviation_from_median(aligned, ACQ), 3.0)
            bad = scan.corrupted[:, e]
            found += int(rejected[bad].sum())
            total_bad += int(bad.sum())
            false += int(rejected[~bad].sum())
            total_good += int((~bad).sum())
    return {
        "detected": f"{found}/{total_bad}",
        "false_rejections": f"{false}/{total_good}",
        "false_rejection_rate": round(false / total_good, 4),
    }


def fida_cr_residual() -> dict:
    acq, off, on = _fida(SHARED, ("Cr", "NAA"))
    fids = _mega_transients(np.random.default_rng(1), acq, off, on, snr_per_transient=200.0)
    plain = preprocess_megapress(
        fids, options=PreprocConfig(align_method="none", align_on_to_off=False)
    )
    r = preprocess_megapress(fids)
    acq_all, off_all, on_all = _fida(SHARED, FIDA)
    full = preprocess_megapress(
        _mega_transients(np.random.default_rng(0), acq_all, off_all, on_all)
    )
    return {
        "cr_residual_3p03_aligned": round(diff_residual(r.off, r.diff, acq, 3.03), 4),
        "cr_residual_3p92_aligned": round(diff_residual(r.off, r.diff, acq, 3.92), 4),
        "cr_residual_3p03_plain": round(diff_residual(plain.off, plain.diff, acq, 3.03), 4),
        "on_off_shift_hz_estimated": round(r.qc["on_off_shift_hz"], 3),
        "full_mix_qc": {k: round(v, 3) for k, v in full.qc.items()},
    }


def _spec2nii(args, out: Path) -> Path:
    exe = Path(sys.executable).with_name("spec2nii")
    subprocess.run(
        [str(exe), args[0], "-o", str(out.parent), "-f", out.name, *args[1:]],
        check=True,
        capture_output=True,
    )
    return out.with_suffix(".nii.gz")


def real_data() -> dict:
    keys = ("snr", "naa_fwhm_hz", "cr_fwhm_hz", "water_fwhm_hz", "naa_ppm", "drift_range_hz",
            "drift_sd_hz", "drift_after_sd_hz", "phase_sd_deg")  # fmt: skip
    pick = lambda r: {k: round(r.qc[k], 3) for k in keys if k in r.qc}  # noqa: E731
    folder = SHARED / "nifti_mrs_tools_steam7t"
    metab = load_nifti_mrs(folder / "metab_raw.nii.gz")
    water = load_nifti_mrs(folder / "wref_raw.nii.gz")
    plain = preprocess_unedited(
        metab, water, PreprocConfig(align_method="none", reject_outliers=False)
    )
    chain = preprocess_unedited(metab, water)
    out = {"steam7t_plain_average": pick(plain), "steam7t_chain": pick(chain)}
    with tempfile.TemporaryDirectory() as tmp:
        base = SHARED / "osprey_philips/UnEdited/sub-01/ses-01/mrs"
        act = base / "sub-01_ses-01_press/sub-01_PRESS_35_act"
        ref = base / "sub-01_ses-01_press-ref/sub-01_PRESS_35_ref"
        m = load_nifti_mrs(_spec2nii(["philips", f"{act}.sdat", f"{act}.spar"], Path(tmp) / "act"))
        w = load_nifti_mrs(_spec2nii(["philips", f"{ref}.sdat", f"{ref}.spar"], Path(tmp) / "ref"))
        out["philips_press_3t"] = pick(preprocess_unedited(m, w))
        s = load_nifti_mrs(
            _spec2nii(["rda", str(SHARED / "suspect_siemens_press/SVS_30.rda")], Path(tmp) / "sie")
        )
        out["siemens_press_3t_rda"] = pick(preprocess_unedited(s, None))
    return out


def main() -> None:
    t0 = time.perf_counter()
    out = {
        "alignment": alignment_accuracy(),
        "outliers": outlier_rates(),
        "fida_mega": fida_cr_residual(),
        "real_data": real_data(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    out["runtime_s"] = round(time.perf_counter() - t0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
