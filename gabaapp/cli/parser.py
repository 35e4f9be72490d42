"""argparse parsers: the BIDS-App form `gabaapp bids_dir output_dir {participant,group}` and the
`gabaapp train ...` / `gabaapp simulate ...` subcommands (dispatched before the BIDS-App form so
they never break its three positional arguments).

Option values are checked here, at parse time, so that a mistake on the command line ends in
one line and exit code 64 (BEP027) before any work starts. `parse_bids_app_args` adds the
derived values the levels need (`bids_filters`, `plugin_settings`, `run_config`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gabaapp.__about__ import __version__
from gabaapp.config import PARTICIPANT_MODELS, PRECISIONS, RunConfig
from gabaapp.errors import UnknownAnalysisLevelError, UsageError

ANALYSIS_LEVELS = ("participant", "group")
SUBCOMMANDS = ("train", "simulate")
# Queries a --bids-filter-file may hold: metabolite spectra and their water references.
BIDS_FILTER_EXAMPLE = '{"svs": {"acquisition": "megapress68"}}'
_BIDS_LABEL = re.compile(r"[0-9A-Za-z]+")


class ParserExit(Exception):
    """argparse finished on its own (--help, --version): `status` is the exit code."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' only for defaults worth reading (not None, False or 0)."""

    def _get_help_string(self, action):  # argparse API
        if action.default in (None, False, 0) or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError (exit 64, BEP027) instead of exiting with 2, and
    ParserExit instead of calling sys.exit, so `main(argv)` can run in-process."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):  # sub-parsers raise UsageError too
        kwargs.setdefault("parser_class", _Parser)
        return super().add_subparsers(**kwargs)

    def error(self, message: str):  # argparse API
        raise UsageError(f"{message}; see '{self.prog} --help'")

    def exit(self, status: int = 0, message: str | None = None):  # argparse API
        if message:
            sys.stderr.write(message)
        raise ParserExit(status)


# ---- value checks (argparse `type=` callables: ArgumentTypeError becomes a usage error) ----


def _bids_label(prefix: str):
    def label(value: str) -> str:
        stripped = value[len(prefix) :] if value.startswith(prefix) else value
        if not _BIDS_LABEL.fullmatch(stripped):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a BIDS label (letters and digits, optionally after {prefix!r})"
            )
        return stripped

    return label


