"""Validation of quantifiers on phantom BIDS datasets with known concentrations.

`gabaapp train validate MODEL... BIDS_DIR...` runs, for every scan of every dataset, the same
participant-level steps as the BIDS-App (gabaapp.pipeline: load_scan -> preprocess_scan ->
quantify_scan), then compares the predictions with the true concentrations in the dataset's
participants.tsv (columns cr gaba gln glu naa, mM) with the paper's metrics
(gabaapp.training.metrics.evaluate: per-spectrum max-normalisation, MAE beside the trivial
median predictor's MAE, regression). This mirrors the paper's evaluation on its 144 phantom
spectra (Ma et al., arXiv:2602.20289, paper-notes §1.2), per dataset and pooled.

A model is a folder holding card.json (trained weights), `lcm` (the built-in linear-combination
baseline, gabaapp.lcm) or the name of a bundled model (its id, e.g. `yae-v4`, or its family,
e.g. `yae`). A dataset is a folder holding dataset_description.json.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gabaapp.constants import METABOLITES
from gabaapp.errors import DataError, NoInputError, UsageError
from gabaapp.models.card import read_card
from gabaapp.training.metrics import TSV_COLUMNS, MetricRow, evaluate, metrics_to_dict

log = logging.getLogger(__name__)

LCM = "lcm"
POOLED = "pooled"
TRUTH_COLUMNS = tuple(m.lower() for m in METABOLITES)  # cr gaba gln glu naa
METRICS_NAME = "validation_metrics.tsv"
PREDICTIONS_NAME = "validation_predictions.tsv"
METRICS_COLUMNS = ("dataset", "model", *TSV_COLUMNS)


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ModelSpec:
    """One quantifier to validate: `label` (table name), `family` (yae/cnn/fcnn/lcm) and
    `model_dir` (weights folder; None for lcm)."""

    label: str
    family: str
    model_dir: Path | None = None
    card: dict = field(default_factory=dict, compare=False)


def model_spec(target: str | Path) -> ModelSpec:
    """Return the ModelSpec of a model folder (with card.json), 'lcm', or a bundled model's
    id or family name; UsageError when `target` is none of these."""
    path = Path(target)
    if (path / "card.json").is_file():
        card = read_card(path)
        return ModelSpec(str(card.get("id") or path.name), str(card["model"]), path, card)
    if str(target) == LCM:
        return ModelSpec(LCM, LCM)
    if path.exists() or "/" in str(target):
        raise UsageError(
            f"{target} is neither a model folder (no card.json) nor a BIDS dataset (no "
            "dataset_description.json)"
        )
    from gabaapp.pipeline import bundled_model_dir

    try:
        folder = bundled_model_dir(str(target))
    except NoInputError as err:
        raise UsageError(
            f"{target!r} is not a model folder, 'lcm' or a bundled model name ({err})"
        ) from err
    card = read_card(folder)
    return ModelSpec(str(card.get("id") or folder.name), str(card["model"]), folder, card)


def split_targets(targets: Sequence[str | Path]) -> tuple[list[ModelSpec], list[Path]]:
    """Return (models, BIDS dataset folders) from the positional arguments: a folder with
    dataset_description.json is a dataset, anything else must name a model (`model_spec`).
    UsageError when either list ends up empty or a model label repeats."""
    models: list[ModelSpec] = []
    datasets: list[Path] = []
    for t in targets:
        path = Path(t)
        if (path / "dataset_description.json").is_file():
            datasets.append(path)
        else:
            models.append(model_spec(t))
    if not models:
        raise UsageError("name at least one model: a folder with card.json, 'lcm' or yae-v4")
    if not datasets:
        raise UsageError(
            "name at least one phantom BIDS dataset (a folder with dataset_description.json)"
        )
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise UsageError(f"models named more than once: {labels}")
    return models, datasets


def dataset_labels(datasets: Sequence[Path]) -> list[str]:
    """Return a unique table label per dataset: its folder name, suffixed -2, -3... on repeats."""
    out: list[str] = []
    for d in datasets:
        base = Path(d).resolve().name or "dataset"
        label, k = base, 1
        while label in out or label == POOLED:
            k += 1
            label = f"{base}-{k}"
        out.append(label)
    return out


def read_phantom_truth(bids_dir: str | Path) -> dict[str, np.ndarray]:
    """Return {participant_id: true concentrations [5] in METABOLITES order} of a phantom
    dataset's participants.tsv. DataError naming the missing file or columns when the dataset
    carries no ground truth; participants whose values are n/a are left out."""
    from gabaapp.group import read_truth
    from gabaapp.report.tables import parse_tsv

    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        raise DataError(
            f"{bids_dir} has no participants.tsv; a phantom dataset for validation needs one "
            f"with the true concentrations in columns {' '.join(TRUTH_COLUMNS)} (mM)"
        )
    rows = parse_tsv(path.read_text())
    missing = [c for c in TRUTH_COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise DataError(
            f"{path} lacks the ground-truth column(s) {' '.join(missing)}; validation needs the "
            f"true concentrations in columns {' '.join(TRUTH_COLUMNS)} (mM, one row per "
            "participant)"
        )
    truth = read_truth(Path(bids_dir))
    if not truth:
        raise DataError(f"{path}: no participant has numbers in all of {' '.join(TRUTH_COLUMNS)}")
    return truth


# ----------------------------------------------------------------------------- predictions
@dataclass
class Predictions:
    """Predictions of one model on one dataset: one row per quantified scan."""

    dataset: str
    model: str
    scans: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    true: list[np.ndarray] = field(default_factory=list)
    pred: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0  # wall time of this model's quantification, all scans together

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (true, pred) as [N, 5] arrays in METABOLITES order."""
        shape = (0, len(METABOLITES))
        true = np.array(self.true, float).reshape(-1, len(METABOLITES)) if self.true else None
        pred = np.array(self.pred, float).reshape(-1, len(METABOLITES)) if self.pred else None
        return (
            true if true is not None else np.empty(shape),
            pred if pred is not None else np.empty(shape),
        )


