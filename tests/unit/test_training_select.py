"""Model selection: folds, storage handling, a tiny real study shared through a journal file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from gabaapp.config import TrainConfig
from gabaapp.errors import UsageError
from gabaapp.training.select import (
    BEST_NAME,
    RESULTS_NAME,
    SearchSpace,
    kfold_indices,
    load_search_space,
    open_storage,
    run_selection,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_set(n: int = 96, points: int = 32):
    """Spectra whose rows are concentration-weighted fixed random patterns plus noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(n, 5, generator=g) + 0.05
    patterns = torch.randn(5, 4, points, generator=g)
    clean = torch.einsum("nm,mrp->nrp", y, patterns) / 3
    x = clean + 0.01 * torch.randn(clean.shape, generator=g)
    return x, clean, y


def test_kfold_partitions_round_robin():
    folds = kfold_indices(10, 3, seed=1)
    vals = [v for _, v in folds]
    assert sorted(np.concatenate(vals).tolist()) == list(range(10))
    assert [len(v) for v in vals] == [4, 3, 3]
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == 10
    np.testing.assert_array_equal(kfold_indices(10, 3, seed=1)[0][1], folds[0][1])
    with pytest.raises(UsageError):
        kfold_indices(3, 5, 0)


def test_storage_errors(tmp_path):
    with pytest.raises(UsageError, match="cannot open"):
        open_storage("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with pytest.raises(UsageError, match="cannot open"):
        open_storage(f"sqlite:///{tmp_path}/no/such/dir/study.db")
    with pytest.raises(UsageError, match="does not exist"):
        open_storage(str(tmp_path / "missing" / "journal.log"))


def test_search_space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('model = "yae"\npreset = "yae_paper"\n[space]\nunits = [8, 16]\nlin = 3\n')
    space = load_search_space(path)
    assert space.choices == {"units": (8, 16)} and space.fixed == {"lin": 3}
    with pytest.raises(UsageError, match="unknown"):
        SearchSpace("yae", None, {"units": (8, 16)}, {"bogus": 1})


def test_tiny_study_shared_through_journal(tmp_path):
    x, clean, y = toy_set()
    space = SearchSpace(
        "yae",
        "yae_paper",
        {"units": (8, 16), "q_act_last": ("sigmoid", "softmax")},
        {"n_points": 32, "lin": 2, "lout": 2, "layers": 2},
    )
    cfg = TrainConfig(model="yae", batch_size=16, lr=1e-3)
    journal = str(tmp_path / "study.log")
    kw = dict(k=2, epochs=1, storage=journal, study_name="toy", sampler="gp", n_startup=2)
    run_selection(tmp_path / "a", space, cfg, (x, clean, y), n_trials=2, **kw)
    study = run_selection(tmp_path / "b", space, cfg, (x, clean, y), n_trials=2, **kw)
    assert len(study.trials) == 4  # the second process joined the same study
    with (tmp_path / "b" / RESULTS_NAME).open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 4 and rows[0]["state"] == "COMPLETE"
    values = [float(r["cv_mae"]) for r in rows if r["cv_mae"] != "n/a"]
    assert values == sorted(values) and all(0 < v < 1 for v in values)
    best = json.loads((tmp_path / "b" / BEST_NAME).read_text())
    assert best["architecture"]["units"] in (8, 16) and len(best["fold_mae"]) == 2
    assert best["cv_mae"] == pytest.approx(np.mean(best["fold_mae"]))
