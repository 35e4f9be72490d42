"""Figures of model accuracy: predicted vs true (max-normalised) per metabolite."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gabaapp.constants import METABOLITES  # noqa: E402
from gabaapp.training.metrics import evaluate, max_normalise  # noqa: E402


def plot_pred_vs_true(
    true: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    *,
    names: tuple[str, ...] = METABOLITES,
    title: str = "",
) -> Path:
    """Save a scatter of max-normalised predicted vs true concentrations, one panel per
    metabolite with the identity line, MAE (trivial MAE) and regression; return the path."""
    ct, pt = max_normalise(true), max_normalise(pred)
    rows = evaluate(true, pred, names)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False)
    for m, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        r = rows[name]
        ax.scatter(ct[:, m], pt[:, m], s=4, alpha=0.5, linewidths=0)
        hi = max(1.0, float(np.nanmax(pt[:, m])) if len(pt) else 1.0)
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("true (max-normalised)")
        if m == 0:
            ax.set_ylabel("predicted (max-normalised)")
        ax.text(
            0.03,
            0.97,
            f"MAE {r.mae:.4f} (trivial {r.trivial_mae:.3f})\nslope {r.slope:.3f}  R$^2$ {r.r2:.3f}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