def predict_dataset(
    bids_dir: str | Path,
    models: Sequence[ModelSpec],
    *,
    label: str | None = None,
    device: str = "cpu",
    mc_samples: int | None = None,
    validate_bids: bool = True,
    on_scan: Callable[[str], None] | None = None,
    precision: str = "float32",
) -> tuple[dict[str, Predictions], list[dict]]:
    """Run the participant-level steps on every scan of a phantom dataset and quantify it with
    each model; return ({model label: Predictions}, failures [{scan, error}]).

    A scan whose pre-processing or quantification fails is recorded as a failure (and left
    out of every model, so all models are judged on the same scans). `mc_samples`: MC-dropout
    passes of the networks (default: the participant level's pipeline.MC_SAMPLES).
    """
    from gabaapp import pipeline
    from gabaapp.io.bids import find_scans

    label = label or Path(bids_dir).resolve().name
    truth = read_phantom_truth(bids_dir)
    scans = find_scans(bids_dir, validate=validate_bids)
    out = {m.label: Predictions(label, m.label) for m in models}
    failures: list[dict] = []
    n_samples = pipeline.MC_SAMPLES if mc_samples is None else mc_samples
    for scan in scans:
        key = pipeline.scan_key(scan.entities)
        pid = f"sub-{scan.subject}"
        if pid not in truth:
            log.warning("%s: %s has no ground truth in participants.tsv; skipped", label, pid)
            continue
        try:
            metab, water = pipeline.load_scan(scan.path, scan.water_path, scan.sidecar)
            pre = pipeline.preprocess_scan(metab, water)
            preds, seconds = {}, {}
            for m in models:
                start = time.perf_counter()
                if m.family == LCM:
                    q = pipeline.quantify_lcm(pre)
                else:
                    q = pipeline.quantify_network(
                        pipeline.network_grid(pre),
                        m.family,
                        model_dir=m.model_dir,
                        device=device,
                        n_samples=n_samples,
                        precision=precision,
                    )
                preds[m.label] = _in_metabolite_order(q.names, q.concentrations)
                seconds[m.label] = time.perf_counter() - start
        except Exception as err:  # one bad scan must not end the validation of the others
            log.error("%s: %s failed: %s", label, key, err)
            failures.append(
                {"dataset": label, "scan": key, "error": f"{type(err).__name__}: {err}"}
            )
            continue
        for name, p in preds.items():
            rec = out[name]
            rec.scans.append(key)
            rec.participants.append(pid)
            rec.true.append(truth[pid])
            rec.pred.append(p)
            rec.seconds += seconds[name]
        if on_scan is not None:
            on_scan(key)
    return out, failures


