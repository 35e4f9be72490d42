"""Benchmark: where the networks' remaining error comes from (issue 7), against the LCM and the
Cramér-Rao bound, in bins of the noise and linewidth drawn for each spectrum.

On the held-out sets of bench_models_accuracy.py (same draw: seed 20261126, 2,000 spectra per
set) this records, per spectrum, the generator's sampled parameters (noise sigma of OFF and ON
relative to max |FID|, Lorentzian and Gaussian FWHM) and reports the GABA and Cr MAE
(max-normalised per spectrum, gabaapp.training.metrics) of the networks and the LCM, with
their mean signed error (bias) and the MAE left once that bias is removed:

* in bins of the noise sigma (rms of the OFF and ON draws, each U(0, 0.03)) and of the
  linewidth (sim: the Lorentzian FWHM, 2-10 Hz; fida: the Voigt FWHM of the Lorentzian and
  Gaussian drawn, Olivero & Longbothum 1977: 0.5346 fL + sqrt(0.2166 fL^2 + fG^2));
* on the noise-free copies of the same spectra (the generator's clean copy: same line shape,
  shift and phases, no noise): the networks on the clean network input, the LCM on the clean
  FIDs (first `--n-clean` spectra);
* two noise-limited floors, as the MAE an unbiased estimator with that SD would have (the MAE of
  a Gaussian is sqrt(2/pi) SD), on the max-normalised GABA / Cr scale (SD / max true
  concentration; for the LCM's CRLB, which is in its basis' units, SD / its largest fitted
  amplitude): "LCM CRLB", the mean CRLB the LCM reports for its own model (line shape, shift,
  phases and a spline baseline estimated too), and "oracle CRLB", the bound of a linear
  model whose line shape, shift and phases are known: Fisher information
  F = Re(A_off^H A_off) / s_off^2 + Re(A_on^H A_on) / s_on^2 for the broadened basis FIDs A
  (columns per metabolite, made by the generator itself) and the per-sample noise SD s of
  each acquisition (complex noise, s per real component: the generator's rule
  s = sigma x max |FID|); SD = sqrt(diag F^-1). Shift and zero-order phase multiply every
  column by the same unit-modulus factor, so they leave F unchanged. No unbiased estimator can
  beat the oracle bound on these spectra; the metric's division by the predicted maximum adds
  a little on top of it (not included). Checked by Monte Carlo (`oracle_monte_carlo`: least
  squares over 300 noise draws on columns built independently; ratio of SDs in the JSON).

Also per network ("networks_shrinkage"): how it treats each spectrum's largest metabolite on
the sum-normalised scale it is trained on (`shrinkage`).

The LCM's noisy-set predictions and CRLBs are read from bench_models_accuracy.py's
<lcm>_predictions_<set>.tsv when they belong to this draw (run it with `lcm lcm-ideal` first);
otherwise they are fitted here. Writes benchmarks/results/bench_models_error_sources.json.
Run (one thread):
    .venv/bin/python benchmarks/bench_models_error_sources.py [--n 2000] [--n-clean 500]
        [--models gabaapp/data/models/yae-v4 gabaapp/data/models/cnn-v2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from bench_models_accuracy import (  # noqa: E402
    DRAW_SIZE,
    FIDA_DIR,
    LCM_VARIANTS,
    SEED,
    draw_fids,
    lcm_basis,
    lcm_fit_set,
    read_lcm_predictions,
    test_sets,
)

from gabaapp.constants import METABOLITES  # noqa: E402
from gabaapp.models.card import load_model  # noqa: E402
from gabaapp.models.inference import predict  # noqa: E402
from gabaapp.training.loop import draw_set  # noqa: E402
from gabaapp.training.metrics import max_normalise  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MODELS = ("gabaapp/data/models/yae-v4", "gabaapp/data/models/cnn-v2")
REPO = Path(__file__).resolve().parents[1]
NOISE_BINS = ((0.0, 0.01), (0.01, 0.02), (0.02, 0.03))
LINEWIDTH_BINS = {
    "sim": ((2.0, 4.0), (4.0, 7.0), (7.0, 10.0)),
    "fida": ((0.0, 4.0), (4.0, 7.0), (7.0, 13.0)),
}
MAE_PER_SD = math.sqrt(2.0 / math.pi)  # E|X| / SD of a zero-mean Gaussian
REPORTED = ("GABA", "Cr")


def voigt_fwhm(lorentz_hz: np.ndarray, gauss_hz: np.ndarray) -> np.ndarray:
    """Return the Voigt FWHM (Olivero & Longbothum, JQSRT 17:233, 1977; ~0.02 % accurate)."""
    return 0.5346 * lorentz_hz + np.sqrt(0.2166 * lorentz_hz**2 + gauss_hz**2)


def oracle_sd(generator, fids: dict, chunk: int = 64) -> np.ndarray:
    """Return [n, 5] amplitude SDs of the known-line-shape linear model (module docstring).

    The columns are the generator's own clean FIDs of one-hot concentrations with each
    spectrum's parameters, shift, phases and noise set to 0 (they leave F unchanged)."""
    par = fids["params"]
    n, m = fids["y"].shape
    eye = torch.eye(m, dtype=torch.float32)
    s_off = par["noise_off"] * np.abs(fids["clean_off"]).max(axis=1)
    s_on = par["noise_on"] * np.abs(fids["clean_on"]).max(axis=1)
    out = np.full((n, m), np.nan)
    zero = {"shift_hz", "phase0_deg", "phase1_deg_per_ppm", "noise_off", "noise_on"}
    for start in range(0, n, chunk):
        idx = np.arange(start, min(n, start + chunk))
        rep = np.repeat(idx, m)
        p = {
            k: torch.as_tensor(np.zeros_like(v[rep]) if k in zero else v[rep])
            for k, v in par.items()
        }
        conc = eye.repeat(len(idx), 1)
        cols = generator.synthesise(conc, p, torch.Generator().manual_seed(0))
        a_off = cols["clean_off"].numpy().astype(np.complex128).reshape(len(idx), m, -1)
        a_on = cols["clean_on"].numpy().astype(np.complex128).reshape(len(idx), m, -1)
        for j, i in enumerate(idx):
            if s_off[i] <= 0 or s_on[i] <= 0:
                continue
            f = (a_off[j].conj() @ a_off[j].T).real / s_off[i] ** 2
            f += (a_on[j].conj() @ a_on[j].T).real / s_on[i] ** 2
            out[i] = np.sqrt(np.diag(np.linalg.inv(f)))
    return out