_participant_label = _bids_label("sub-")
_session_label = _bids_label("ses-")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def _json_object(text: str, what: str) -> dict[str, Any]:
    """Return `text` parsed as a JSON object; ArgumentTypeError naming `what` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"{what} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"{what} must be a JSON object ({{...}}), got {type(value).__name__}"
        )
    return value


def load_bids_filters(path: Path) -> dict[str, dict[str, Any]]:
    """Return the PyBIDS filters of a --bids-filter-file: {query: {entity: value}}.

    Raises UsageError when the file is missing, is not JSON, or is not an object of objects.
    """
    try:
        return _read_bids_filters(str(path))
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"--bids-filter-file: {err}") from None


def _read_bids_filters(value: str) -> dict[str, dict[str, Any]]:
    path = _existing_file(value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise argparse.ArgumentTypeError(f"cannot read {value}: {err}") from None
    filters = _json_object(text, value)
    for query, entities in filters.items():
        if not isinstance(entities, dict):
            raise argparse.ArgumentTypeError(
                f"{value}: query {query!r} must map to an object of BIDS entities, "
                f"e.g. {BIDS_FILTER_EXAMPLE}"
            )
    return filters


def _bids_filter_file(value: str) -> Path:
    _read_bids_filters(value)  # the contents are checked here, loaded after parsing
    return Path(value)


def _plugin_args(value: str) -> dict[str, Any]:
    return _json_object(value, "the value")


def _plugin_name(value: str) -> str:
    # nipype looks plugins up as `<name>Plugin`; asking it here turns a typo into a usage
    # error instead of a failure after the workflow has been built.
    from nipype.pipeline import plugins

    if not hasattr(plugins, f"{value}Plugin"):
        known = sorted(
            n[: -len("Plugin")] for n in dir(plugins) if n.endswith("Plugin") and n[0].isupper()
        )
        raise argparse.ArgumentTypeError(f"unknown nipype plugin {value!r}; choose from {known}")
    return value


def _plugin_file(value: str) -> Path:
    path = _existing_file(value)
    settings = _read_plugin_file(path)
    if not isinstance(settings.get("plugin"), str):
        raise argparse.ArgumentTypeError(
            f"{value} must name the nipype plugin, e.g. 'plugin: MultiProc' with optional "
            "'plugin_args: {n_procs: 4}'"
        )
    if not isinstance(settings.get("plugin_args", {}), dict):
        raise argparse.ArgumentTypeError(f"{value}: 'plugin_args' must be a mapping")
    return path


def _read_plugin_file(path: Path) -> dict[str, Any]:
    """Return the mapping of a nipype plugin settings file (YAML, which includes JSON)."""
    import yaml  # only needed for --use-plugin

    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise argparse.ArgumentTypeError(f"cannot read {path} as YAML/JSON: {reason}") from None
    if not isinstance(settings, dict):
        raise argparse.ArgumentTypeError(f"{path} must hold a mapping with a 'plugin' key")
    return settings


def _config_file(value: str) -> Path:
    import tomllib

    path = _existing_file(value)
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise argparse.ArgumentTypeError(f"{value} is not valid TOML ({err})") from None
    return path


# ---- parsers ----


def build_bids_app_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp bids_dir output_dir analysis_level [options]`."""
    p = _Parser(
        prog="gabaapp",
        description=(
            "Quantify GABA, Glu, Gln, NAA and Cr in MEGA-PRESS MRS data of a BIDS dataset with "
            "deep-learning models trained on simulated spectra. Other commands: "
            "'gabaapp train ...' (train, select and validate models), "
            "'gabaapp simulate ...' (basis sets and synthetic datasets)."
        ),
        epilog=(
            "Exit codes (BIDS execution spec): 0 ok, 1 unspecified error, 16 BIDS validation "
            "failed, 17 unknown analysis level, 18 filters selected no files, 64 usage error, "
            "65 data error, 66 no input, 73 cannot create output, 74 cannot write output."
        ),
    )
    p.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset (never written to)")
    p.add_argument(
        "output_dir",
        type=Path,
        help="where derivatives are written (outside bids_dir, or under bids_dir/derivatives)",
    )
    p.add_argument(
        "analysis_level",
        metavar="{participant,group}",
        help="'participant' (each scan) or 'group' (summary of the participant outputs)",
    )
    p.add_argument("--version", action="version", version=f"gabaapp {__version__}")

    sel = p.add_argument_group("selecting data")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        type=_participant_label,
        metavar="LABEL",
        help="participants to process (with or without 'sub-'); default: all",
    )
    sel.add_argument(
        "--session-label",
        "--session_label",
        dest="session_label",
        nargs="+",
        type=_session_label,
        metavar="LABEL",
        help="sessions to process (with or without 'ses-'); default: all",
    )
    sel.add_argument(
        "--bids-filter-file",
        "--bids_filter_file",
        dest="bids_filter_file",
        type=_bids_filter_file,
        metavar="FILE",
        help=(
            "JSON file of PyBIDS filters per query ('svs' metabolite spectra, 'mrsref' water "
            f"references), e.g. {BIDS_FILTER_EXAMPLE}"
        ),
    )
    sel.add_argument(
        "--bids-database-dir",
        "--bids_database_dir",
        dest="bids_database_dir",
        type=Path,
        metavar="DIR",
        help="reuse or store the PyBIDS database here (speeds up large datasets)",
    )
    sel.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        dest="skip_bids_validation",
        action="store_true",
        help="do not validate the dataset layout with PyBIDS",
    )

    run = p.add_argument_group("execution")
    run.add_argument(
        "-w",
        "--work-dir",
        "--work_dir",
        dest="work_dir",
        type=Path,
        metavar="DIR",
        help="nipype working directory (reruns resume from it); default OUTPUT_DIR/../work",
    )
    run.add_argument(
        "--nprocs",
        "--n-cpus",
        "--n_cpus",
        dest="nprocs",
        type=_positive_int,
        default=1,
        help="processes for nipype's MultiProc plugin (1: run in this process)",
    )
    plugin = run.add_mutually_exclusive_group()
    plugin.add_argument(
        "--use-plugin",
        "--use_plugin",
        dest="use_plugin",
        type=_plugin_file,
        metavar="FILE",
        help="nipype plugin settings file (YAML or JSON with 'plugin' and 'plugin_args')",
    )
    plugin.add_argument(
        "--plugin",
        type=_plugin_name,
        help="nipype plugin name, e.g. MultiProc, SLURM, SGE, PBS (default: from --nprocs)",
    )
    run.add_argument(
        "--plugin-args",
        "--plugin_args",
        dest="plugin_args",
        type=_plugin_args,
        metavar="JSON",
        help='nipype plugin arguments as a JSON object, e.g. \'{"sbatch_args": "-p short"}\'',
    )
    run.add_argument(
        "--model",
        dest="models",
        nargs="+",
        default=["yae"],
        choices=PARTICIPANT_MODELS,
        help="quantifier(s) to run side by side",
    )
    run.add_argument("--device", default="cpu", help="torch device for the models: cpu or cuda[:N]")
    run.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="network arithmetic: bfloat16 autocast is 2-3x faster on CPUs with AVX-512-BF16 "
        "or AMX and on GPUs, with outputs within ~1e-3 of float32 (default: float32)",
    )
    run.add_argument(
        "--config-file",
        "--config_file",
        dest="config_file",
        type=_config_file,
        metavar="FILE",
        help="TOML file with preprocessing/quantification options",
    )
    run.add_argument(
        "--reports-only",
        "--reports_only",
        dest="reports_only",
        action="store_true",
        help="only (re)write reports from existing derivatives",
    )
    run.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    return p