def _in_metabolite_order(names: Sequence[str], values: np.ndarray) -> np.ndarray:
    """Return `values` reordered to METABOLITES; DataError when a metabolite is missing."""
    index = {n: i for i, n in enumerate(names)}
    missing = [m for m in METABOLITES if m not in index]
    if missing:
        raise DataError(f"the model does not output {missing}; it cannot be validated")
    return np.array([float(values[index[m]]) for m in METABOLITES])


# ----------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class ValidationResult:
    """Metrics {(dataset or 'pooled', model): {metabolite|'total': MetricRow}}, the
    predictions behind them and the failed scans."""

    metrics: dict[tuple[str, str], dict[str, MetricRow]]
    predictions: list[Predictions]
    failures: list[dict]
    files: list[Path] = field(default_factory=list)


def compute_metrics(
    predictions: Sequence[Predictions], models: Sequence[str]
) -> dict[tuple[str, str], dict[str, MetricRow]]:
    """Return the paper's metrics per (dataset, model) and pooled over datasets per model
    ('pooled'); (dataset, model) pairs without any scan are left out."""
    out: dict[tuple[str, str], dict[str, MetricRow]] = {}
    for p in predictions:
        true, pred = p.arrays()
        if len(true):
            out[(p.dataset, p.model)] = evaluate(true, pred)
    for model in models:
        parts = [p.arrays() for p in predictions if p.model == model and p.true]
        if parts:
            true = np.concatenate([t for t, _ in parts])
            pred = np.concatenate([q for _, q in parts])
            out[(POOLED, model)] = evaluate(true, pred)
    return out


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_metrics_table(
    metrics: dict[tuple[str, str], dict[str, MetricRow]], path: str | Path
) -> Path:
    """Write one line per (dataset, model, metabolite|total) with METRICS_COLUMNS; return path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(METRICS_COLUMNS)
        for (dataset, model), rows in metrics.items():
            for row in rows.values():
                writer.writerow([dataset, model, *(_fmt(getattr(row, k)) for k in TSV_COLUMNS)])
    return path


def write_predictions_table(predictions: Sequence[Predictions], path: str | Path) -> Path:
    """Write one line per (dataset, model, scan) with true_<met> (mM) and pred_<met> (the
    model's relative scale); return the path."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(
            [
                "dataset",
                "model",
                "scan",
                "participant_id",
                *(f"true_{c}" for c in TRUTH_COLUMNS),
                *(f"pred_{c}" for c in TRUTH_COLUMNS),
            ]
        )
        for p in predictions:
            for scan, pid, t, q in zip(p.scans, p.participants, p.true, p.pred, strict=True):
                writer.writerow([p.dataset, p.model, scan, pid, *(f"{v:.9g}" for v in (*t, *q))])
    return path


def _sidecar(models: Sequence[ModelSpec], datasets: dict[str, str], failures, mc: int) -> dict:
    return {
        "dataset": {"Description": "phantom dataset label, or 'pooled' over all datasets"},
        "model": {"Description": "model id (card 'id' or folder name) or 'lcm'"},
        "metabolite": {"Description": "metabolite, or 'total' pooled over all five"},
        "n": {"Description": "number of values (scans; scans x 5 for total)"},
        "mae": {"Description": "mean absolute error of the per-spectrum max-normalised values"},
        "mae_sd": {"Description": "SD of the absolute errors"},
        "trivial_mae": {
            "Description": "MAE of the trivial predictor (median of the max-normalised true "
            "values on the same set)"
        },
        "bias": {"Description": "mean signed error (predicted - true), max-normalised"},
        "slope": {"Description": "OLS slope of predicted on true (max-normalised)"},
        "intercept": {"Description": "OLS intercept"},
        "r": {"Description": "Pearson correlation"},
        "r2": {"Description": "coefficient of determination r^2"},
        "Method": "Ma et al., arXiv:2602.20289 (paper-notes §1.2); gabaapp.training.metrics",
        "Datasets": datasets,
        "Models": {
            m.label: {
                "family": m.family,
                "directory": None if m.model_dir is None else str(m.model_dir),
                "weights_sha256": (m.card.get("weights") or {}).get("sha256"),
            }
            for m in models
        },
        "MCDropoutSamples": mc,
        "FailedScans": failures,
    }