def oracle_monte_carlo(generator, fids: dict, sd: np.ndarray, k: int = 3, reps: int = 300):
    """Return, for the first k spectra, the ratio (empirical SD of weighted least-squares
    amplitudes over `reps` noise draws) / `oracle_sd`, per metabolite: ~1 (+-4 % at 300
    draws) when the bound is right. Independent of `oracle_sd`'s construction: the columns
    are the basis FIDs times the Voigt decay exp(-pi fL t - (pi fG t)^2 / (4 ln 2)) written
    out here, the noise complex Gaussian from numpy with the generator's rule."""
    rng = np.random.default_rng(20261126)
    t = generator.acquisition.time_axis()
    par = fids["params"]
    gauss = par.get("gauss_hz", np.zeros_like(par["lorentz_hz"]))
    ratios = []
    for i in range(k):
        fl, fg = float(par["lorentz_hz"][i]), float(gauss[i])
        env = np.exp(-np.pi * fl * t - (np.pi * fg * t) ** 2 / (4 * np.log(2)))
        cols = np.concatenate([generator.basis.off * env, generator.basis.on * env], axis=1)
        clean = fids["y"][i].astype(np.float64) @ cols
        n_t = t.size
        s_off = par["noise_off"][i] * np.abs(clean[:n_t]).max()
        s_on = par["noise_on"][i] * np.abs(clean[n_t:]).max()
        s = np.concatenate([np.full(n_t, s_off), np.full(n_t, s_on)])
        design = np.concatenate([cols.real, cols.imag], axis=1).T / np.concatenate([s, s])[:, None]
        est = []
        for _ in range(reps):
            y = clean + s * (rng.normal(size=2 * n_t) + 1j * rng.normal(size=2 * n_t))
            b = np.concatenate([y.real, y.imag]) / np.concatenate([s, s])
            est.append(np.linalg.lstsq(design, b, rcond=None)[0])
        ratios.append((np.std(est, axis=0) / sd[i]).tolist())
    return ratios


