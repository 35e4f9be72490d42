"""Evaluation metrics exactly as in the paper (Ma et al., arXiv:2602.20289; paper-notes §1.2).

* Each spectrum's true and predicted 5-vectors are divided by their own maximum (a vector whose
  maximum is 0 is left unchanged).
* Error e = p~ - c~; MAE per metabolite = mean_i |e_im|; total MAE = mean over all i, m.
* Ordinary least squares of predicted (y) on true (x) per metabolite and pooled over all
  metabolites (scipy.stats.linregress): slope, intercept, r, R^2 = r^2.
* Beside every MAE: the MAE of the trivial predictor that outputs, for each metabolite, the
  median of its max-normalised true values on the same set. A model is only useful when its MAE
  is far below that.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from gabaapp.constants import METABOLITES

TOTAL = "total"
TSV_COLUMNS = (
    "metabolite",
    "n",
    "mae",
    "mae_sd",
    "trivial_mae",
    "bias",
    "slope",
    "intercept",
    "r",
    "r2",
)


def max_normalise(c: np.ndarray) -> np.ndarray:
    """Return `c` [N, M] with each row divided by its maximum; rows whose max is 0 unchanged."""
    c = np.asarray(c, dtype=np.float64)
    peak = c.max(axis=-1, keepdims=True)
    return np.divide(c, peak, out=c.copy(), where=peak != 0)


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one metabolite (or the pooled `total`)."""

    metabolite: str
    n: int
    mae: float
    mae_sd: float
    trivial_mae: float
    bias: float
    slope: float
    intercept: float
    r: float
    r2: float


def _regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Return (slope, intercept, r) of y on x; NaN when x is constant (undefined line)."""
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    res = stats.linregress(x, y)
    return float(res.slope), float(res.intercept), float(res.rvalue)


def evaluate(
    true: np.ndarray, pred: np.ndarray, names: tuple[str, ...] = METABOLITES
) -> dict[str, MetricRow]:
    """Return {metabolite: MetricRow, ..., 'total': pooled MetricRow} for concentrations
    `true`, `pred` [N, M] (any scale: both are max-normalised per spectrum here)."""
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if true.shape != pred.shape or true.ndim != 2 or true.shape[1] != len(names):
        raise ValueError(f"true {true.shape} and pred {pred.shape} must both be [N, {len(names)}]")
    ct, pt = max_normalise(true), max_normalise(pred)
    err = pt - ct
    trivial_err = np.median(ct, axis=0, keepdims=True) - ct
    rows: dict[str, MetricRow] = {}
    for m, name in enumerate(names):
        slope, intercept, r = _regression(ct[:, m], pt[:, m])
        rows[name] = MetricRow(
            name,
            len(ct),
            float(np.abs(err[:, m]).mean()),
            float(np.abs(err[:, m]).std()),
            float(np.abs(trivial_err[:, m]).mean()),
            float(err[:, m].mean()),
            slope,
            intercept,
            r,
            r * r,
        )
    slope, intercept, r = _regression(ct.ravel(), pt.ravel())
    rows[TOTAL] = MetricRow(
        TOTAL,
        err.size,
        float(np.abs(err).mean()),
        float(np.abs(err).std()),
        float(np.abs(trivial_err).mean()),
        float(err.mean()),
        slope,
        intercept,
        r,
        r * r,
    )
    return rows


def total_mae(true: np.ndarray, pred: np.ndarray) -> float:
    """Return the total max-normalised MAE (the model-selection objective)."""
    return float(np.abs(max_normalise(pred) - max_normalise(true)).mean())


def metrics_to_dict(rows: dict[str, MetricRow]) -> dict[str, dict[str, float]]:
    """Return the metrics as a JSON-ready nested dict (NaN -> None)."""
    out = {}
    for name, row in rows.items():
        values = {k: getattr(row, k) for k in TSV_COLUMNS[1:]}
        out[name] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()
        }
    return out


def write_metrics_tsv(rows: dict[str, MetricRow], path: str | Path, prefix: str = "") -> Path:
    """Write one line per metabolite and one `total` line (columns TSV_COLUMNS; `prefix` is
    prepended to metabolite names, e.g. 'sim_'); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(TSV_COLUMNS)
        for row in rows.values():
            values = [getattr(row, k) for k in TSV_COLUMNS]
            values[0] = prefix + values[0]
            writer.writerow(
                [
                    f"{v:.6g}"
                    if isinstance(v, float) and not math.isnan(v)
                    else ("n/a" if isinstance(v, float) else v)
                    for v in values
                ]
            )
    return path
