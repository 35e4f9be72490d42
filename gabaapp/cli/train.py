"""`gabaapp train ...`: train a quantifier, run model selection, validate on phantoms.

    gabaapp train OUT_DIR --model yae|cnn|fcnn [--config train.toml] [--n-train N]
                  [--epochs E] [--device cpu|cuda] [--resume] [--seed S] ...
    gabaapp train select OUT_DIR --space space.toml [--storage URL|FILE] [--n-trials N] ...
    gabaapp train validate MODEL [MODEL...] PHANTOM_BIDS_DIR [...] [--out OUT]

The TOML config has sections [train] (TrainConfig fields), [model] (preset + architecture
options), [synthesis] (SynthesisConfig fields, `preset = "paper"` for the paper's generator,
[synthesis.augmentation] for AugmentationConfig fields) and [basis] (files, sequence_presets,
f0_mhz). Command-line options override the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import tomllib
from pathlib import Path
from typing import Any

from gabaapp.cli.parser import _Parser
from gabaapp.cli.run import configure_logging
from gabaapp.config import (
    PRECISIONS,
    TRAIN_MODELS,
    AugmentationConfig,
    SynthesisConfig,
    TrainConfig,
)
from gabaapp.errors import NoInputError, UsageError

log = logging.getLogger("gabaapp.cli.train")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path, help="output folder (model, checkpoint, tables)")
    p.add_argument("--model", choices=TRAIN_MODELS, help="model family (default yae)")
    p.add_argument("--preset", help="architecture preset, e.g. yae_paper, cnn_paper, cnn_cpu")
    p.add_argument("--config", type=Path, metavar="TOML", help="training configuration file")
    p.add_argument("--seed", type=int, help="seed of weights, batch order and drawn spectra")
    p.add_argument("--device", help="cpu or cuda[:N]")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float, help="Adam learning rate (paper 1e-4)")
    p.add_argument(
        "--basis",
        dest="basis_files",
        action="append",
        type=Path,
        metavar="NPZ",
        help="basis file (repeatable); default: the bundled basis",
    )
    p.add_argument(
        "--sequence-preset",
        dest="sequence_presets",
        action="append",
        metavar="NAME",
        help="simulate a basis for this sequence preset (repeatable: mixed per batch)",
    )
    p.add_argument(
        "--f0-mhz",
        dest="f0s_mhz",
        action="append",
        type=float,
        metavar="MHZ",
        help="spectrometer frequency of the simulated bases (repeatable, e.g. 123.2 127.7)",
    )
    p.add_argument(
        "--synthesis",
        choices=("default", "paper"),
        help="generator preset: 'paper' = noise + Lorentzian linewidth only",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("-v", "--verbose", action="count", default=0)


def build_train_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp train OUT_DIR ...`."""
    p = _Parser(
        prog="gabaapp train",
        description="Train a quantifier on spectra simulated on the fly "
        "(other actions: 'gabaapp train select ...').",
    )
    _add_common(p)
    p.add_argument("--n-train", dest="n_train", type=int, help="spectra drawn per epoch")
    p.add_argument("--n-val", dest="n_val", type=int, help="size of the fixed validation set")
    p.add_argument("--epochs", dest="max_epochs", type=int, help="maximum number of epochs")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.pt")
    p.add_argument(
        "--init-from",
        dest="init_from",
        metavar="MODEL",
        help="start from this model's weights (a folder with card.json or a bundled id such as "
        "yae-v4) to fine-tune it, e.g. for another sequence; its family and architecture are "
        "used ([model] may set only q_weight_start and q_weight_ramp_epochs)",
    )
    p.add_argument(
        "--time-limit",
        dest="time_limit_s",
        type=float,
        metavar="SECONDS",
        help="wall-clock budget: finish the epoch that reaches it, then write the best model",
    )
    p.add_argument(
        "--stop-after",
        dest="stop_after",
        type=int,
        metavar="EPOCHS",
        help="end this run after EPOCHS epochs as if interrupted (resume later with --resume)",
    )
    return p