def validate(
    models: Sequence[ModelSpec],
    datasets: Sequence[str | Path],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    mc_samples: int | None = None,
    validate_bids: bool = True,
    plots: bool = True,
    on_scan: Callable[[str], None] | None = None,
    precision: str = "float32",
) -> ValidationResult:
    """Validate `models` on the phantom `datasets`; write to `out_dir`: validation_metrics.tsv
    (+ .json sidecar), validation_predictions.tsv and predicted-vs-true PNGs
    (<model>_<dataset>.png, per dataset and pooled). Return the ValidationResult.
    DataError when no scan could be quantified at all."""
    from gabaapp import pipeline

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from gabaapp.errors import CannotCreateOutputError

        raise CannotCreateOutputError(f"cannot create {out}: {err}") from err
    labels = dataset_labels([Path(d) for d in datasets])
    for d in datasets:  # fail on a dataset without truth before quantifying anything
        read_phantom_truth(d)
    predictions: list[Predictions] = []
    failures: list[dict] = []
    for d, label in zip(datasets, labels, strict=True):
        preds, failed = predict_dataset(
            d,
            models,
            label=label,
            device=device,
            mc_samples=mc_samples,
            validate_bids=validate_bids,
            on_scan=on_scan,
            precision=precision,
        )
        predictions += preds.values()
        failures += failed
    metrics = compute_metrics(predictions, [m.label for m in models])
    if not metrics:
        raise DataError(
            f"no scan could be quantified in {', '.join(map(str, datasets))} "
            f"({len(failures)} failed; first: {failures[0]['error'] if failures else 'none'})"
        )
    files = [write_metrics_table(metrics, out / METRICS_NAME)]
    mc = pipeline.MC_SAMPLES if mc_samples is None else mc_samples
    sidecar = _sidecar(models, dict(zip(labels, map(str, datasets), strict=True)), failures, mc)
    sidecar["NetworkPrecision"] = precision
    sidecar["Metrics"] = {
        f"{dataset}/{model}": metrics_to_dict(rows) for (dataset, model), rows in metrics.items()
    }
    json_path = (out / METRICS_NAME).with_suffix(".json")
    json_path.write_text(json.dumps(sidecar, indent=2, allow_nan=False) + "\n")
    files += [json_path, write_predictions_table(predictions, out / PREDICTIONS_NAME)]
    if plots:
        files += _plots(predictions, [m.label for m in models], out)
    return ValidationResult(metrics, predictions, failures, files)


def _plots(predictions: Sequence[Predictions], models: Sequence[str], out: Path) -> list[Path]:
    """Save predicted-vs-true figures per (model, dataset) and pooled per model."""
    from gabaapp.training.plots import plot_pred_vs_true

    files = []
    for model in models:
        parts = [p for p in predictions if p.model == model and p.true]
        for p in parts:
            true, pred = p.arrays()
            files.append(
                plot_pred_vs_true(
                    true, pred, out / f"{model}_{p.dataset}.png", title=f"{model} on {p.dataset}"
                )
            )
        if len(parts) > 1:
            true = np.concatenate([p.arrays()[0] for p in parts])
            pred = np.concatenate([p.arrays()[1] for p in parts])
            files.append(
                plot_pred_vs_true(
                    true, pred, out / f"{model}_{POOLED}.png", title=f"{model}, pooled"
                )
            )
    return files


def format_table(metrics: dict[tuple[str, str], dict[str, MetricRow]]) -> str:
    """Return a plain-text table: one line per (dataset, model) with GABA MAE (trivial),
    GABA slope/R^2 and total MAE (trivial)."""
    head = (
        f"{'dataset':<20} {'model':<14} {'n':>4}  {'GABA MAE':>9} {'(trivial)':>9} "
        f"{'slope':>6} {'R^2':>6}  {'total MAE':>9} {'(trivial)':>9}"
    )
    lines = [head, "-" * len(head)]
    for (dataset, model), rows in metrics.items():
        g, t = rows["GABA"], rows["total"]
        lines.append(
            f"{dataset:<20} {model:<14} {g.n:>4}  {g.mae:>9.4f} {g.trivial_mae:>9.4f} "
            f"{g.slope:>6.3f} {g.r2:>6.3f}  {t.mae:>9.4f} {t.trivial_mae:>9.4f}"
        )
    return "\n".join(lines)
