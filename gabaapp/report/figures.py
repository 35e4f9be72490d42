"""Report figures: pure matplotlib (Agg) functions of plain arrays, each returning a Figure.

Spectra are complex arrays on an ascending ppm axis (gabaapp.spectra convention); every plot
inverts the x axis as MRS convention wants (high ppm on the left). Nothing here computes
science: callers pass what the preprocessing/quantification steps produced.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless: reports are rendered on servers and clusters

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DEFAULT_RANGE_PPM = (0.5, 4.5)
_ACCEPTED = "0.55"
_REJECTED = "tab:red"


def _new_figure(n_rows: int = 1, n_cols: int = 1, height_in: float = 2.6, width_in: float = 7.5):
    """Return (figure, axes array) without touching pyplot's global state.

    Margins are fixed in inches instead of using a layout engine, which would render every
    figure twice (half of the report's time for large scans).
    """
    total_h = height_in * n_rows
    fig = Figure(figsize=(width_in, total_h))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    fig.subplots_adjust(
        left=0.55 / width_in,
        right=1 - 0.15 / width_in,
        bottom=0.5 / total_h,
        top=1 - 0.35 / total_h,
        hspace=0.75,
        wspace=0.4,
    )
    return fig, axes


def _ppm_axis(ax, range_ppm: tuple[float, float]) -> None:
    ax.set_xlim(max(range_ppm), min(range_ppm))
    ax.set_xlabel("chemical shift (ppm)")


def _in_range(ppm: np.ndarray, range_ppm: tuple[float, float]) -> np.ndarray:
    return (ppm >= min(range_ppm)) & (ppm <= max(range_ppm))


def plot_transients(
    ppm: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    rejected: np.ndarray | None = None,
    range_ppm: tuple[float, float] = DEFAULT_RANGE_PPM,
) -> Figure:
    """Return a two-panel figure of the real part of every transient before and after alignment.

    `before`/`after`: complex spectra [n_transients, n_points] on `ppm`; `rejected`: optional
    boolean mask [n_transients] drawn in red in the lower panel.
    """
    fig, axes = _new_figure(2, 1)
    keep = _in_range(ppm, range_ppm)
    rejected = np.zeros(len(after), bool) if rejected is None else np.asarray(rejected, bool)
    for ax, spectra, title in ((axes[0, 0], before, "before"), (axes[1, 0], after, "after")):
        for i, spectrum in enumerate(spectra):
            bad = title == "after" and rejected[i]
            ax.plot(
                ppm[keep],
                spectrum[keep].real,
                lw=0.4,
                color=_REJECTED if bad else _ACCEPTED,
                alpha=0.9 if bad else 0.25,
            )
        ax.set_title(f"transients {title} frequency/phase alignment ({len(spectra)})", fontsize=9)
        ax.set_yticks([])
        _ppm_axis(ax, range_ppm)
    return fig


def plot_drift(
    shift_hz: np.ndarray,
    phase_deg: np.ndarray | None = None,
    rejected: np.ndarray | None = None,
    edit_index: np.ndarray | None = None,
) -> Figure:
    """Return the frequency (and phase) correction applied to each transient, in acquisition
    order; `edit_index` (0 = edit-OFF, 1 = edit-ON per transient) draws one trace per
    condition. Rejected transients are marked with red crosses.
    """
    n_panels = 1 if phase_deg is None else 2
    fig, axes = _new_figure(n_panels, 1, height_in=2.0)
    shift_hz = np.asarray(shift_hz, float)
    index = np.arange(len(shift_hz))
    rejected = np.zeros(len(shift_hz), bool) if rejected is None else np.asarray(rejected, bool)
    groups = np.zeros(len(shift_hz), int) if edit_index is None else np.asarray(edit_index, int)
    names = {0: "edit-OFF", 1: "edit-ON"} if edit_index is not None else {0: "all"}
    series = [(shift_hz, "frequency (Hz)")]
    if phase_deg is not None:
        series.append((np.asarray(phase_deg, float), "phase (deg)"))
    for ax, (values, label) in zip(axes[:, 0], series, strict=True):
        for g in np.unique(groups):
            sel = groups == g
            ax.plot(index[sel], values[sel], ".-", ms=2, lw=0.6, label=names.get(int(g), str(g)))
        ax.plot(index[rejected], values[rejected], "x", color=_REJECTED, label="rejected")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("transient (acquisition order)")
    if rejected.any() or edit_index is not None:
        axes[0, 0].legend(fontsize=7, loc="best")
    axes[0, 0].set_title("drift: correction applied per transient", fontsize=9)
    return fig


def plot_rejection(
    metric: np.ndarray, rejected: np.ndarray, threshold: float | None = None, label: str = "metric"
) -> Figure:
    """Return the outlier metric of each transient with the rejection threshold and the
    rejected transients in red."""
    fig, axes = _new_figure(1, 1, height_in=2.0)
    ax = axes[0, 0]
    metric = np.asarray(metric, float)
    rejected = np.asarray(rejected, bool)
    index = np.arange(len(metric))
    ax.plot(index[~rejected], metric[~rejected], ".", color=_ACCEPTED, ms=3, label="kept")
    ax.plot(index[rejected], metric[rejected], "x", color=_REJECTED, label="rejected")
    if threshold is not None:
        ax.axhline(threshold, color=_REJECTED, lw=0.8, ls="--", label="threshold")
    ax.set_xlabel("transient")
    ax.set_ylabel(label)
    ax.set_title(f"rejected transients: {int(rejected.sum())} of {len(metric)}", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_edit_spectra(
    ppm: np.ndarray,
    off: np.ndarray,
    on: np.ndarray,
    window_ppm: tuple[float, float] = (1.0, 4.5),
    range_ppm: tuple[float, float] = DEFAULT_RANGE_PPM,
) -> Figure:
    """Return OFF, ON and DIFF = ON - OFF (real parts) with the model input window shaded."""
    fig, axes = _new_figure(3, 1, height_in=2.0)
    keep = _in_range(ppm, range_ppm)
    for ax, spectrum, name in (
        (axes[0, 0], off, "edit-OFF"),
        (axes[1, 0], on, "edit-ON"),
        (axes[2, 0], on - off, "DIFF (ON - OFF)"),
    ):
        ax.axvspan(min(window_ppm), max(window_ppm), color="tab:green", alpha=0.08, lw=0)
        ax.plot(ppm[keep], spectrum[keep].real, lw=0.8, color="k")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_yticks([])
        _ppm_axis(ax, range_ppm)
    axes[0, 0].set_title(
        f"model input window {min(window_ppm):.1f}-{max(window_ppm):.1f} ppm (shaded)",
        fontsize=8,
        loc="right",
    )
    return fig


def plot_reconstruction(
    ppm: np.ndarray,
    network_input: np.ndarray,
    reconstruction: np.ndarray,
    row_names: tuple[str, ...],
) -> Figure:
    """Return the network input rows against the autoencoder's reconstruction, with residuals.

    `network_input`, `reconstruction`: [n_rows, n_points] on `ppm` (the network grid).
    """
    n_rows = len(row_names)
    fig, axes = _new_figure(n_rows, 1, height_in=1.7)
    span = (float(ppm.min()), float(ppm.max()))
    for ax, x, y, name in zip(axes[:, 0], network_input, reconstruction, row_names, strict=True):
        ax.plot(ppm, x, lw=0.7, color="k", label="input")
        ax.plot(ppm, y, lw=0.7, color="tab:orange", label="reconstruction")
        # residual drawn below both curves so it never hides them
        offset = min(x.min(), y.min()) - 0.1 * max(np.ptp(x), 1e-12)
        ax.plot(ppm, x - y + offset, lw=0.6, color="tab:red", label="residual (offset)")
        ax.set_title(name, fontsize=8, loc="left")
        ax.set_yticks([])
        _ppm_axis(ax, span)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncols=3)
    return fig


def plot_predicted_vs_true(
    true: np.ndarray, predicted: np.ndarray, names: tuple[str, ...], title: str = ""
) -> Figure:
    """Return one scatter per metabolite of predicted (y) against true (x) with the identity line.

    `true`, `predicted`: [n_spectra, n_metabolites], already normalised the same way.
    """
    n = len(names)
    fig, axes = _new_figure(1, n, height_in=2.2, width_in=2.0 * n)
    for j, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        x, y = true[:, j], predicted[:, j]
        top = float(np.nanmax(np.concatenate([x, y, [1e-9]]))) * 1.05
        ax.plot([0, top], [0, top], color="0.6", lw=0.8, ls="--")
        ax.plot(x, y, "o", ms=3, color="tab:blue")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("true")
        if j == 0:
            ax.set_ylabel("predicted")
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        fig.text(0.005, 0.995, title, fontsize=9, va="top")
    return fig


def plot_distributions(values: dict[str, np.ndarray], outliers: dict[str, np.ndarray]) -> Figure:
    """Return one strip plot per column of `values` with outliers (boolean masks) in red."""
    names = list(values)
    fig, axes = _new_figure(1, max(len(names), 1), height_in=2.4, width_in=1.6 * max(len(names), 1))
    rng_jitter = np.linspace(-0.15, 0.15, 7)  # deterministic jitter: identical reruns
    for ax, name in zip(axes[0], names, strict=False):
        v = np.asarray(values[name], float)
        bad = np.asarray(outliers.get(name, np.zeros(len(v), bool)), bool)
        x = rng_jitter[np.arange(len(v)) % len(rng_jitter)]
        ax.boxplot(v[np.isfinite(v)], positions=[0], widths=0.5, showfliers=False)
        ax.plot(x[~bad], v[~bad], "o", ms=3, color="tab:blue", alpha=0.7)
        ax.plot(x[bad], v[bad], "x", ms=5, color=_REJECTED)
        ax.set_xticks([])
        ax.ticklabel_format(axis="y", useOffset=False)  # absolute values, no "1e-6+0.2" axis
        ax.set_title(name, fontsize=9)
    return fig


def plot_qc_scatter(
    x: np.ndarray, y: np.ndarray, x_label: str, y_label: str, flagged: np.ndarray | None = None
) -> Figure:
    """Return a scatter of two QC metrics across scans, flagged scans in red."""
    fig, axes = _new_figure(1, 1, height_in=2.6, width_in=3.4)
    ax = axes[0, 0]
    x, y = np.asarray(x, float), np.asarray(y, float)
    flagged = np.zeros(len(x), bool) if flagged is None else np.asarray(flagged, bool)
    ax.plot(x[~flagged], y[~flagged], "o", ms=4, color="tab:blue")
    ax.plot(x[flagged], y[flagged], "x", ms=6, color=_REJECTED)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    return fig


def figure_to_data_uri(fig: Figure, fmt: str = "png", dpi: int = 110) -> str:
    """Return `fig` as a data: URI (base64 PNG or SVG) for a self-contained HTML page."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', got {fmt!r}")
    buffer = io.BytesIO()
    # metadata without dates keeps the bytes (and so the reports) identical across reruns
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    mime = "image/png" if fmt == "png" else "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
