"""QC metrics with pass/warn/fail thresholds (the traffic lights of the reports).

Thresholds:
* NAA (or Cr) FWHM: < 0.10 ppm pass, 0.10-0.15 ppm warn, > 0.15 ppm fail: the usual
  linewidth criterion of MEGA-PRESS studies (e.g. Mullins et al. 2014; Near et al. 2021).
* Rejected transients, autoencoder reconstruction residual and SNR have no consensus
  thresholds; the defaults below are gabaapp heuristics, labelled as such in the reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

PASS, WARN, FAIL, INFO = "pass", "warn", "fail", "info"


@dataclass(frozen=True)
class Threshold:
    """Traffic light of one metric: `warn_at`/`fail_at` limits; `higher_is_better` flips them."""

    name: str
    units: str
    warn_at: float | None
    fail_at: float | None
    higher_is_better: bool = False
    source: str = "gabaapp heuristic"
    description: str = ""

    def status(self, value: float | None) -> str:
        """Return 'pass', 'warn', 'fail', or 'info' (no threshold or value not finite)."""
        if value is None or not math.isfinite(value) or self.warn_at is None:
            return INFO
        sign = -1.0 if self.higher_is_better else 1.0
        v = sign * value
        if self.fail_at is not None and v > sign * self.fail_at:
            return FAIL
        if v >= sign * self.warn_at:
            return WARN
        return PASS

    def rule(self) -> str:
        """Return the rule as text, e.g. '< 0.1 pass, 0.1-0.15 warn, > 0.15 fail'."""
        if self.warn_at is None:
            return "no threshold"
        if self.higher_is_better:
            return f"> {self.warn_at:g} pass, {self.fail_at:g}-{self.warn_at:g} warn, < {self.fail_at:g} fail"
        return f"< {self.warn_at:g} pass, {self.warn_at:g}-{self.fail_at:g} warn, > {self.fail_at:g} fail"


THRESHOLDS: dict[str, Threshold] = {
    "naa_fwhm_ppm": Threshold(
        "NAA FWHM",
        "ppm",
        0.10,
        0.15,
        source="common MEGA-PRESS practice (cf. Mullins et al. 2014; Near et al. 2021)",
        description="full width at half maximum of the NAA singlet at 2.01 ppm, edit-OFF",
    ),
    "cr_fwhm_ppm": Threshold(
        "Cr FWHM",
        "ppm",
        0.10,
        0.15,
        source="common MEGA-PRESS practice (cf. Mullins et al. 2014; Near et al. 2021)",
        description="full width at half maximum of the Cr singlet at 3.0 ppm, edit-OFF",
    ),
    "snr": Threshold(
        "SNR (NAA)",
        "",
        40.0,
        20.0,
        higher_is_better=True,
        description="NAA peak height over the noise SD of a signal-free region, edit-OFF",
    ),
    "rejected_fraction": Threshold(
        "rejected transients",
        "fraction",
        0.10,
        0.25,
        description="fraction of transients excluded as outliers",
    ),
    "reconstruction_residual": Threshold(
        "YAE reconstruction residual",
        "relative RMS",
        0.10,
        0.25,
        description=(
            "RMS(input - reconstruction) / RMS(input) on the network grid; large values mean "
            "data unlike the simulated training spectra"
        ),
    ),
    "drift_range_hz": Threshold(
        "frequency drift range",
        "Hz",
        None,
        None,
        description="max - min of the frequency correction over transients",
    ),
}


@dataclass(frozen=True)
class QCRow:
    """One line of the QC table of a report."""

    key: str
    name: str
    value: float | None
    units: str
    status: str
    rule: str
    source: str
    description: str


def qc_rows(metrics: Mapping[str, float | None]) -> list[QCRow]:
    """Return the QC table: one row per metric in `metrics`, known ones with traffic lights.

    Unknown metric names are kept with status 'info' so nothing measured is hidden.
    """
    rows = []
    # metrics with a traffic light first, in THRESHOLDS order; then the others as given
    keys = [k for k in THRESHOLDS if k in metrics] + [k for k in metrics if k not in THRESHOLDS]
    for key in keys:
        value = metrics[key]
        value = None if value is None else float(value)
        t = THRESHOLDS.get(key, Threshold(key, "", None, None, description=""))
        rows.append(
            QCRow(key, t.name, value, t.units, t.status(value), t.rule(), t.source, t.description)
        )
    return rows


def worst_status(rows: list[QCRow]) -> str:
    """Return the worst traffic light among `rows` ('info' when none has a threshold)."""
    order = {INFO: 0, PASS: 1, WARN: 2, FAIL: 3}
    return max((r.status for r in rows), key=order.__getitem__, default=INFO)


def reconstruction_residual(network_input: np.ndarray, reconstruction: np.ndarray) -> float:
    """Return RMS(input - reconstruction) / RMS(input) over all rows (0 = perfect)."""
    x = np.asarray(network_input, float)
    y = np.asarray(reconstruction, float)
    denom = float(np.sqrt(np.mean(x**2)))
    return float(np.sqrt(np.mean((x - y) ** 2)) / denom) if denom > 0 else float("nan")


def rows_as_dicts(rows: list[QCRow]) -> list[dict]:
    """Return `rows` as plain dicts (JSON sidecars, templates)."""
    return [asdict(r) for r in rows]
