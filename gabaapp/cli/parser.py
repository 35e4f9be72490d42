"""argparse parsers: the BIDS-App form `gabaapp bids_dir output_dir {participant,group}` and the
`gabaapp train ...` / `gabaapp simulate ...` subcommands (dispatched before the BIDS-App form so
they never break its three positional arguments)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gabaapp.__about__ import __version__
from gabaapp.config import PARTICIPANT_MODELS
from gabaapp.errors import UsageError

ANALYSIS_LEVELS = ("participant", "group")
SUBCOMMANDS = ("train", "simulate")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError (exit 64, BEP027) instead of exiting with 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):  # sub-parsers raise UsageError too
        kwargs.setdefault("parser_class", _Parser)
        return super().add_subparsers(**kwargs)

    def error(self, message: str):  # argparse API
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _label(value: str) -> str:
    """Strip a leading 'sub-' / 'ses-' so users may pass either form."""
    for prefix in ("sub-", "ses-"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def build_bids_app_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp bids_dir output_dir analysis_level [options]`."""
    p = _Parser(
        prog="gabaapp",
        description=(
            "Quantify GABA, Glu, Gln, NAA and Cr in MEGA-PRESS MRS data of a BIDS dataset with "
            "deep-learning models trained on simulated spectra. Other commands: "
            "'gabaapp train ...', 'gabaapp simulate ...'."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset (never written to)")
    p.add_argument("output_dir", type=Path, help="where derivatives are written")
    p.add_argument("analysis_level", help="'participant' (per scan) or 'group' (summary)")
    p.add_argument("--version", action="version", version=f"gabaapp {__version__}")

    sel = p.add_argument_group("selecting data")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        type=_label,
        metavar="LABEL",
        help="participants to process (with or without 'sub-')",
    )
    sel.add_argument(
        "--session-label",
        "--session_label",
        dest="session_label",
        nargs="+",
        type=_label,
        metavar="LABEL",
        help="sessions to process (with or without 'ses-')",
    )
    sel.add_argument(
        "--bids-filter-file",
        "--bids_filter_file",
        dest="bids_filter_file",
        type=Path,
        metavar="FILE",
        help='PyBIDS filters as JSON, e.g. {"svs": {"acquisition": "megapress68"}}',
    )
    sel.add_argument(
        "--bids-database-dir",
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
        dest="work_dir",
        type=Path,
        metavar="DIR",
        help="nipype working directory (reruns resume from it); default OUTPUT_DIR/../work",
    )
    run.add_argument(
        "--nprocs",
        "--n-cpus",
        dest="nprocs",
        type=int,
        default=1,
        help="processes for nipype's MultiProc plugin",
    )
    run.add_argument(
        "--use-plugin",
        dest="use_plugin",
        type=Path,
        metavar="FILE",
        help="nipype plugin settings file (YAML/JSON with 'plugin' and 'plugin_args')",
    )
    run.add_argument("--plugin", help="nipype plugin name, e.g. MultiProc, SLURM, SGE, PBS")
    run.add_argument(
        "--plugin-args",
        dest="plugin_args",
        metavar="JSON",
        help='nipype plugin arguments as JSON, e.g. \'{"sbatch_args": "-p short"}\'',
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
        "--config-file",
        dest="config_file",
        type=Path,
        metavar="FILE",
        help="TOML file with preprocessing/quantification options",
    )
    run.add_argument(
        "--reports-only",
        dest="reports_only",
        action="store_true",
        help="only (re)write reports from existing derivatives",
    )
    run.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    return p
