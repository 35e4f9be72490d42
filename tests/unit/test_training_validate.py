"""`gabaapp train validate`: phantom datasets through the participant steps, paper metrics.

The dataset is made with the real `gabaapp simulate bids --phantom` command (tiny: 2 coils x 8
transients), quantified with the bundled cnn-v2 and the LCM baseline. The metrics written
are checked against an independent recomputation from the written predictions, and the
predictions against the notebook API (the participant-level path) on the same file.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gabaapp.cli.run import main
from gabaapp.constants import METABOLITES
from gabaapp.errors import DataError, UsageError
from gabaapp.training.validate import (
    POOLED,
    Predictions,
    compute_metrics,
    read_phantom_truth,
    split_targets,
)

N_PARTICIPANTS = 3


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """A 3-participant phantom BIDS dataset from the real CLI (GABA 0, 1, 2 mM)."""
    out = tmp_path_factory.mktemp("phantom") / "ph"
    argv = ["simulate", "bids", str(out), "--phantom", "--n-participants", str(N_PARTICIPANTS)]
    argv += ["--n-coils", "2", "--n-transients", "8", "--seed", "3"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def validated(phantom, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("validation")
    assert main(["train", "validate", "cnn-v2", "lcm", str(phantom), "--out", str(out)]) == 0
    return out


def _read_tsv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _norm(c: np.ndarray) -> np.ndarray:
    return c / c.max(axis=1, keepdims=True)


def test_metrics_equal_independent_recomputation(validated, phantom, capsys):
    preds = _read_tsv(validated / "validation_predictions.tsv")
    metrics = {
        (r["dataset"], r["model"], r["metabolite"]): r
        for r in _read_tsv(validated / "validation_metrics.tsv")
    }
    truth = {r["participant_id"]: r for r in _read_tsv(phantom / "participants.tsv")}
    cols = [m.lower() for m in METABOLITES]
    for model in ("cnn-v2", "lcm"):
        rows = [r for r in preds if r["model"] == model]
        assert len(rows) == N_PARTICIPANTS
        # truth in the predictions table is exactly participants.tsv
        for r in rows:
            assert [float(r[f"true_{c}"]) for c in cols] == [
                float(truth[r["participant_id"]][c]) for c in cols
            ]
        true = _norm(np.array([[float(r[f"true_{c}"]) for c in cols] for r in rows]))
        pred = _norm(np.array([[float(r[f"pred_{c}"]) for c in cols] for r in rows]))
        for dataset in ("ph", POOLED):
            for m, name in enumerate(METABOLITES):
                row = metrics[(dataset, model, name)]
                assert int(row["n"]) == N_PARTICIPANTS
                assert float(row["mae"]) == pytest.approx(
                    np.abs(pred[:, m] - true[:, m]).mean(), rel=1e-5, abs=1e-9
                )
                trivial = np.abs(np.median(true[:, m]) - true[:, m]).mean()
                assert float(row["trivial_mae"]) == pytest.approx(trivial, rel=1e-5, abs=1e-9)
            total = metrics[(dataset, model, "total")]
            assert float(total["mae"]) == pytest.approx(np.abs(pred - true).mean(), rel=1e-5)
            assert int(total["n"]) == N_PARTICIPANTS * len(METABOLITES)
    # the GABA truth differs between participants, so its trivial MAE is not zero
    assert float(metrics[("ph", "lcm", "GABA")]["trivial_mae"]) > 0.01
    # the LCM on clean phantom spectra is far better than the trivial predictor
    lcm = metrics[("ph", "lcm", "GABA")]
    assert float(lcm["mae"]) < 0.5 * float(lcm["trivial_mae"])
    sidecar = json.loads((validated / "validation_metrics.json").read_text())
    assert set(sidecar["Models"]) == {"cnn-v2", "lcm"}
    assert sidecar["Metrics"]["ph/lcm"]["GABA"]["mae"] == pytest.approx(float(lcm["mae"]), rel=1e-5)
    assert (validated / "cnn-v2_ph.png").stat().st_size > 1000
    assert (validated / "lcm_ph.png").stat().st_size > 1000


def test_predictions_match_participant_path(validated, phantom):
    """The validation predictions are what the notebook API / participant level gives."""
    from gabaapp.pipeline import quantify

    preds = [r for r in _read_tsv(validated / "validation_predictions.tsv") if r["model"] == "lcm"]
    row = preds[0]
    svs = next((phantom / row["participant_id"] / "mrs").glob("*_svs.nii.gz"))
    water = next((phantom / row["participant_id"] / "mrs").glob("*_mrsref.nii.gz"))
    records = quantify(svs, water, models=["lcm"])
    ours = {r["metabolite"]: r["concentration"] for r in records}
    expected = np.array([ours[m] for m in METABOLITES])
    got = np.array([float(row[f"pred_{m.lower()}"]) for m in METABOLITES])
    # the report sum-normalises; the validation keeps the fit's scale: compare shapes
    np.testing.assert_allclose(got / got.sum(), expected / expected.sum(), rtol=1e-6)


def test_dataset_without_truth_is_a_data_error(phantom, tmp_path):
    ds = tmp_path / "no_truth"
    shutil.copytree(phantom, ds)
    (ds / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\n")
    with pytest.raises(DataError, match="cr gaba gln glu naa"):
        read_phantom_truth(ds)
    # the CLI turns it into the DataError exit code before quantifying anything
    assert main(["train", "validate", "lcm", str(ds), "--out", str(tmp_path / "o")]) == 65
    (ds / "participants.tsv").unlink()
    with pytest.raises(DataError, match="participants.tsv"):
        read_phantom_truth(ds)


def test_split_targets_tells_models_from_datasets(phantom, tmp_path):
    from gabaapp.pipeline import bundled_model_dir

    cnn_dir = bundled_model_dir("cnn-v2")
    models, datasets = split_targets([str(cnn_dir), str(phantom), "lcm", "yae"])
    assert [m.label for m in models] == ["cnn-v2", "lcm", "yae-v4"]
    assert [m.family for m in models] == ["cnn", "lcm", "yae"]
    assert datasets == [phantom]
    with pytest.raises(UsageError, match="dataset"):
        split_targets(["lcm"])
    with pytest.raises(UsageError, match="model"):
        split_targets([str(phantom)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="card.json"):
        split_targets([str(tmp_path / "empty"), str(phantom)])
    with pytest.raises(UsageError, match="more than once"):
        split_targets(["lcm", "lcm", str(phantom)])


def test_pooled_metrics_concatenate_datasets():
    """Pooled = the metrics of all datasets' scans together; scale-free per spectrum."""
    rng = np.random.default_rng(0)
    t1, t2 = rng.uniform(0.5, 10, (4, 5)), rng.uniform(0.5, 10, (6, 5))
    a = Predictions("a", "m", [f"s{i}" for i in range(4)], ["p"] * 4, list(t1), list(3 * t1))
    noisy = t2 + rng.normal(0, 0.3, t2.shape)
    b = Predictions("b", "m", [f"s{i}" for i in range(6)], ["p"] * 6, list(t2), list(noisy))
    metrics = compute_metrics([a, b], ["m"])
    assert metrics[("a", "m")]["total"].mae == pytest.approx(0.0, abs=1e-12)  # 3x = exact
    assert metrics[("a", "m")]["GABA"].slope == pytest.approx(1.0)
    true = _norm(np.vstack([t1, t2]))
    pred = _norm(np.vstack([3 * t1, noisy]))
    pooled = metrics[(POOLED, "m")]
    assert pooled["total"].n == 50
    assert pooled["total"].mae == pytest.approx(np.abs(pred - true).mean())
    assert pooled["NAA"].mae == pytest.approx(np.abs(pred[:, 4] - true[:, 4]).mean())
