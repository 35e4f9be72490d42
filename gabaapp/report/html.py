"""Self-contained HTML reports rendered with jinja2 from package templates.

The templates (gabaapp/data/templates/*.html.j2) get plain dicts and lists; figures arrive as
data: URIs (see `figures.figure_to_data_uri`), so each page is a single file that opens
offline. Autoescaping is on: every value from the data is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import jinja2

from gabaapp.report.methods import methods_paragraphs, references_for

_STATUS_LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "info": "info"}


def _fmt(value: object, digits: int = 4) -> str:
    """Format numbers compactly for tables; 'n/a' for missing values."""
    if value is None or value == "":
        return "n/a"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:.{digits}g}"
    return str(value)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gabaapp", "data/templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,  # a missing field is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.globals["status_label"] = _STATUS_LABEL
    return env


def render_participant_report(
    subject: str,
    scans: Sequence[Mapping],
    version: str,
    models: Sequence[str],
    preprocessing: Mapping[str, object] | None = None,
) -> str:
    """Return the HTML of `sub-<subject>.html`.

    Each scan is a dict with keys: name, source, status ('ok'/'failed'), error (str or None),
    qc (rows from `qc.rows_as_dicts`), qc_status, figures (list of {title, caption, uri}),
    notes (optional list of str), results (list of {model, gaba_label, weights_sha256, rows:
    [{metabolite, concentration,
    concentration_sd, ratio_cr, ratio_naa, flags}]}), outputs (list of relative paths).
    """
    return (
        _environment()
        .get_template("participant.html.j2")
        .render(
            subject=subject,
            scans=list(scans),
            version=version,
            methods=methods_paragraphs(version, models, preprocessing),
            references=references_for(models),
        )
    )


def render_group_report(
    version: str,
    models: Sequence[str],
    n_scans: int,
    figures: Sequence[Mapping],
    outliers: Sequence[Mapping],
    failures: Sequence[Mapping],
    accuracy: Sequence[Mapping],
    qc_summary: Sequence[Mapping],
) -> str:
    """Return the HTML of `group.html`.

    figures: [{title, caption, uri}]; outliers: [{scan, model, metabolite, value, median, mad}];
    failures: [{scan, error}]; accuracy: [{model, metabolite, mae, slope, intercept, r2, n}];
    qc_summary: [{scan, status, ...}] (one row per scan).
    """
    return (
        _environment()
        .get_template("group.html.j2")
        .render(
            version=version,
            n_scans=n_scans,
            figures=list(figures),
            outliers=list(outliers),
            failures=list(failures),
            accuracy=list(accuracy),
            qc_summary=list(qc_summary),
            references=references_for(models),
        )
    )
