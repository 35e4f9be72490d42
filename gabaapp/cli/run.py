"""Entry point: `main(argv) -> int` (callable in-process) and the console script wrapper."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gabaapp.cli.parser import ANALYSIS_LEVELS, SUBCOMMANDS, ParserExit, parse_bids_app_args
from gabaapp.errors import GabaappError

log = logging.getLogger("gabaapp")


def configure_logging(verbosity: int) -> None:
    """Send gabaapp's log records to stderr: warnings by default, -v info, -vv debug."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s gabaapp %(levelname)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger("gabaapp")
    root.handlers[:] = [handler]
    root.setLevel(level)


def subcommand_of(argv: Sequence[str]) -> str | None:
    """Return 'train' or 'simulate' when `argv` asks for that subcommand, None for the BIDS-App
    form.

    A first word 'train'/'simulate' is the BIDS dataset path instead when three or more words
    are given and either the third is an analysis level (`gabaapp train out participant`) or
    a BIDS dataset of that name exists (so a mistyped level still ends with exit 17).
    """
    if not argv or argv[0] not in SUBCOMMANDS:
        return None
    names_a_dataset = len(argv) >= 3 and (
        argv[2] in ANALYSIS_LEVELS or (Path(argv[0]) / "dataset_description.json").is_file()
    )
    return None if names_a_dataset else argv[0]


def _run_bids_app(argv: Sequence[str]) -> int:
    args = parse_bids_app_args(argv)
    configure_logging(args.verbose)
    from gabaapp.cli.bids_app import run_bids_app

    return run_bids_app(args)


def _run_subcommand(name: str, argv: Sequence[str]) -> int:
    if name == "train":
        from gabaapp.cli.train import main as sub_main
    else:
        from gabaapp.cli.simulate import main as sub_main
    return sub_main(list(argv))


def _one_line(message: object) -> str:
    """Join a possibly multi-line message into one line for stderr."""
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run gabaapp with `argv` (default sys.argv[1:]); return the exit code (BEP027).

    User-caused problems end in one stderr line and their exit code; unexpected ones in one
    line too (the traceback only with -vv). --help and --version print and return 0.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        name = subcommand_of(argv)
        return _run_bids_app(argv) if name is None else _run_subcommand(name, argv[1:])
    except ParserExit as done:
        return done.status
    except GabaappError as err:
        print(f"gabaapp: error: {_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gabaapp: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # last resort: never a traceback for the user
        log.debug("unexpected error", exc_info=True)
        print(
            f"gabaapp: unexpected error: {type(err).__name__}: {_one_line(err)} "
            "(rerun with -vv for details)",
            file=sys.stderr,
        )
        return 1


def console_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
