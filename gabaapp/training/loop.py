"""The training loop: spectra drawn on the fly from a generator, a fixed seeded validation set,
Adam + clip-norm + ReduceLROnPlateau + early stopping (paper-notes §4.1), a checkpoint after
every epoch from which an interrupted run resumes exactly, metrics TSVs and the model card.

The generator is any object with `batch(n, torch.Generator) -> SynthBatch(x, clean, y, meta)`:
in production `gabaapp.simulate.generator.SpectrumGenerator` (built by `gabaapp.cli.train`).
Its output must depend only on the torch generator passed in, so that resuming is exact.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gabaapp.atomic import atomic_path
from gabaapp.config import TrainConfig
from gabaapp.errors import CannotCreateOutputError, DataError, UsageError
from gabaapp.models.card import save_model
from gabaapp.models.inference import predict
from gabaapp.models.registry import build_model, config_to_dict
from gabaapp.models.yae import YAEConfig, q_weight_at
from gabaapp.training.metrics import evaluate, metrics_to_dict, total_mae, write_metrics_tsv
from gabaapp.training.plots import plot_pred_vs_true
from gabaapp.training.sources import PoolSource, batch_from, load_source_state, source_state

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.tsv"
METRICS_NAME = "metrics_val.tsv"
FIGURE_NAME = "pred_vs_true_val.png"
HISTORY_COLUMNS = (
    "epoch",
    "lr",
    "q_weight",
    "train_loss",
    "train_mae",
    "val_loss",
    "val_mae",
    "seconds",
)
# Model fields that only weight the loss over epochs (not the network): a fine-tuning run
# (`init_from`) may change them.
LOSS_SCHEDULE_FIELDS = ("q_weight_start", "q_weight_ramp_epochs")
# TrainConfig fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("max_epochs", "device", "amp", "time_limit_s")


class BatchSource(Protocol):
    """What the loop needs from a spectrum generator."""

    def batch(self, n: int, generator: torch.Generator) -> Any: ...


@dataclass
class TrainResult:
    """Outcome of `train`: the best model (eval mode), its card, the per-epoch history."""

    model: nn.Module
    card: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    out_dir: Path


def sum_normalise(y: torch.Tensor) -> torch.Tensor:
    """Return concentrations [N, M] divided by their sum per row (the training target)."""
    total = y.sum(-1, keepdim=True)
    return y / torch.where(total > 0, total, torch.ones_like(total))


def draw_set(
    source: BatchSource,
    n: int,
    seed: int,
    draw_size: int,
    device: str | torch.device = "cpu",
    with_clean: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return a fixed seeded set (x, clean, y) of `n` spectra on the CPU (`clean` is [n, rows,
    0] when `with_clean` is False and the source can skip it)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    xs, cs, ys = [], [], []
    for start in range(0, n, draw_size):
        b = batch_from(source, min(draw_size, n - start), gen, with_clean)
        xs.append(b.x.float().cpu())
        cs.append(b.clean.float().cpu())
        ys.append(b.y.float().cpu())
    return torch.cat(xs), torch.cat(cs), torch.cat(ys)


def _autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA (no loss scaling needed), a no-op elsewhere."""
    enabled = amp and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def train_step(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    clean: torch.Tensor,
    target: torch.Tensor,
    epoch: int,
    clip_norm: float,
    amp: bool = True,
) -> torch.Tensor:
    """Run one optimisation step; return [loss, MAE of the sum-normalised outputs] as a
    detached tensor on the model's device (no host synchronisation: on a GPU the caller reads
    it once per drawn chunk)."""
    with _autocast(x.device, amp):
        loss, q = model.loss(x, clean, target, epoch)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimiser.step()
    return torch.stack([loss.detach().float(), (q.detach().float() - target).abs().mean()])


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    x: torch.Tensor,
    clean: torch.Tensor,
    y: torch.Tensor,
    epoch: int,
    batch_size: int = 512,
    amp: bool = True,
) -> tuple[float, np.ndarray]:
    """Return (mean loss, predictions [N, M] as numpy) of `model` in eval mode on a set."""
    model.eval()
    device = next(model.parameters()).device
    losses, preds = [], []
    for i in range(0, len(x), batch_size):
        xb, cb = x[i : i + batch_size].to(device), clean[i : i + batch_size].to(device)
        tb = sum_normalise(y[i : i + batch_size].to(device))
        with _autocast(device, amp):
            loss, q = model.loss(xb, cb, tb, epoch)
        losses.append(float(loss) * len(xb))
        preds.append(q.float().cpu().numpy())
    return sum(losses) / len(x), np.concatenate(preds)


