"""Bayesian model selection with Optuna (the only optuna import in gabaapp).

As in the paper (paper-notes §4.6): a declared discrete search space, a Gaussian-process
sampler with expected improvement (Optuna GPSampler; TPE as fallback or on request), k-fold
cross-validation on a fixed simulated set with seeded shuffling and round-robin ("Venetian
blinds") folds, objective = mean over folds of the max-normalised total MAE. Numeric choices are
index-encoded (ordinal integers), as the paper's GP did; strings are categorical. A study lives
in an Optuna storage (RDB URL or journal file) with load_if_exists, so many processes or
cluster nodes can work on one study.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from gabaapp.config import TrainConfig
from gabaapp.errors import NoInputError, UsageError
from gabaapp.models.inference import predict
from gabaapp.models.registry import PRESETS, config_to_dict, model_config
from gabaapp.training.loop import fit_fixed
from gabaapp.training.metrics import total_mae

logger = logging.getLogger(__name__)

SAMPLERS = ("gp", "tpe")
RESULTS_NAME = "selection_trials.tsv"
BEST_NAME = "selection_best.json"


@dataclass(frozen=True)
class SearchSpace:
    """A discrete search space: `choices` maps a model option to its allowed values (at least
    two), `fixed` holds options with one value; `preset` is the base architecture."""

    model: str
    preset: str | None = None
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.choices:
            raise UsageError("the search space declares no option with two or more values")
        try:  # every name must be a model option; the base must exist
            model_config(self.model, self.preset, **self.fixed)
        except ValueError as err:
            raise UsageError(f"search space: {err}") from err


def load_search_space(path: str | Path) -> SearchSpace:
    """Return the SearchSpace of a TOML file:

    model = "cnn"            # yae | cnn | fcnn
    preset = "cnn_cpu"       # optional base architecture
    [space]                  # option = [values]; one value = fixed
    c1 = [7, 9, 11]
    f1 = [16, 32]
    act = ["sigmoid", "softmax"]
    """
    path = Path(path)
    if not path.is_file():
        raise NoInputError(f"search-space file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"cannot parse search space {path}: {err}") from err
    space = data.get("space", {})
    choices, fixed = {}, {}
    for name, values in space.items():
        values = values if isinstance(values, list) else [values]
        values = [tuple(v) if isinstance(v, list) else v for v in values]
        if len(values) == 1:
            fixed[name] = values[0]
        else:
            choices[name] = tuple(values)
    if "model" not in data:
        raise UsageError(f"search space {path} needs a top-level model = 'yae'|'cnn'|'fcnn'")
    return SearchSpace(data["model"], data.get("preset"), choices, fixed)


def open_storage(spec: str | None) -> Any:
    """Return an Optuna storage for `spec`: None -> in memory; 'dialect://...' -> RDB (e.g.
    sqlite:///study.db, postgresql://...); anything else -> a journal file path (safe for
    processes on a shared file system). Unreachable storage -> UsageError."""
    if spec is None:
        return None
    if "://" in spec:
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # Heartbeats mark trials of killed workers (e.g. preempted SLURM jobs) as failed.
                return optuna.storages.RDBStorage(spec, heartbeat_interval=60, grace_period=180)
        except Exception as err:  # sqlalchemy raises many kinds; all mean "cannot use it"
            raise UsageError(
                f"cannot open the Optuna storage {spec!r}: {type(err).__name__}: {err}; check the "
                "URL, the server and credentials, or use a journal file path"
            ) from err
    path = Path(spec)
    if not path.parent.is_dir():
        raise UsageError(f"journal storage folder {path.parent} does not exist; create it first")
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as err:
        raise UsageError(f"cannot open the journal storage {path}: {err}") from err


def make_sampler(kind: str, seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    """Return the GP sampler (expected improvement; first `n_startup` trials random) or TPE."""
    if kind not in SAMPLERS:
        raise UsageError(f"unknown sampler {kind!r}; choose from {SAMPLERS}")
    if kind == "gp":
        try:
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)
        except (ImportError, AttributeError) as err:  # GPSampler needs torch + scipy
            logger.warning("GPSampler unavailable (%s); falling back to TPE", err)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)


def kfold_indices(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return k (train, validation) index pairs: a seeded shuffle, then fold j takes every
    k-th spectrum starting at j (round-robin / Venetian blinds)."""
    if not 2 <= k <= n:
        raise UsageError(f"k-fold needs 2 <= k <= n spectra, got k={k}, n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = [perm[j::k] for j in range(k)]
    return [
        (np.sort(np.concatenate(folds[:j] + folds[j + 1 :])), np.sort(folds[j])) for j in range(k)
    ]


def cross_validate(
    config: Any,
    cfg: TrainConfig,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    k: int,
    epochs: int,
    seed: int,
) -> list[float]:
    """Return the max-normalised total MAE of each of the k folds."""
    x, clean, y = data
    maes = []
    for j, (tr, va) in enumerate(kfold_indices(len(x), k, seed)):
        tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
        model = fit_fixed(config, cfg, x[tr_t], clean[tr_t], y[tr_t], epochs, seed=seed + j)
        pred, _ = predict(model, x[va_t], 1)
        maes.append(total_mae(y[va_t].numpy(), pred))
    return maes


def _suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Return the model options proposed by `trial` (numeric choices index-encoded)."""
    params = {}
    for name, values in space.choices.items():
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            ordered = sorted(values)
            params[name] = ordered[trial.suggest_int(f"{name}_index", 0, len(ordered) - 1)]
        else:
            labels = [json.dumps(v) for v in values]
            params[name] = values[labels.index(trial.suggest_categorical(name, labels))]
    return params


def run_selection(
    out_dir: str | Path,
    space: SearchSpace,
    cfg: TrainConfig,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    n_trials: int,
    k: int = 5,
    epochs: int = 100,
    storage: str | None = None,
    study_name: str = "gabaapp-selection",
    sampler: str = "gp",
    seed: int = 0,
    cv_seed: int = 0,
    n_startup: int | None = None,
) -> optuna.Study:
    """Run `n_trials` more trials of the study (created or joined) and write the results table
    (selection_trials.tsv) and the best configuration (selection_best.json) to `out_dir`.

    `seed` seeds the sampler (give each worker its own); `cv_seed` the folds and the weight
    initialisation (keep it equal across workers so their scores are comparable).
    Identical configurations are evaluated once: a repeat returns the stored value. A
    configuration that cannot be built (e.g. convolutions shrink the input to nothing) is
    recorded as a failed trial with the reason.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_startup = n_startup if n_startup is not None else max(5, len(space.choices))
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage),
        sampler=make_sampler(sampler, seed, n_startup),
        direction="minimize",
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, space)
        options = {**space.fixed, **params}
        trial.set_user_attr("options", json.dumps(options))
        for old in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if old.user_attrs.get("options") == trial.user_attrs["options"]:
                trial.set_user_attr("repeat_of", old.number)
                return float(old.value)
        try:
            config = model_config(space.model, space.preset, **options)
        except ValueError as err:
            trial.set_user_attr("invalid", str(err))
            raise optuna.TrialPruned(str(err)) from err
        maes = cross_validate(config, cfg, data, k, epochs, cv_seed)
        trial.set_user_attr("fold_mae", maes)
        trial.set_user_attr("config", json.dumps(config_to_dict(config)))
        return float(np.mean(maes))

    study.optimize(objective, n_trials=n_trials, gc_after_trial=True)
    write_results(study, space, out_dir)
    return study