def signed_errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Return max_normalise(pred) - max_normalise(y) [n, 5] (the metric's signed errors)."""
    return max_normalise(pred) - max_normalise(y)


def shrinkage(y: np.ndarray, pred: np.ndarray) -> dict:
    """Return how a model treats each spectrum's largest metabolite, on the sum-normalised
    scale the networks are trained on: mean error of the truth's largest fraction and of the
    others, the mean ratio predicted / true of that largest fraction (< 1: shrunk towards the
    mean, which the metric's max-normalisation turns into a positive bias of every other
    metabolite), and the Cr MAE / bias (max-normalised) over the spectra where Cr is not the
    largest (where it is, both sides are 1 and its error is ~0 by construction)."""
    ps = pred / pred.sum(axis=1, keepdims=True)
    ys = y / y.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    j = ys.argmax(axis=1)
    err = ps - ys
    others = np.ones_like(err, bool)
    others[rows, j] = False
    cr = METABOLITES.index("Cr")
    e_cr = (max_normalise(pred) - max_normalise(y))[j != cr, cr]
    return {
        "largest_fraction_error": float(err[rows, j].mean()),
        "other_fractions_error": float(err[others].mean()),
        "largest_fraction_ratio": float(np.mean(ps[rows, j] / ys[rows, j])),
        "share_cr_largest": float(np.mean(j == cr)),
        "cr_mae_where_not_largest": float(np.abs(e_cr).mean()),
        "cr_bias_where_not_largest": float(e_cr.mean()),
    }


def summarise(errs: dict, floors: dict, mask: np.ndarray) -> dict:
    """Return {"n", model: {met: MAE, met bias: mean signed error, met unbiased: MAE of the
    errors less their mean over `mask`}, floor: {met: MAE-equivalent}} over spectra `mask`."""
    row: dict = {"n": int(mask.sum())}
    for label, e in errs.items():
        row[label] = {}
        for met in REPORTED:
            col = e[mask, METABOLITES.index(met)]
            col = col[np.isfinite(col)]
            ok = col.size > 0
            row[label][met] = float(np.mean(np.abs(col))) if ok else None
            row[label][f"{met} bias"] = float(np.mean(col)) if ok else None
            row[label][f"{met} unbiased"] = float(np.mean(np.abs(col - col.mean()))) if ok else None
    for label, e in floors.items():
        row[label] = {
            met: float(np.nanmean(e[mask, METABOLITES.index(met)])) if mask.any() else None
            for met in REPORTED
        }
    return row


def lcm_noisy(variant, name, gen, fids, y, results: Path) -> dict:
    """Return the LCM variant's noisy-set fit (read back from bench_models_accuracy.py's
    predictions of this draw when present, else fitted here)."""
    path = results / f"{variant}_predictions_{name}.tsv"
    if path.is_file():
        fit = read_lcm_predictions(path)
        if fit["y"].shape == y.shape and np.allclose(fit["y"], y, rtol=1e-6, atol=0):
            fit["source"] = str(path)
            return fit
    chosen = lcm_basis(name, gen, variant)
    fit = lcm_fit_set(fids, gen, chosen[0])
    fit["source"] = "fitted by this script"
    return fit


def run_set(name, basis, synth, models, args) -> dict:
    from gabaapp.simulate.generator import SpectrumGenerator

    gen = SpectrumGenerator(basis, synth)
    t0 = time.perf_counter()
    x, clean, y_t = draw_set(gen, args.n, SEED, DRAW_SIZE, with_clean=True)
    y = y_t.numpy()
    fids = draw_fids(gen, args.n)
    if not np.array_equal(fids["y"], y):
        raise RuntimeError(f"{name}: draw_fids did not reproduce the draw")
    par = fids["params"]
    noise = np.sqrt(0.5 * (par["noise_off"] ** 2 + par["noise_on"] ** 2))
    lw = par["lorentz_hz"] if name == "sim" else voigt_fwhm(par["lorentz_hz"], par["gauss_hz"])
    print(f"{name}: drawn in {time.perf_counter() - t0:.0f} s", flush=True)

    errs, errs_clean, shrink = {}, {}, {}
    for label, model in models.items():
        pred, _ = predict(model, x, 1)
        errs[label] = signed_errors(y, pred)
        pred_c, _ = predict(model, clean, 1)
        errs_clean[label] = signed_errors(y, pred_c)
        shrink[label] = {"noisy": shrinkage(y, pred), "noise-free": shrinkage(y, pred_c)}
    scale = y.max(axis=1, keepdims=True)
    floors: dict = {}
    lcm_info = {}
    nc = min(args.n_clean, args.n)
    clean_fids = {
        k: (v[:nc] if k != "params" else {q: w[:nc] for q, w in v.items()}) for k, v in fids.items()
    }
    for variant in LCM_VARIANTS:
        chosen = lcm_basis(name, gen, variant)
        if chosen is None:
            continue
        t1 = time.perf_counter()
        fit = lcm_noisy(variant, name, gen, fids, y, args.results)
        errs[variant] = signed_errors(y, fit["pred"])
        # CRLB in the LCM basis' units (FID-A's: ~8 x gabaapp's), so on the scale of the
        # LCM's own maximum amplitude
        floors[f"{variant} CRLB"] = (
            MAE_PER_SD * fit["crlb"] / np.nanmax(fit["pred"], axis=1)[:, None]
        )
        fit_c = lcm_fit_set(clean_fids, gen, chosen[0], clean=True)
        errs_clean[variant] = np.full_like(errs[variant], np.nan)
        errs_clean[variant][:nc] = signed_errors(y[:nc], fit_c["pred"])
        lcm_info[variant] = {
            "basis": chosen[1],
            "noisy_predictions": fit["source"],
            "noisy_converged_fraction": float(np.mean(fit["converged"])),
            "clean_converged_fraction": float(np.mean(fit_c["converged"])),
            "clean_failed": fit_c["failed"],
            "seconds": time.perf_counter() - t1,
        }
        print(f"{name}: {variant} done ({lcm_info[variant]})", flush=True)
    t1 = time.perf_counter()
    sd = oracle_sd(gen, fids)
    floors["oracle CRLB"] = MAE_PER_SD * sd / scale
    check = oracle_monte_carlo(gen, fids, sd)
    print(
        f"{name}: oracle bound in {time.perf_counter() - t1:.0f} s; MC/oracle {check}", flush=True
    )

    everything = np.ones(args.n, bool)
    first = np.arange(args.n) < nc
    out: dict = {
        "n": args.n,
        "noise_measure": "sqrt((noise_off^2 + noise_on^2) / 2), each sigma / max|FID|",
        "linewidth_measure": "Lorentzian FWHM (Hz)" if name == "sim" else "Voigt FWHM (Hz)",
        "all": summarise(errs, floors, everything),
        "noise_bins": {},
        "linewidth_bins": {},
        "noise_free": {
            "n_networks": args.n,
            "networks_all": summarise(
                {k: v for k, v in errs_clean.items() if k in models}, {}, everything
            ),
            f"first_{nc}": summarise(errs_clean, {}, first),
            f"first_{nc}_noisy": summarise(errs, {}, first),
        },
        "lcm": lcm_info,
        "oracle_check_mc_sd_over_bound": check,
        "networks_shrinkage": shrink,
    }
    for lo, hi in NOISE_BINS:
        mask = (noise >= lo) & (noise < hi)
        out["noise_bins"][f"{lo:.2f}-{hi:.2f}"] = summarise(errs, floors, mask)
    for lo, hi in LINEWIDTH_BINS[name]:
        mask = (lw >= lo) & (lw < hi)
        out["linewidth_bins"][f"{lo:g}-{hi:g} Hz"] = summarise(errs, floors, mask)
    return out


def print_table(name: str, res: dict) -> None:
    labels = [k for k in res["all"] if k != "n"]
    print(f"\n== {name} ==  columns: " + " | ".join(labels))
    rows = [("all", res["all"])]
    rows += [(f"noise {k}", v) for k, v in res["noise_bins"].items()]
    rows += [(f"lw {k}", v) for k, v in res["linewidth_bins"].items()]
    for key, row in rows:
        cells = []
        for lab in labels:
            vals = row.get(lab, {})
            cells.append(
                "/".join("n/a" if vals.get(m) is None else f"{vals[m]:.4f}" for m in REPORTED)
            )
            if "GABA bias" in vals:
                cells[-1] += (
                    " (bias "
                    + "/".join(
                        "n/a" if vals.get(f"{m} bias") is None else f"{vals[f'{m} bias']:+.4f}"
                        for m in REPORTED
                    )
                    + ")"
                )
        print(f"{key:>20s} (n {row['n']:4d}): " + " | ".join(cells))
    for key, row in res["noise_free"].items():
        if key == "n_networks":
            continue
        cells = [
            f"{lab} " + "/".join(f"{row[lab][m]:.4f}" for m in REPORTED)
            for lab in row
            if lab != "n"
        ]
        print(f"  noise-free {key} (n {row['n']}): " + " | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--n-clean", type=int, default=500, help="noise-free LCM fits per set")
    ap.add_argument("--models", nargs="+", type=Path, default=[REPO / m for m in MODELS])
    ap.add_argument("--fida-dir", type=Path, default=FIDA_DIR)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--sets", nargs="+", default=["sim", "fida"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = {}
    for d in args.models:
        model, _ = load_model(d)
        models[Path(d).name] = model
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out: dict = {
        "benchmark": "models error sources: noise/linewidth bins, noise-free, LCM and CRLB",
        "seed": SEED,
        "sets": {},
        "metric": "MAE of max-normalised concentrations (GABA, Cr); floors: sqrt(2/pi) SD / max",
    }
    for name, (basis, synth) in test_sets(args.fida_dir).items():
        if name in args.sets:
            out["sets"][name] = run_set(name, basis, synth, models, args)
            print_table(name, out["sets"][name])
    out["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "note": "2-core CPU sandbox shared with two trainings; one thread here",
        "load_average_end": os.getloadavg(),
    }
    out["started"], out["finished"] = start, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "bench_models_error_sources.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
