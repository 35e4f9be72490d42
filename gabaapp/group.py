"""Group level: collect the participant-level tables into `group_concentrations.tsv` and
`group_qc.tsv` (one row per scan and quantifier), flag outliers, compute the accuracy table on
phantom datasets, and render `group.html`.

Outliers: a value is flagged when it lies more than 3 robust SDs from the median of its
column, the robust SD being 1.4826 x the median absolute deviation (MAD; Leys et al. 2013,
J Exp Soc Psychol 49:764). Accuracy (phantoms whose participants.tsv carries the true
concentrations cr gaba gln glu naa): max-normalised MAE, slope, intercept and R^2 of the least
squares line of predicted on true, per metabolite and quantifier (Ma et al. 2026, §1.2).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gabaapp.__about__ import __version__
from gabaapp.atomic import write_text_atomic
from gabaapp.constants import METABOLITES
from gabaapp.errors import NoInputError
from gabaapp.pipeline import ERRORS_DIR
from gabaapp.report import figures, html
from gabaapp.report.qc import THRESHOLDS
from gabaapp.report.tables import GLX, NA, format_tsv, parse_tsv

log = logging.getLogger(__name__)

N_MAD = 3.0
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its SD
MIN_VALUES_FOR_OUTLIERS = 5  # the MAD of fewer values is too unstable to flag anything
# spreads below this fraction of the median are numerical noise, not a distribution
RELATIVE_MAD_FLOOR = 1e-6
TRUTH_COLUMNS = tuple(m.lower() for m in METABOLITES)  # participants.tsv: cr gaba gln glu naa
_TSV_RE = re.compile(r"^(?P<stem>.+)_desc-(?P<model>[a-zA-Z0-9]+)_concentrations\.tsv$")
_ENTITY_RE = re.compile(r"(?:^|_)(sub|ses)-([a-zA-Z0-9]+)")
QUANTITIES = tuple(METABOLITES) + (GLX,)


@dataclass(frozen=True)
class GroupResult:
    """What the group level wrote and found."""

    paths: dict[str, Path]
    n_rows: int
    failures: list[dict] = field(default_factory=list)
    outliers: list[dict] = field(default_factory=list)
    accuracy: list[dict] = field(default_factory=list)


def mad_outliers(values: Sequence[float], n_mad: float = N_MAD) -> np.ndarray:
    """Return a boolean mask of values further than n_mad robust SDs (1.4826 MAD) from the
    median. NaN values are never flagged, nor is anything in a column with fewer than
    MIN_VALUES_FOR_OUTLIERS finite values or a MAD below RELATIVE_MAD_FLOOR x |median|
    (identical values up to rounding: no spread to compare with)."""
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    out = np.zeros(v.shape, bool)
    if ok.sum() < MIN_VALUES_FOR_OUTLIERS:
        return out
    med = np.median(v[ok])
    mad = np.median(np.abs(v[ok] - med))
    if mad <= RELATIVE_MAD_FLOOR * abs(med):
        return out
    out[ok] = np.abs(v[ok] - med) > n_mad * MAD_TO_SD * mad
    return out


def _max_normalise(c: np.ndarray) -> np.ndarray:
    peak = c.max(axis=1, keepdims=True)
    return np.divide(c, peak, out=c.copy(), where=peak != 0)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Return slope, intercept and R^2 of the least-squares line of y on x (NaN if x constant)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    slope, intercept = np.polyfit(x, y, 1)
    r = np.corrcoef(x, y)[0, 1] if np.ptp(y) > 0 else 0.0
    return float(slope), float(intercept), float(r * r)


def accuracy_rows(true: np.ndarray, predicted: np.ndarray, model: str) -> list[dict]:
    """Return the accuracy table of one quantifier: per metabolite and pooled ('total').

    `true`, `predicted`: [n_spectra, 5] in METABOLITES order, any scale (each row is divided by
    its own maximum first, Ma et al. 2026 §1.2).
    """
    t, p = _max_normalise(np.asarray(true, float)), _max_normalise(np.asarray(predicted, float))
    rows = []
    for j, name in enumerate(list(METABOLITES) + ["total"]):
        x, y = (t[:, j], p[:, j]) if name != "total" else (t.ravel(), p.ravel())
        slope, intercept, r2 = _line(x, y)
        mae = float(np.mean(np.abs(y - x)))
        rows.append(
            {
                "model": model,
                "metabolite": name,
                "n": len(x),
                "mae": mae,
                "slope": slope,
                "intercept": intercept,
                "r2": r2,
            }
        )
    return rows


def read_truth(bids_dir: Path) -> dict[str, np.ndarray]:
    """Return {participant_id: true concentrations [5] in METABOLITES order} from
    participants.tsv when it has all truth columns (cr gaba gln glu naa), else {}."""
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        return {}
    rows = parse_tsv(path.read_text())
    if not rows or any(c not in rows[0] for c in TRUTH_COLUMNS):
        return {}
    truth = {}
    for row in rows:
        values = [row.get(c) for c in TRUTH_COLUMNS]
        if all(isinstance(v, float) for v in values):
            truth[str(row["participant_id"])] = np.array(values, float)
    return truth


def _entities(stem: str) -> dict[str, str]:
    found = dict(_ENTITY_RE.findall(stem))
    return {
        "participant_id": f"sub-{found['sub']}" if "sub" in found else NA,
        "session_id": f"ses-{found['ses']}" if "ses" in found else NA,
    }


def collect(out_dir: Path) -> list[dict]:
    """Return one record per `*_desc-<model>_concentrations.tsv` under out_dir/sub-*/:
    {scan, model, participant_id, session_id, rows (by metabolite), sidecar}, sorted."""
    records = []
    for tsv in sorted(Path(out_dir).glob("sub-*/**/mrs/*_concentrations.tsv")):
        match = _TSV_RE.match(tsv.name)
        if not match:
            continue
        sidecar_path = tsv.with_suffix(".json")
        sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {}
        rows = {str(r["metabolite"]): r for r in parse_tsv(tsv.read_text())}
        records.append(
            {
                "scan": match["stem"],
                "model": match["model"],
                **_entities(match["stem"]),
                "rows": rows,
                "sidecar": sidecar,
                "path": tsv,
            }
        )
    return records


def read_failures(out_dir: Path) -> list[dict]:
    """Return the scans the participant level could not process: [{scan, error}], sorted."""
    failures = []
    for path in sorted((Path(out_dir) / ERRORS_DIR).glob("*.json")):
        record = json.loads(path.read_text())
        failures.append({"scan": record.get("scan", path.stem), "error": record.get("error", "")})
    return failures


def group_concentration_table(records: Sequence[Mapping]) -> tuple[list[dict], list[str]]:
    """Return (rows, columns) of group_concentrations.tsv: one row per scan and quantifier,
    columns <M>, <M>_sd, <M>_cr, <M>_naa per quantity, plus outlier flags (> 3 MAD within
    each quantifier)."""
    columns = ["participant_id", "session_id", "scan", "model", "gaba_reported_as", "qc_status"]
    for q in QUANTITIES:
        columns += [q, f"{q}_sd", f"{q}_cr", f"{q}_naa"]
    columns += ["outliers"]
    rows = []
    for rec in records:
        row = {k: rec[k] for k in ("participant_id", "session_id", "scan", "model")}
        row["gaba_reported_as"] = rec["rows"].get("GABA", {}).get("reported_as", NA)
        row["qc_status"] = rec["sidecar"].get("QC", {}).get("status", NA)
        for q in QUANTITIES:
            r = rec["rows"].get(q, {})
            row[q], row[f"{q}_sd"] = r.get("concentration"), r.get("concentration_sd")
            row[f"{q}_cr"], row[f"{q}_naa"] = r.get("ratio_cr"), r.get("ratio_naa")
        rows.append(row)
    for model in sorted({r["model"] for r in rows}):
        members = [r for r in rows if r["model"] == model]
        flagged = {id(r): [] for r in members}
        for q in QUANTITIES:
            values = [np.nan if r[q] is None else float(r[q]) for r in members]
            for r, bad in zip(members, mad_outliers(values), strict=True):
                if bad:
                    flagged[id(r)].append(q)
        for r in members:
            r["outliers"] = ";".join(flagged[id(r)]) or NA
    return rows, columns


def group_qc_table(records: Sequence[Mapping]) -> tuple[list[dict], list[str]]:
    """Return (rows, columns) of group_qc.tsv: one row per scan (QC does not depend on the
    quantifier, except the reconstruction residual, which is taken from the YAE when present)."""
    by_scan: dict[str, dict] = {}
    metric_names: list[str] = []
    for rec in sorted(records, key=lambda r: (r["scan"], r["model"] != "yae", r["model"])):
        metrics = rec["sidecar"].get("QC", {}).get("metrics", {})
        for key in metrics:
            if key not in metric_names:
                metric_names.append(key)
        if rec["scan"] in by_scan:
            continue
        row = {k: rec[k] for k in ("participant_id", "session_id", "scan")}
        row["qc_status"] = rec["sidecar"].get("QC", {}).get("status", NA)
        row.update(metrics)
        by_scan[rec["scan"]] = row
    columns = ["participant_id", "session_id", "scan", "qc_status", *metric_names]
    return [by_scan[s] for s in sorted(by_scan)], columns


def accuracy_table(records: Sequence[Mapping], truth: Mapping[str, np.ndarray]) -> list[dict]:
    """Return the accuracy rows of every quantifier over the scans whose participant has a
    true concentration vector; [] without truth."""
    out = []
    for model in sorted({r["model"] for r in records}):
        pairs = [
            (truth[r["participant_id"]], [r["rows"][m]["concentration"] for m in METABOLITES])
            for r in records
            if r["model"] == model
            and r["participant_id"] in truth
            and all(r["rows"].get(m, {}).get("concentration") is not None for m in METABOLITES)
        ]
        if pairs:
            t, p = (np.array(x, float) for x in zip(*pairs, strict=True))
            out += accuracy_rows(t, p, model)
    return out


_GROUP_COLUMN_DOC = {
    "participant_id": {"Description": "BIDS participant label"},
    "session_id": {"Description": "BIDS session label, n/a without sessions"},
    "scan": {"Description": "source entities of the MEGA-PRESS scan"},
    "model": {"Description": "quantifier (yae, cnn, fcnn, lcm)"},
    "gaba_reported_as": {"Description": "'GABA+' (with co-edited macromolecules) or 'GABA'"},
    "qc_status": {"Description": "worst QC traffic light of the scan: pass, warn, fail or info"},
    "outliers": {
        "Description": "quantities more than 3 x 1.4826 MAD from the group median of the same "
        "quantifier (Leys et al. 2013), semicolon-separated; n/a when none"
    },
}


def _group_sidecar(columns: Sequence[str]) -> dict:
    doc = {}
    for c in columns:
        if c in _GROUP_COLUMN_DOC:
            doc[c] = _GROUP_COLUMN_DOC[c]
            continue
        base, _, kind = c.partition("_")
        if c in THRESHOLDS:
            t = THRESHOLDS[c]
            doc[c] = {
                "LongName": t.name,
                "Description": f"{t.description} ({t.rule()})",
                "Units": t.units,
            }
        elif base in QUANTITIES:
            what = {
                "": "relative concentration (five-metabolite sum = 1)",
                "sd": "SD of the relative concentration",
                "cr": "ratio to Cr",
                "naa": "ratio to NAA",
            }[kind]
            doc[c] = {
                "LongName": f"{base} {what}",
                "Description": f"{base}: {what}",
                "Units": "arbitrary" if kind in ("", "sd") else "ratio",
            }
    return doc


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def _figures(rows: list[dict], qc_rows: list[dict], records, truth) -> list[dict]:
    out = []
    for model in sorted({r["model"] for r in rows}):
        members = [r for r in rows if r["model"] == model]
        values = {
            q: np.array([np.nan if r[q] is None else r[q] for r in members]) for q in QUANTITIES
        }
        flags = {
            q: np.array([q in str(r["outliers"]).split(";") for r in members]) for q in QUANTITIES
        }
        fig = figures.plot_distributions(values, flags)
        out.append(
            {
                "title": f"Relative concentrations, {model}",
                "caption": "one point per scan; red crosses: > 3 MAD outliers",
                "uri": figures.figure_to_data_uri(fig),
            }
        )
        pairs = [
            (truth[r["participant_id"]], [r["rows"][m]["concentration"] for m in METABOLITES])
            for r in records
            if r["model"] == model and r["participant_id"] in truth
        ]
        if pairs:
            t, p = (_max_normalise(np.array(x, float)) for x in zip(*pairs, strict=True))
            fig = figures.plot_predicted_vs_true(t, p, METABOLITES)
            out.append(
                {
                    "title": f"Predicted vs true, {model}",
                    "caption": "max-normalised per spectrum; dashed line: identity",
                    "uri": figures.figure_to_data_uri(fig),
                }
            )
    if qc_rows and "naa_fwhm_ppm" in qc_rows[0] and "snr" in qc_rows[0]:
        x = [np.nan if r.get("naa_fwhm_ppm") is None else r["naa_fwhm_ppm"] for r in qc_rows]
        y = [np.nan if r.get("snr") is None else r["snr"] for r in qc_rows]
        bad = [r.get("qc_status") == "fail" for r in qc_rows]
        fig = figures.plot_qc_scatter(x, y, "NAA FWHM (ppm)", "SNR", bad)
        out.append(
            {
                "title": "QC",
                "caption": "one point per scan; red: QC fail",
                "uri": figures.figure_to_data_uri(fig),
            }
        )
    return out


def run_group(
    bids_dir: Path, out_dir: Path, participant_label: Sequence[str] | None = None
) -> GroupResult:
    """Write group_concentrations.tsv/.json, group_qc.tsv/.json, group_accuracy.tsv (phantoms)
    and group.html into `out_dir`; return what was written and found.

    `participant_label` (labels without 'sub-') restricts the tables to those participants.
    Raises NoInputError when the participant level has produced neither tables nor errors.
    """
    out_dir = Path(out_dir)
    records = collect(out_dir)
    failures = read_failures(out_dir)
    if participant_label:
        wanted = {f"sub-{label}" for label in participant_label}
        records = [r for r in records if r["participant_id"] in wanted]
        failures = [f for f in failures if _entities(f["scan"])["participant_id"] in wanted]
    if not records and not failures:
        raise NoInputError(
            f"no *_concentrations.tsv under {out_dir}; run the participant level first"
        )
    rows, columns = group_concentration_table(records)
    qc_rows, qc_columns = group_qc_table(records)
    truth = read_truth(bids_dir)
    accuracy = accuracy_table(records, truth)
    paths = {
        "group_concentrations": out_dir / "group_concentrations.tsv",
        "group_qc": out_dir / "group_qc.tsv",
        "group_html": out_dir / "group.html",
    }
    _write_text(paths["group_concentrations"], format_tsv(rows, columns))
    _write_text(
        out_dir / "group_concentrations.json", json.dumps(_group_sidecar(columns), indent=2) + "\n"
    )
    _write_text(paths["group_qc"], format_tsv(qc_rows, qc_columns))
    _write_text(out_dir / "group_qc.json", json.dumps(_group_sidecar(qc_columns), indent=2) + "\n")
    if accuracy:
        paths["group_accuracy"] = out_dir / "group_accuracy.tsv"
        acc_cols = ["model", "metabolite", "n", "mae", "slope", "intercept", "r2"]
        _write_text(paths["group_accuracy"], format_tsv(accuracy, acc_cols))
    outliers = [
        {
            "scan": r["scan"],
            "model": r["model"],
            "metabolite": q,
            "value": r[q],
            "median": float(
                np.nanmedian([s[q] for s in rows if s["model"] == r["model"] and s[q] is not None])
            ),
            "mad": None,
        }
        for r in rows
        for q in str(r["outliers"]).split(";")
        if q != NA
    ]
    for o in outliers:
        same = [
            s[o["metabolite"]]
            for s in rows
            if s["model"] == o["model"] and s[o["metabolite"]] is not None
        ]
        o["mad"] = float(np.median(np.abs(np.asarray(same) - o["median"])))
    models = sorted({r["model"] for r in rows})
    page = html.render_group_report(
        __version__,
        models,
        len({r["scan"] for r in rows}),
        _figures(rows, qc_rows, records, truth),
        outliers,
        failures,
        accuracy,
        qc_rows,
    )
    _write_text(paths["group_html"], page)
    if failures:
        log.warning(
            "%d scan(s) failed at the participant level: %s",
            len(failures),
            ", ".join(f["scan"] for f in failures),
        )
    return GroupResult(paths, len(rows), failures, outliers, accuracy)