def write_results(study: optuna.Study, space: SearchSpace, out_dir: Path) -> None:
    """Write selection_trials.tsv (one line per trial, best first) and selection_best.json."""
    names = list(space.choices)
    trials = sorted(
        study.trials, key=lambda t: (t.value is None, t.value if t.value is not None else math.inf)
    )
    with (out_dir / RESULTS_NAME).open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["trial", "state", "cv_mae", "fold_mae_sd", *names, "note"])
        for t in trials:
            options = json.loads(t.user_attrs.get("options", "{}"))
            folds = t.user_attrs.get("fold_mae", [])
            note = t.user_attrs.get("invalid", "")
            if "repeat_of" in t.user_attrs:
                note = f"repeat of trial {t.user_attrs['repeat_of']}"
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    "n/a" if t.value is None else f"{t.value:.6g}",
                    f"{np.std(folds):.3g}" if folds else "n/a",
                    *[_cell(options.get(n)) for n in names],
                    note,
                ]
            )
    complete = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and "config" in t.user_attrs
    ]
    if complete:
        best = complete[0]
        summary = {
            "study": study.study_name,
            "model": space.model,
            "base_preset": space.preset,
            "cv_mae": best.value,
            "fold_mae": best.user_attrs.get("fold_mae"),
            "trial": best.number,
            "n_trials_complete": len(complete),
            "options": json.loads(best.user_attrs["options"]),
            "architecture": json.loads(best.user_attrs["config"]),
        }
        (out_dir / BEST_NAME).write_text(json.dumps(summary, indent=2) + "\n")


def _cell(value: Any) -> str:
    """Return a TSV cell: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def preset_names(model: str) -> list[str]:
    """Return the presets of `model` (for help texts)."""
    return [p for p, (m, _) in PRESETS.items() if m == model]