def _initial_weights(
    model_dir: str | Path, model_name: str, model_config: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (state dict, provenance) of the model in `model_dir` (sha256-checked by
    load_model); UsageError when its family or architecture differs from the one trained."""
    from gabaapp.models.card import load_model

    model, card = load_model(model_dir)
    wanted = config_to_dict(model_config)
    changed = sorted(
        k
        for k in set(wanted) | set(card["architecture"])
        if wanted.get(k) != card["architecture"].get(k) and k not in LOSS_SCHEDULE_FIELDS
    )
    if card["model"] != model_name or changed:
        raise UsageError(
            f"--init-from {model_dir}: its {card['model']} architecture differs from the model "
            f"to train ({model_name}; fields {changed}); train with its architecture"
        )
    provenance = {
        "path": str(model_dir),
        "id": card.get("id"),
        "weights_sha256": card["weights"]["sha256"],
        "command": card.get("command"),
    }
    return model.state_dict(), provenance


def _compat_key(model_name: str, model_config: Any, cfg: TrainConfig, provenance: dict) -> str:
    """Return the JSON that a checkpoint must match to be resumed."""
    train = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RESUMABLE_CHANGES}
    key = {
        "model": model_name,
        "architecture": config_to_dict(model_config),
        "train": train,
        "basis": provenance.get("basis"),
        "synthesis": provenance.get("synthesis"),
        "initialised_from": (provenance.get("initialised_from") or {}).get("weights_sha256"),
    }
    return json.dumps(key, sort_keys=True, default=str)


def _rng_state(device: torch.device, gen: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state(), "generator": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(device: torch.device, gen: torch.Generator, state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    gen.set_state(state["generator"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_checkpoint(path: Path, payload: dict) -> None:
    """torch.save to a temporary file, then rename (an interrupted save never corrupts)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: Path, compat: str) -> dict:
    """Return our own checkpoint (weights_only=True: no arbitrary unpickling); UsageError when
    it was made with other options."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file is the user's to remove
        raise DataError(
            f"cannot read checkpoint {path}: {err}; delete it or use a new OUT_DIR"
        ) from err
    if ckpt.get("compat") != compat:
        old, new = json.loads(ckpt.get("compat", "{}")), json.loads(compat)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UsageError(
            f"--resume: checkpoint {path} was made with different {changed} options; rerun with "
            "the original options or use a new OUT_DIR"
        )
    return ckpt


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in history:
            writer.writerow(
                [f"{row[k]:.6g}" if isinstance(row[k], float) else row[k] for k in HISTORY_COLUMNS]
            )


def hardware_description(device: torch.device) -> dict[str, Any]:
    """Return the machine the model was trained on, for the model card."""
    info: dict[str, Any] = {
        "device": str(device),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def train(
    out_dir: str | Path,
    source: BatchSource,
    model_config: Any,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: bool | None = None,
    stop_after_epochs: int | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train model `cfg.model` with `model_config` on spectra drawn from `source`.

    Writes to `out_dir`: checkpoint.pt (every epoch), history.tsv, metrics_val.tsv,
    pred_vs_true_val.png, weights.safetensors + card.json (best epoch). `provenance` goes into
    the card and the resume check (keys: basis, synthesis, simulator_version, valid_for, ...).
    `stop_after_epochs` ends this call early as if interrupted (for tests and time-boxed jobs)
    without writing the card. `init_from` (a model folder with card.json) starts from that
    model's weights instead of a random initialisation (fine-tuning, e.g. for another
    sequence); its family and architecture must equal `cfg.model` and `model_config`, and the
    card records it under `initialised_from`. Returns a TrainResult.
    """
    budget_start = time.perf_counter()  # cfg.time_limit_s counts this call's wall time
    out_dir = Path(out_dir)
    provenance = dict(provenance or {})
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda requested but no CUDA device is available; use --device cpu"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CannotCreateOutputError(f"cannot create {out_dir}: {err}") from err
    ckpt_path = out_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise UsageError(
            f"{out_dir} already holds a training checkpoint; pass --resume or use a new OUT_DIR"
        )
    if resume and not ckpt_path.exists():
        raise UsageError(f"--resume: no {CHECKPOINT_NAME} in {out_dir}; start without --resume")
    init_state = None
    if init_from is not None:
        init_state, provenance["initialised_from"] = _initial_weights(
            init_from, cfg.model, model_config
        )
    compat = _compat_key(cfg.model, model_config, cfg, provenance)
    # Check the checkpoint before the (slow) drawing of the validation set and pool.
    ckpt = _load_checkpoint(ckpt_path, compat) if resume else None

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, model_config).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser,
        mode="min",
        factor=cfg.plateau_factor,
        patience=cfg.plateau_patience_epochs,
        min_lr=cfg.min_lr,
    )
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    needs_clean = bool(getattr(model, "needs_clean", False))
    x_val, c_val, y_val = draw_set(
        source, cfg.n_val, cfg.val_seed, cfg.draw_size, device, needs_clean
    )
    if cfg.pool_size:  # fixed training pool, drawn after (and disjoint from) the validation set
        pool_seed = cfg.seed + 7_919  # a stream apart from the batch-order generator
        pool = draw_set(source, cfg.pool_size, pool_seed, cfg.draw_size, device, needs_clean)
        source = PoolSource(tuple(t.to(device) for t in pool))

    start_epoch, history, bad_epochs = 0, [], 0
    best = {"mae": float("inf"), "epoch": -1, "state": None}
    wall_s = 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(device, gen, ckpt["rng"])
        if ckpt.get("source") is not None:
            load_source_state(source, ckpt["source"])
        elif not hasattr(source, "state_dict"):
            logger.warning(
                "the spectrum source keeps no state_dict(): resumed draws equal an uninterrupted "
                "run only if its output depends on the torch generator alone"
            )
        start_epoch, history, bad_epochs = ckpt["epoch"], ckpt["history"], ckpt["bad_epochs"]
        best = {"mae": ckpt["best_mae"], "epoch": ckpt["best_epoch"], "state": ckpt["best_state"]}
        wall_s = ckpt["wall_s"]
        logger.info("resuming %s at epoch %d", out_dir, start_epoch)

    stopped_early = bad_epochs >= cfg.early_stop_patience
    epoch = start_epoch
    n_epochs_here = 0
    out_of_time = False
    while epoch < cfg.max_epochs and not stopped_early and not out_of_time:
        if stop_after_epochs is not None and n_epochs_here >= stop_after_epochs:
            return TrainResult(model, {}, history, best["epoch"], out_dir)
        t0 = time.perf_counter()
        model.train()
        sums = torch.zeros(2, device=device)
        n_steps = 0
        bar = tqdm(
            total=cfg.n_train,
            desc=f"epoch {epoch + 1}/{cfg.max_epochs}",
            unit="spec",
            disable=None if progress is None else not progress,
            leave=False,
        )
        for start in range(0, cfg.n_train, cfg.draw_size):
            b = batch_from(source, min(cfg.draw_size, cfg.n_train - start), gen, needs_clean)
            x, clean = b.x.to(device).float(), b.clean.to(device).float()
            target = sum_normalise(b.y.to(device).float())
            for i in range(0, len(x), cfg.batch_size):
                sl = slice(i, i + cfg.batch_size)
                sums += train_step(
                    model, optimiser, x[sl], clean[sl], target[sl], epoch, cfg.clip_norm, cfg.amp
                )
                n_steps += 1
            bar.update(len(x))
            if not bar.disable:
                loss_now, mae_now = (sums / n_steps).tolist()
                bar.set_postfix(loss=f"{loss_now:.3g}", mae=f"{mae_now:.4f}")
        bar.close()
        sums = sums.cpu().numpy()
        val_loss, val_pred = evaluate_loss(model, x_val, c_val, y_val, epoch, amp=cfg.amp)
        val_mae = total_mae(y_val.numpy(), val_pred)
        q_weight = None
        if isinstance(model_config, YAEConfig):
            q_weight = q_weight_at(
                epoch, model_config.q_weight_start, model_config.q_weight_ramp_epochs
            )
        row = {
            "epoch": epoch + 1,
            "lr": float(optimiser.param_groups[0]["lr"]),
            "q_weight": float(q_weight if q_weight is not None else 1.0),
            "train_loss": float(sums[0] / n_steps),
            "train_mae": float(sums[1] / n_steps),
            "val_loss": float(val_loss),
            "val_mae": float(val_mae),
            "seconds": time.perf_counter() - t0,
        }
        scheduler.step(val_mae)
        if epoch >= cfg.early_stop_start_epoch:
            if val_mae < best["mae"] - cfg.early_stop_min_delta:
                best = {
                    "mae": val_mae,
                    "epoch": epoch + 1,
                    "state": copy.deepcopy(model.state_dict()),
                }
                bad_epochs = 0
            else:
                bad_epochs += 1
        stopped_early = bad_epochs >= cfg.early_stop_patience
        history.append(row)
        wall_s += row["seconds"]
        epoch += 1
        n_epochs_here += 1
        _save_checkpoint(
            ckpt_path,
            {
                "compat": compat,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(device, gen),
                "source": source_state(source),
                "history": history,
                "bad_epochs": bad_epochs,
                "best_mae": best["mae"],
                "best_epoch": best["epoch"],
                "best_state": best["state"],
                "wall_s": wall_s,
            },
        )
        _write_history(out_dir / HISTORY_NAME, history)
        logger.info(
            "epoch %d: loss %.4g val MAE %.4g lr %.2g", epoch, row["train_loss"], val_mae, row["lr"]
        )
        if on_epoch_end is not None:
            on_epoch_end(row)
        if cfg.time_limit_s is not None:
            # Stop before an epoch that would, at the last epoch's pace, overrun the budget.
            elapsed = time.perf_counter() - budget_start
            out_of_time = elapsed + row["seconds"] > cfg.time_limit_s
            if out_of_time:
                logger.warning(
                    "time limit %.0f s: stopping after epoch %d (%.0f s used)",
                    cfg.time_limit_s,
                    epoch,
                    elapsed,
                )

    if best["state"] is not None:  # restore the best weights (Keras restore_best_weights)
        model.load_state_dict(best["state"])
    best_epoch = best["epoch"] if best["state"] is not None else epoch
    model.eval()
    # Modest batches: the paper-size CNN needs ~8 MB of activations per spectrum.
    pred, _ = predict(model, x_val, 1, batch_size=512)
    rows = evaluate(y_val.numpy(), pred)
    write_metrics_tsv(rows, out_dir / METRICS_NAME)
    plot_pred_vs_true(
        y_val.numpy(), pred, out_dir / FIGURE_NAME, title=f"{cfg.model}: validation set"
    )
    card_fields = {
        "training": {
            "config": dataclasses.asdict(cfg),
            "seed": cfg.seed,
            "epochs_run": epoch,
            "best_epoch": best_epoch,
            "stopped_early": stopped_early,
            "stopped_by_time_limit": out_of_time,
            "wall_time_s": round(wall_s, 2),
            "hardware": hardware_description(device),
            "validation": {"n": cfg.n_val, "seed": cfg.val_seed},
        },
        "metrics": {"validation": metrics_to_dict(rows)},
        **provenance,
    }
    card = save_model(out_dir, cfg.model, model, card_fields)
    return TrainResult(model, card, history, best_epoch, out_dir)


def fit_fixed(
    model_config: Any,
    cfg: TrainConfig,
    x: torch.Tensor,
    clean: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    *,
    seed: int = 0,
) -> nn.Module:
    """Return model `cfg.model` trained for `epochs` on a fixed set (x, clean, y), reshuffled
    every epoch from a generator seeded with `seed` (model selection: no scheduler, no early
    stopping, so every candidate gets the same budget). The model is in eval mode."""
    device = torch.device(cfg.device)
    torch.manual_seed(seed)
    model = build_model(cfg.model, model_config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    target = sum_normalise(y)
    has_clean = clean.shape[-1] > 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2 and len(x) > 1:  # BatchNorm cannot train on one sample
                continue
            cb = clean[idx].to(device) if has_clean else clean[idx]
            train_step(
                model,
                optimiser,
                x[idx].to(device),
                cb,
                target[idx].to(device),
                epoch,
                cfg.clip_norm,
                cfg.amp,
            )
    return model.eval()
