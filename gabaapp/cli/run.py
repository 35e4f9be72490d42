"""Entry point: `main(argv) -> int` (callable in-process) and the console script wrapper."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gabaapp.cli.parser import ANALYSIS_LEVELS, SUBCOMMANDS, build_bids_app_parser
from gabaapp.errors import GabaappError, UnknownAnalysisLevelError

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


def _is_subcommand(argv: Sequence[str]) -> bool:
    """A first word 'train'/'simulate' is a subcommand unless it is a BIDS dataset path used in
    the three-positional form (`gabaapp train out participant`)."""
    if not argv or argv[0] not in SUBCOMMANDS:
        return False
    looks_like_bids_app = len(argv) >= 3 and argv[2] in ANALYSIS_LEVELS and Path(argv[0]).is_dir()
    return not looks_like_bids_app


def _run_bids_app(argv: Sequence[str]) -> int:
    args = build_bids_app_parser().parse_args(list(argv))
    configure_logging(args.verbose)
    if args.analysis_level not in ANALYSIS_LEVELS:
        raise UnknownAnalysisLevelError(
            f"unknown analysis level {args.analysis_level!r}; use 'participant' or 'group'"
        )
    from gabaapp.cli.bids_app import run_bids_app

    return run_bids_app(args)


def _run_subcommand(argv: Sequence[str]) -> int:
    if argv[0] == "train":
        from gabaapp.cli.train import main as sub_main
    else:
        from gabaapp.cli.simulate import main as sub_main
    return sub_main(list(argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run gabaapp with `argv` (default sys.argv[1:]); return the exit code (BEP027).

    User-caused problems end in one stderr line and their exit code; unexpected ones in one
    line too (the traceback only with -vv).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run_subcommand(argv) if _is_subcommand(argv) else _run_bids_app(argv)
    except GabaappError as err:
        print(f"gabaapp: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gabaapp: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # last resort: never a traceback for the user
        log.debug("unexpected error", exc_info=True)
        print(
            f"gabaapp: unexpected error: {type(err).__name__}: {err} (rerun with -vv for details)",
            file=sys.stderr,
        )
        return 1


def console_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
