"""Training loop on a toy generator (Lorentzian singlets straight on a short ppm grid): exact
resume, learning, checkpoint/resume errors, card contents."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gabaapp.config import TrainConfig
from gabaapp.errors import UsageError
from gabaapp.models.card import load_model
from gabaapp.models.registry import model_config
from gabaapp.training.loop import CHECKPOINT_NAME, HISTORY_NAME, METRICS_NAME, train

N_POINTS = 64
PEAKS = torch.tensor([0.15, 0.3, 0.45, 0.6, 0.85])  # position of each metabolite, grid fraction
EDITED = torch.tensor([0.0, 1.0, 0.5, 0.5, 0.0])  # how much of each line edit-ON removes


@dataclass
class Batch:
    x: torch.Tensor
    clean: torch.Tensor
    y: torch.Tensor
    meta: dict


class ToyGenerator:
    """Complex Lorentzian singlets with random concentrations, linewidth and noise; every random
    number comes from the torch generator passed to `batch`."""

    def __init__(self, noise: float = 0.02):
        self.noise = noise
        self.grid = torch.linspace(0, 1, N_POINTS)

    def batch(self, n: int, generator: torch.Generator) -> Batch:
        y = torch.rand(n, 5, generator=generator) + 0.05
        lw = 0.01 + 0.02 * torch.rand(n, 1, 1, generator=generator)
        lines = lw / (lw + 1j * (self.grid - PEAKS[:, None]))  # [n, 5, points]
        off = (y[:, :, None] * lines).sum(1)
        on = (y[:, :, None] * (1 - EDITED[:, None]) * lines).sum(1)
        clean = torch.stack([off.imag, off.real, on.imag, on.real], 1).float()
        scale = off.abs().amax(-1)[:, None, None]
        clean = clean / scale
        x = clean + self.noise * torch.randn(clean.shape, generator=generator)
        return Batch(x, clean, y, {"lw": lw.squeeze()})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(
        model="yae", n_train=256, n_val=128, batch_size=32, draw_size=128, lr=1e-3, max_epochs=2
    )
    base.update(kw)
    return TrainConfig(**base)


def tiny_yae():
    return model_config("yae", n_points=N_POINTS, lin=3, lout=3, units=16, dropout=0.1)


@pytest.mark.parametrize("pool_size", [0, 200])
def test_two_epochs_equal_one_plus_resume(tmp_path, pool_size):
    cfg = tiny_cfg(pool_size=pool_size)
    full = train(tmp_path / "a", ToyGenerator(), tiny_yae(), cfg, progress=False)
    part = train(
        tmp_path / "b", ToyGenerator(), tiny_yae(), cfg, progress=False, stop_after_epochs=1
    )
    assert len(part.history) == 1 and (tmp_path / "b" / CHECKPOINT_NAME).is_file()
    resumed = train(tmp_path / "b", ToyGenerator(), tiny_yae(), cfg, progress=False, resume=True)
    for (k, v), (k2, v2) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert k == k2
        torch.testing.assert_close(v, v2, rtol=0, atol=0)
    assert [h["val_mae"] for h in full.history] == [h["val_mae"] for h in resumed.history]


def test_training_learns_far_below_trivial_and_writes_card(tmp_path):
    cfg = tiny_cfg(model="cnn", n_train=1024, max_epochs=6, batch_size=16, lr=3e-3)
    mcfg = model_config(
        "cnn",
        "cnn_cpu",
        n_points=N_POINTS,
        c1=5,
        c2=5,
        c3=3,
        c4=1,
        s1=-1,
        s2=-2,
        f1=4,
        f2=4,
        dense=32,
    )
    res = train(
        tmp_path,
        ToyGenerator(),
        mcfg,
        cfg,
        progress=False,
        provenance={"basis": {"sequence_hashes": ["toy"]}},
    )
    with (tmp_path / METRICS_NAME).open() as fh:
        rows = {r["metabolite"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert float(rows["total"]["mae"]) < 0.5 * float(rows["total"]["trivial_mae"])
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["training"]["epochs_run"] == 6 and card["training"]["seed"] == 0
    assert card["basis"]["sequence_hashes"] == ["toy"]
    assert card["metrics"]["validation"]["GABA"]["mae"] == pytest.approx(
        float(rows["GABA"]["mae"]), rel=1e-4
    )
    val_mae = [h["val_mae"] for h in res.history]
    assert min(val_mae) < val_mae[0]
    with (tmp_path / HISTORY_NAME).open() as fh:
        assert len(list(csv.DictReader(fh, delimiter="\t"))) == 6
    loaded, _ = load_model(tmp_path, sequence_hash="toy")
    x = ToyGenerator().batch(4, torch.Generator().manual_seed(9)).x
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), res.model(x))


def test_early_stopping_restores_best(tmp_path):
    # lr so small nothing improves beyond min_delta: stops after `patience` bad epochs.
    cfg = tiny_cfg(
        model="yae",
        lr=1e-9,
        max_epochs=10,
        early_stop_patience=2,
        early_stop_start=0,
        early_stop_min_delta=1.0,
    )
    res = train(tmp_path, ToyGenerator(), tiny_yae(), cfg, progress=False)
    assert len(res.history) == 3 and res.best_epoch == 1
    assert res.card["training"]["stopped_early"] is True


def test_checkpoint_errors(tmp_path):
    cfg = tiny_cfg(max_epochs=1)
    train(tmp_path, ToyGenerator(), tiny_yae(), cfg, progress=False)
    with pytest.raises(UsageError, match="--resume"):
        train(tmp_path, ToyGenerator(), tiny_yae(), cfg, progress=False)
    with pytest.raises(UsageError, match="different"):
        train(
            tmp_path,
            ToyGenerator(),
            tiny_yae(),
            tiny_cfg(max_epochs=2, lr=5e-4),
            progress=False,
            resume=True,
        )
    with pytest.raises(UsageError, match="no checkpoint"):
        train(tmp_path / "new", ToyGenerator(), tiny_yae(), cfg, progress=False, resume=True)
    # max_epochs may grow on resume: training continues from epoch 1.
    res = train(
        tmp_path, ToyGenerator(), tiny_yae(), tiny_cfg(max_epochs=2), progress=False, resume=True
    )
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert np.isfinite(res.history[-1]["val_mae"])


def test_mixture_source_mixes_within_a_batch_and_is_seeded():
    from gabaapp.training.sources import MixtureSource

    quiet, noisy = ToyGenerator(noise=0.0), ToyGenerator(noise=0.5)
    mix = MixtureSource([quiet, noisy])
    b = mix.batch(200, torch.Generator().manual_seed(5))
    src = b.meta["source"]
    assert 40 < int(src.sum()) < 160  # both sources present
    residual = (b.x - b.clean).abs().mean(dim=(1, 2))
    assert torch.all(residual[src == 0] == 0) and torch.all(residual[src == 1] > 0.1)
    again = mix.batch(200, torch.Generator().manual_seed(5))
    torch.testing.assert_close(again.x, b.x, rtol=0, atol=0)


def test_time_limit_stops_after_an_epoch_and_writes_the_best_model(tmp_path):
    # A budget shorter than one epoch: the first epoch runs, the second would overrun it.
    cfg = tiny_cfg(max_epochs=50, time_limit_s=1e-3)
    res = train(tmp_path, ToyGenerator(), tiny_yae(), cfg, progress=False)
    assert len(res.history) == 1
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["training"]["stopped_by_time_limit"] is True
    assert card["training"]["epochs_run"] == 1
    load_model(tmp_path)  # the written model loads


def test_time_limit_must_be_positive():
    with pytest.raises(UsageError, match="time-limit"):
        tiny_cfg(time_limit_s=0)


def test_resume_is_exact_with_fresh_sobol_spectra(tmp_path):
    # Fresh spectra every epoch (pool_size 0) from the real generator with the Sobol sampler:
    # the checkpoint carries the Sobol stream position (SpectrumGenerator.state_dict).
    from gabaapp.config import SynthesisConfig
    from gabaapp.physics.basis import default_basis
    from gabaapp.simulate import SpectrumGenerator

    def source():
        return SpectrumGenerator(default_basis(), SynthesisConfig.paper())

    cfg = tiny_cfg(n_train=32, n_val=16, draw_size=16, batch_size=16, pool_size=0)
    mcfg = model_config("yae", lin=3, lout=3, units=8, dropout=0.1)
    full = train(tmp_path / "a", source(), mcfg, cfg, progress=False)
    train(tmp_path / "b", source(), mcfg, cfg, progress=False, stop_after_epochs=1)
    resumed = train(tmp_path / "b", source(), mcfg, cfg, progress=False, resume=True)
    for v, v2 in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(v, v2, rtol=0, atol=0)


def test_init_from_starts_at_that_models_weights(tmp_path):
    cfg = tiny_cfg()
    first = train(tmp_path / "a", ToyGenerator(), tiny_yae(), cfg, progress=False)
    start = train(
        tmp_path / "b",
        ToyGenerator(),
        tiny_yae(),
        cfg,
        progress=False,
        stop_after_epochs=0,
        init_from=tmp_path / "a",
    )
    for v, v2 in zip(
        first.model.state_dict().values(), start.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(v.cpu(), v2.cpu(), rtol=0, atol=0)
    tuned = train(
        tmp_path / "c", ToyGenerator(), tiny_yae(), cfg, progress=False, init_from=tmp_path / "a"
    )
    card = json.loads((tmp_path / "c" / "card.json").read_text())
    assert card["initialised_from"]["weights_sha256"] == first.card["weights"]["sha256"]
    assert tuned.best_epoch >= 1


def test_init_from_a_different_architecture_is_refused(tmp_path):
    train(tmp_path / "a", ToyGenerator(), tiny_yae(), tiny_cfg(max_epochs=1), progress=False)
    wider = model_config("yae", n_points=N_POINTS, lin=3, lout=3, units=32, dropout=0.1)
    with pytest.raises(UsageError, match="units"):
        train(tmp_path / "b", ToyGenerator(), wider, tiny_cfg(), init_from=tmp_path / "a")
