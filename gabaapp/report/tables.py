"""The concentration and QC tables: column definitions (BIDS TSV sidecar style), row builders,
and TSV text formatting/parsing. Pure functions; callers write the text atomically.

Per scan and quantifier, `*_desc-<model>_concentrations.tsv` holds one row per metabolite in
METABOLITES order plus a `Glx` row (Glu + Gln). Concentrations are relative (the five sum to 1,
as the models output them); ratios to Cr and NAA follow. Uncertainty: the SD the quantifier
reports (Monte-Carlo dropout SD for the networks, CRLB-like SD for linear-combination
modelling), and `percent_sd` = 100 SD / value, the analogue of LCModel's %SD. SDs of sums and
ratios use first-order error propagation assuming independent errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from gabaapp.constants import METABOLITES

NA = "n/a"
GLX = "Glx"
# %SD above which a value is flagged (the usual LCModel reliability cut-off, Provencher 1993).
HIGH_PERCENT_SD = 20.0

CONCENTRATION_COLUMNS: dict[str, dict[str, str]] = {
    "metabolite": {
        "LongName": "Metabolite",
        "Description": "Cr, GABA, Gln, Glu, NAA, and Glx = Glu + Gln.",
    },
    "reported_as": {
        "LongName": "Reported as",
        "Description": "What the value measures: 'GABA+' means GABA plus co-edited "
        "macromolecules (an LCM fit without an MM component, or a network trained without "
        "co-edited MM), 'GABA' means GABA with the MM modelled (LCM include_mm) or treated as "
        "a training nuisance (networks); other metabolites repeat their name.",
    },
    "concentration": {
        "LongName": "Relative concentration",
        "Description": "Concentration relative to the sum of Cr, GABA, Gln, Glu and NAA "
        "(sum-normalised, as the models are trained); not absolute.",
        "Units": "arbitrary (fraction of the five-metabolite sum)",
    },
    "concentration_sd": {
        "LongName": "Uncertainty (SD) of the relative concentration",
        "Description": "Standard deviation over Monte-Carlo dropout passes (networks) or from "
        "the fit covariance (linear-combination modelling); the deep-learning analogue of "
        "LCModel's SD.",
        "Units": "same as concentration",
    },
    "percent_sd": {
        "LongName": "Relative uncertainty",
        "Description": "100 * concentration_sd / concentration (cf. LCModel %SD).",
        "Units": "percent",
    },
    "ratio_cr": {
        "LongName": "Ratio to Cr",
        "Description": "concentration / concentration of Cr.",
        "Units": "ratio",
    },
    "ratio_cr_sd": {
        "LongName": "Uncertainty (SD) of the ratio to Cr",
        "Description": "First-order propagation of the SDs, errors assumed independent.",
        "Units": "ratio",
    },
    "ratio_naa": {
        "LongName": "Ratio to NAA",
        "Description": "concentration / concentration of NAA.",
        "Units": "ratio",
    },
    "ratio_naa_sd": {
        "LongName": "Uncertainty (SD) of the ratio to NAA",
        "Description": "First-order propagation of the SDs, errors assumed independent.",
        "Units": "ratio",
    },
    "flags": {
        "LongName": "Flags",
        "Description": "Semicolon-separated warnings, 'n/a' when none: high_percent_sd "
        f"(percent_sd > {HIGH_PERCENT_SD:g}), qc_warn / qc_fail (scan QC traffic light), "
        "large_residual (autoencoder reconstruction residual above its warn level: data "
        "unlike the training spectra), nonpositive (concentration <= 0, ratios undefined).",
    },
}


def _ratio(a: float, sa: float, b: float, sb: float) -> tuple[float, float]:
    """Return (a/b, first-order SD) or (nan, nan) when b <= 0."""
    if not b > 0:
        return math.nan, math.nan
    r = a / b
    if a == 0:
        return r, sa / b
    return r, abs(r) * math.sqrt((sa / a) ** 2 + (sb / b) ** 2)


def concentration_rows(
    concentrations: Sequence[float],
    sd: Sequence[float],
    *,
    gaba_label: str = "GABA+",
    scan_flags: Iterable[str] = (),
    names: Sequence[str] = METABOLITES,
) -> list[dict]:
    """Return the rows of one `*_concentrations.tsv`: one per metabolite plus Glx.

    `concentrations`/`sd`: relative concentrations and their SDs in `names` order (renormalised
    here to sum 1 so tables of different quantifiers compare). `scan_flags`: flags of the whole
    scan (e.g. 'qc_fail') added to every row.
    """
    c = np.asarray(concentrations, float)
    s = np.asarray(sd, float)
    total = c.sum()
    if total > 0:  # sum-normalise; SDs scale alike
        c, s = c / total, s / total
    values = dict(zip(names, zip(c.tolist(), s.tolist(), strict=True), strict=True))
    glu, gln = values.get("Glu"), values.get("Gln")
    if glu and gln:
        values[GLX] = (glu[0] + gln[0], math.hypot(glu[1], gln[1]))
    cr = values.get("Cr", (math.nan, math.nan))
    naa = values.get("NAA", (math.nan, math.nan))
    rows = []
    for name, (value, value_sd) in values.items():
        flags = list(scan_flags)
        percent = 100.0 * value_sd / value if value > 0 else math.nan
        if value <= 0:
            flags.append("nonpositive")
        elif percent > HIGH_PERCENT_SD:
            flags.append("high_percent_sd")
        r_cr, r_cr_sd = _ratio(value, value_sd, *cr)
        r_naa, r_naa_sd = _ratio(value, value_sd, *naa)
        label = {"GABA": gaba_label, GLX: "Glx (Glu+Gln)"}.get(name, name)
        rows.append(
            {
                "metabolite": name,
                "reported_as": label,
                "concentration": value,
                "concentration_sd": value_sd,
                "percent_sd": percent,
                "ratio_cr": r_cr,
                "ratio_cr_sd": r_cr_sd,
                "ratio_naa": r_naa,
                "ratio_naa_sd": r_naa_sd,
                "flags": ";".join(dict.fromkeys(flags)) or NA,
            }
        )
    return rows


def _cell(value: object) -> str:
    """Format one TSV cell: 'n/a' for missing/NaN, 7 significant digits for floats."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | np.floating):
        return NA if not math.isfinite(value) else f"{float(value):.7g}"
    text = str(value)
    return text.replace("\t", " ").replace("\n", " ") or NA


def format_tsv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """Return the TSV text of `rows` with header `columns` (missing cells 'n/a')."""
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(row.get(c)) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def parse_tsv(text: str) -> list[dict[str, object]]:
    """Return the rows of TSV `text` as dicts; numbers become floats, 'n/a' becomes None."""
    lines = [line for line in text.splitlines() if line]
    if not lines:
        return []
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        cells = line.split("\t")
        row: dict[str, object] = {}
        for key, cell in zip(header, cells, strict=False):
            if cell == NA:
                row[key] = None
                continue
            try:
                row[key] = float(cell)
            except ValueError:
                row[key] = cell
        rows.append(row)
    return rows


def column_descriptions(columns: Iterable[str], extra: Mapping[str, Mapping] | None = None) -> dict:
    """Return the BIDS sidecar column descriptions of `columns` (known ones, plus `extra`)."""
    known = {**CONCENTRATION_COLUMNS, **(extra or {})}
    return {c: dict(known[c]) for c in columns if c in known}