def build_select_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp train select OUT_DIR ...`."""
    p = _Parser(
        prog="gabaapp train select",
        description="Bayesian model selection (Optuna GP/EI) with k-fold cross-validation on a "
        "fixed simulated set.",
    )
    _add_common(p)
    p.add_argument("--space", type=Path, required=True, metavar="TOML", help="search space")
    p.add_argument(
        "--storage",
        help="Optuna storage: RDB URL (sqlite:///study.db, postgresql://...) or a "
        "journal file path; shared by all workers of a study",
    )
    p.add_argument("--study-name", dest="study_name", default="gabaapp-selection")
    p.add_argument(
        "--n-trials", dest="n_trials", type=int, default=20, help="trials this worker runs"
    )
    p.add_argument("--folds", type=int, default=5, help="k of the k-fold cross-validation")
    p.add_argument("--n-spectra", dest="n_spectra", type=int, default=10_000, help="fixed set size")
    p.add_argument("--data-seed", dest="data_seed", type=int, default=20_260_226)
    p.add_argument("--epochs", dest="epochs", type=int, default=100, help="epochs per fold")
    p.add_argument("--sampler", choices=("gp", "tpe"), default="gp")
    return p


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise NoInputError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"cannot parse {path}: {err}") from err


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _fields(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"unknown option(s) {unknown} in [{where}]; known: {sorted(known)}")
    return values


def synthesis_from(section: dict[str, Any], preset: str | None) -> SynthesisConfig:
    """Return the SynthesisConfig of a [synthesis] table (and an optional preset override)."""
    section = dict(section)
    preset = preset or section.pop("preset", "default")
    section.pop("preset", None)
    aug_values = section.pop("augmentation", {})
    if preset not in ("default", "paper"):
        raise UsageError(f"[synthesis] preset {preset!r}; choose 'default' or 'paper'")
    base = SynthesisConfig.paper() if preset == "paper" else SynthesisConfig()
    aug = dataclasses.replace(
        base.augmentation,
        **_tuples(_fields(AugmentationConfig, dict(aug_values), "synthesis.augmentation")),
    )
    values = _tuples(_fields(SynthesisConfig, section, "synthesis"))
    return dataclasses.replace(base, augmentation=aug, **values)


def resolve_model_dir(name: str) -> Path:
    """Return the folder of a trained network named as `gabaapp train validate` names models
    (a folder with card.json, a bundled model's id or family); NoInputError when `name` names
    none, UsageError for 'lcm' (no weights)."""
    from gabaapp.training.validate import model_spec

    try:
        spec = model_spec(name)
    except UsageError as err:
        raise NoInputError(str(err)) from None
    if spec.model_dir is None:
        raise UsageError(f"{name!r} has no weights to start from; name a trained network")
    return spec.model_dir


def init_model_config(args: argparse.Namespace, file_cfg: dict[str, Any], init_dir: Path):
    """Return (model name, model config) of `--init-from`: the card's family and architecture,
    with only the loss-schedule fields of [model] applied; UsageError for anything else."""
    from gabaapp.models.card import read_card
    from gabaapp.models.registry import config_from_dict
    from gabaapp.training.loop import LOSS_SCHEDULE_FIELDS

    card = read_card(init_dir)  # DataError for a broken card
    file_model = file_cfg.get("train", {}).get("model")
    for given in (args.model, file_model):
        if given is not None and given != card["model"]:
            raise UsageError(f"--init-from {init_dir} is a {card['model']}, not a {given}")
    model_values = dict(file_cfg.get("model", {}))
    model_values.pop("preset", None)
    if args.preset or set(model_values) - set(LOSS_SCHEDULE_FIELDS):
        raise UsageError(
            f"--init-from takes the architecture from {init_dir}/card.json; drop --preset and "
            f"[model] options other than {list(LOSS_SCHEDULE_FIELDS)}"
        )
    values = {**card["architecture"], **model_values}
    return card["model"], config_from_dict(card["model"], values)


def configs_from(args: argparse.Namespace, file_cfg: dict[str, Any]):
    """Return (TrainConfig, model config, SynthesisConfig, basis options) from file + flags."""
    from gabaapp.models.registry import model_config

    init_dir = getattr(args, "init_dir", None)
    if init_dir is not None:
        args.model, init_config = init_model_config(args, file_cfg, init_dir)
        file_cfg = {**file_cfg, "train": {**file_cfg.get("train", {}), "model": args.model}}
    train_values = dict(file_cfg.get("train", {}))
    for name in (
        "model",
        "preset",
        "seed",
        "device",
        "batch_size",
        "lr",
        "n_train",
        "n_val",
        "max_epochs",
        "time_limit_s",
    ):
        value = getattr(args, name, None)
        if value is not None:
            train_values[name] = value
    cfg = TrainConfig(**_fields(TrainConfig, train_values, "train"))
    model_values = dict(file_cfg.get("model", {}))
    preset = cfg.preset or model_values.pop("preset", None)
    model_values.pop("preset", None)
    try:
        if init_dir is not None:
            mcfg = init_config
        else:
            mcfg = model_config(cfg.model, preset, **_tuples(model_values))
    except ValueError as err:
        raise UsageError(f"[model]: {err}") from err
    synthesis = synthesis_from(file_cfg.get("synthesis", {}), args.synthesis)
    basis = dict(file_cfg.get("basis", {}))
    basis_opts = {
        "basis_files": args.basis_files or basis.get("files"),
        "sequence_presets": args.sequence_presets or basis.get("sequence_presets"),
        "f0s_mhz": args.f0s_mhz or basis.get("f0_mhz"),
        "metabolites": synthesis.metabolites,
    }
    return cfg, mcfg, synthesis, basis_opts


def _prepare(args: argparse.Namespace):
    configure_logging(args.verbose)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg, mcfg, synthesis, basis_opts = configs_from(args, _read_toml(args.config))
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but no CUDA device is available; use cpu")
    from gabaapp.training.bases import make_source, resolve_bases

    bases = resolve_bases(**basis_opts)
    source, provenance = make_source(bases, synthesis, cfg.device)
    return cfg, mcfg, source, provenance


def run_train(args: argparse.Namespace) -> int:
    """`gabaapp train OUT_DIR ...`."""
    args.init_dir = resolve_model_dir(args.init_from) if args.init_from else None
    cfg, mcfg, source, provenance = _prepare(args)
    provenance["command"] = getattr(args, "command_line", None)
    from gabaapp.training.loop import train

    result = train(
        args.out_dir,
        source,
        mcfg,
        cfg,
        resume=args.resume,
        provenance=provenance,
        progress=args.progress,
        stop_after_epochs=args.stop_after,
        init_from=args.init_dir,
    )
    if result.card:
        val = result.card["metrics"]["validation"]
        log.warning(
            "trained %s: best epoch %d, validation MAE GABA %.4f (trivial %.4f), total %.4f -> %s",
            cfg.model,
            result.best_epoch,
            val["GABA"]["mae"],
            val["GABA"]["trivial_mae"],
            val["total"]["mae"],
            args.out_dir,
        )
    return 0


def run_select(args: argparse.Namespace) -> int:
    """`gabaapp train select OUT_DIR --space TOML ...`."""
    from gabaapp.training.select import load_search_space, open_storage, run_selection

    space = load_search_space(args.space)
    open_storage(args.storage)  # fail on an unreachable storage before drawing any spectra
    if args.model is None:
        args.model = space.model
    elif args.model != space.model:
        raise UsageError(
            f"--model {args.model} differs from model = {space.model!r} in {args.space}"
        )
    cfg, _, source, provenance = _prepare(args)
    from gabaapp.training.loop import draw_set

    needs_clean = space.model == "yae"
    data = draw_set(source, args.n_spectra, args.data_seed, cfg.draw_size, cfg.device, needs_clean)
    study = run_selection(
        args.out_dir,
        space,
        cfg,
        data,
        n_trials=args.n_trials,
        k=args.folds,
        epochs=args.epochs,
        storage=args.storage,
        study_name=args.study_name,
        sampler=args.sampler,
        seed=cfg.seed,
        cv_seed=args.data_seed,
    )
    log.warning(
        "study %s: %d trials, best CV MAE %s",
        study.study_name,
        len(study.trials),
        study.best_value if study.best_trials else "n/a",
    )
    return 0


def build_validate_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp train validate MODEL... BIDS_DIR...`."""
    p = _Parser(
        prog="gabaapp train validate",
        description="Validate quantifiers on phantom BIDS datasets whose participants.tsv holds "
        "the true concentrations (columns cr gaba gln glu naa, mM): participant-level "
        "pre-processing, prediction, and the paper's metrics per dataset and pooled.",
    )
    p.add_argument(
        "targets",
        nargs="+",
        metavar="MODEL_OR_BIDS_DIR",
        help="models (a folder with card.json, 'lcm', or a bundled model such as yae-v4) "
        "and phantom datasets (a folder with dataset_description.json), in any order",
    )
    p.add_argument("--out", type=Path, default=Path("validation"), help="output folder")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="network arithmetic (bfloat16: autocast, 2-3x faster where supported)",
    )
    p.add_argument(
        "--mc-samples",
        dest="mc_samples",
        type=int,
        help="Monte-Carlo dropout passes per scan (default: as the participant level)",
    )
    p.add_argument(
        "--skip-bids-validation", dest="validate_bids", action="store_false", default=True
    )
    p.add_argument("--no-plots", dest="plots", action="store_false", default=True)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def run_validate(args: argparse.Namespace) -> int:
    """`gabaapp train validate MODEL... BIDS_DIR... [--out OUT]`: print the metrics table."""
    configure_logging(args.verbose)
    if args.mc_samples is not None and args.mc_samples < 1:
        raise UsageError(f"--mc-samples must be >= 1, got {args.mc_samples}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from gabaapp.training.validate import format_table, split_targets, validate

    models, datasets = split_targets(args.targets)
    result = validate(
        models,
        datasets,
        args.out,
        device=args.device,
        precision=args.precision,
        mc_samples=args.mc_samples,
        validate_bids=args.validate_bids,
        plots=args.plots,
    )
    print(format_table(result.metrics))  # noqa: T201 - the command's output
    for f in result.failures:
        log.error("failed: %s/%s: %s", f["dataset"], f["scan"], f["error"])
    log.warning("validation tables and figures in %s", args.out)
    return 0


def main(argv: list[str]) -> int:
    """Run the train subcommand; return the exit code."""
    if argv and argv[0] == "validate":
        return run_validate(build_validate_parser().parse_args(argv[1:]))
    if argv and argv[0] == "select":
        return run_select(build_select_parser().parse_args(argv[1:]))
    args = build_train_parser().parse_args(argv)
    args.command_line = shlex.join(["gabaapp", "train", *argv])
    return run_train(args)
