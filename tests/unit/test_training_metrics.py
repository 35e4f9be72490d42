"""Metrics of paper-notes §1.2 against values computed by hand."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from gabaapp.training.metrics import evaluate, max_normalise, total_mae, write_metrics_tsv
from gabaapp.training.plots import plot_pred_vs_true

NAMES = ("A", "B")


def test_max_normalise_rows_and_zero_rows():
    c = np.array([[1.0, 4.0], [0.0, 0.0], [3.0, 1.5]])
    np.testing.assert_allclose(max_normalise(c), [[0.25, 1.0], [0.0, 0.0], [1.0, 0.5]])


def test_hand_computed_two_metabolites():
    true = np.array([[2.0, 4.0], [1.0, 4.0], [4.0, 2.0]])  # -> [.5,1], [.25,1], [1,.5]
    pred = np.array([[1.0, 1.0], [1.0, 2.0], [2.0, 2.0]])  # -> [1,1], [.5,1], [1,1]
    rows = evaluate(true, pred, NAMES)
    # errors A: .5, .25, 0 -> MAE .25; B: 0, 0, .5 -> MAE 1/6
    assert rows["A"].mae == pytest.approx(0.25)
    assert rows["B"].mae == pytest.approx(1 / 6)
    assert rows["total"].mae == pytest.approx((0.75 + 0.5) / 6)
    assert rows["A"].bias == pytest.approx(0.25)
    # trivial: median of true A = .5 -> |.5-.5|,|.5-.25|,|.5-1| = 0,.25,.5 -> .25
    assert rows["A"].trivial_mae == pytest.approx(0.25)
    # B: median 1 -> 0, 0, .5 -> 1/6
    assert rows["B"].trivial_mae == pytest.approx(1 / 6)
    # regression of A: x = (.5, .25, 1), y = (1, .5, 1)
    x, y = np.array([0.5, 0.25, 1.0]), np.array([1.0, 0.5, 1.0])
    slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    r = np.corrcoef(x, y)[0, 1]
    assert rows["A"].slope == pytest.approx(slope)
    assert rows["A"].intercept == pytest.approx(y.mean() - slope * x.mean())
    assert rows["A"].r2 == pytest.approx(r**2)
    assert rows["total"].n == 6
    assert total_mae(true, pred) == pytest.approx(rows["total"].mae)


def test_perfect_prediction_up_to_scale():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.1, 1, size=(50, 5))
    rows = evaluate(true, 3.7 * true)  # max-normalisation removes the scale
    for row in rows.values():
        assert row.mae == pytest.approx(0, abs=1e-12)
        assert row.slope == pytest.approx(1) and row.r2 == pytest.approx(1)
        assert row.intercept == pytest.approx(0, abs=1e-12)


def test_constant_truth_gives_nan_regression_not_crash():
    true = np.array([[1.0, 0.5], [1.0, 0.5]])
    rows = evaluate(true, np.array([[1.0, 0.4], [1.0, 0.6]]), NAMES)
    assert np.isnan(rows["A"].slope) and rows["B"].mae == pytest.approx(0.1)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        evaluate(np.ones((3, 5)), np.ones((3, 4)))


def test_tsv_and_figure(tmp_path):
    rng = np.random.default_rng(1)
    true = rng.uniform(0.1, 1, size=(40, 5))
    pred = true + rng.normal(0, 0.02, size=true.shape)
    rows = evaluate(true, pred)
    path = write_metrics_tsv(rows, tmp_path / "m.tsv")
    with path.open() as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["metabolite"] for r in table] == ["Cr", "GABA", "Gln", "Glu", "NAA", "total"]
    assert float(table[1]["mae"]) == pytest.approx(rows["GABA"].mae, rel=1e-5)
    assert float(table[1]["trivial_mae"]) > float(table[1]["mae"])
    png = plot_pred_vs_true(true, pred, tmp_path / "fig.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