def plugin_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Return nipype's `{"plugin": name, "plugin_args": {...}}` for parsed `args`.

    --use-plugin wins; else --plugin (default MultiProc with --nprocs > 1, Linear otherwise)
    with --plugin-args; MultiProc gets `n_procs` from --nprocs unless the arguments set it.
    """
    if args.use_plugin is not None:
        settings = _read_plugin_file(args.use_plugin)
        name, plugin_args = settings["plugin"], dict(settings.get("plugin_args") or {})
    else:
        name = args.plugin or ("MultiProc" if args.nprocs > 1 else "Linear")
        plugin_args = dict(args.plugin_args or {})
    if name == "MultiProc":
        plugin_args.setdefault("n_procs", args.nprocs)
    return {"plugin": name, "plugin_args": plugin_args}


def parse_bids_app_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the BIDS-App form and add the derived values the levels use.

    Returns the namespace with `bids_filters` (dict, {} without a filter file),
    `plugin_settings` (see `plugin_settings`) and `run_config` (gabaapp.config.RunConfig).
    Raises UsageError (64) for command-line mistakes and UnknownAnalysisLevelError (17).
    """
    args = build_bids_app_parser().parse_args(list(argv))
    if args.analysis_level not in ANALYSIS_LEVELS:
        raise UnknownAnalysisLevelError(
            f"unknown analysis level {args.analysis_level!r}; use 'participant' or 'group'"
        )
    if args.plugin_args is not None and args.use_plugin is not None:
        raise UsageError(
            "--plugin-args goes with --plugin; put plugin_args in the --use-plugin file"
        )
    args.bids_filters = (
        {} if args.bids_filter_file is None else load_bids_filters(args.bids_filter_file)
    )
    args.plugin_settings = plugin_settings(args)
    args.run_config = RunConfig(
        models=tuple(args.models),
        device=args.device,
        nprocs=args.nprocs,
        precision=args.precision,
    )
    return args
