"""The BIDS-App levels: checks on the directories, then the participant or group level.

The participant level discovers the MEGA-PRESS scans with pybids and runs the nipype workflow of
`gabaapp.workflows.base` over them; the group level summarises their derivatives.
Nothing is ever written inside bids_dir (except under bids_dir/derivatives/ when asked).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gabaapp.__about__ import __version__
from gabaapp.config import read_run_option_tables
from gabaapp.errors import CannotCreateOutputError, NoInputError
from gabaapp.io.bids import check_bids_dir, check_filters, find_scans, read_filter_file

log = logging.getLogger(__name__)


def check_output_dir(
    bids_dir: Path, output_dir: str | os.PathLike, *, what: str = "output_dir"
) -> Path:
    """Return `output_dir` resolved; CannotCreateOutputError if it is bids_dir or inside it
    (bids_dir/derivatives/... is allowed) or exists as a file."""
    out = Path(output_dir).expanduser().resolve()
    derivatives = bids_dir / "derivatives"
    inside = out == bids_dir or bids_dir in out.parents
    if inside and not (out == derivatives or derivatives in out.parents):
        raise CannotCreateOutputError(
            f"{what} {out} is inside the input dataset {bids_dir}; BIDS inputs are never written "
            f"to: choose a directory outside it (or under {derivatives})"
        )
    if out.exists() and not out.is_dir():
        raise CannotCreateOutputError(f"{what} {out} exists and is not a directory")
    return out


def container_info() -> dict[str, str] | None:
    """Return {"Type", "Tag"} when running inside a container, else None.

    The images set GABAAPP_CONTAINER_TYPE ("docker"/"singularity") and GABAAPP_CONTAINER_TAG;
    Apptainer/Singularity's own environment variables are recognised too.
    """
    kind = os.environ.get("GABAAPP_CONTAINER_TYPE")
    if not kind and (
        os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    ):
        kind = "singularity"
    if not kind:
        return None
    return {"Type": kind, "Tag": os.environ.get("GABAAPP_CONTAINER_TAG", f"gabaapp:{__version__}")}


def run_bids_app(args: argparse.Namespace) -> int:
    """Run the participant or group level described by parsed `args`; return the exit code."""
    bids_dir = check_bids_dir(args.bids_dir)
    out_dir = check_output_dir(bids_dir, args.output_dir)
    db_dir = getattr(args, "bids_database_dir", None)
    if db_dir is not None:
        db_dir = check_output_dir(bids_dir, db_dir, what="--bids-database-dir")
    work_dir = getattr(args, "work_dir", None)
    if work_dir is not None:
        work_dir = check_output_dir(bids_dir, work_dir, what="--work-dir")
    if args.analysis_level == "participant":
        return run_participant(args, bids_dir, out_dir, db_dir, work_dir)
    return run_group(args, bids_dir, out_dir)


def run_participant(
    args: argparse.Namespace,
    bids_dir: Path,
    out_dir: Path,
    db_dir: Path | None,
    work_dir: Path | None,
) -> int:
    """Discover the selected scans, run the nipype participant workflow over them and print
    where the reports are. Returns 0, or the exit code of the first failed scan (the others
    still run; each failure is logged on one line and listed in the reports)."""
    from gabaapp.workflows.base import run_participant_level

    options = read_run_option_tables(args.config_file)
    scans = find_scans(
        bids_dir,
        participant_label=args.participant_label,
        session_label=args.session_label,
        bids_filters=_filters(args),
        database_dir=db_dir,
        validate=not args.skip_bids_validation,
    )
    code = run_participant_level(
        bids_dir,
        out_dir,
        work_dir=work_dir,
        scans=scans,
        models=tuple(args.models),
        device=args.device,
        precision=args.precision,
        nprocs=args.nprocs,
        # resolved once by the parser (the --use-plugin file is read there, not again)
        plugin=args.plugin_settings["plugin"],
        plugin_args=args.plugin_settings["plugin_args"],
        reports_only=args.reports_only,
        options=options,
    )
    from gabaapp.pipeline import read_failures, scan_key

    ours = {scan_key(s.entities) for s in scans}
    for failure in read_failures(out_dir):
        if failure["scan"] in ours:
            message = " ".join(str(failure["error"]).split())
            print(f"gabaapp: error: {failure['scan']}: {message}", file=sys.stderr)
    subjects = sorted({s.subject for s in scans})
    print(
        f"gabaapp {__version__}: {len(scans)} MEGA-PRESS scan(s) of {len(subjects)} participant(s)"
    )
    for subject in subjects:
        print(f"  report: {out_dir / f'sub-{subject}.html'}")
    print(
        "all scans finished" if code == 0 else "some scans FAILED: see the reports and logs/errors/"
    )
    return code


def run_group(args: argparse.Namespace, bids_dir: Path, out_dir: Path) -> int:
    """Write the group tables and report from the participant-level outputs in out_dir."""
    if not (out_dir / "dataset_description.json").is_file():
        raise NoInputError(
            f"{out_dir} holds no gabaapp derivatives; run the participant level first"
        )
    from gabaapp.workflows.base import run_group_level

    code = run_group_level(bids_dir, out_dir, args.participant_label)
    print(f"gabaapp {__version__}: group report: {out_dir / 'group.html'}")
    return code


def _filters(args: argparse.Namespace) -> dict:
    """Return the --bids-filter-file queries (parsed by the CLI parser when it did)."""
    if getattr(args, "bids_filters", None) is not None:
        return check_filters(args.bids_filters)
    return read_filter_file(getattr(args, "bids_filter_file", None))
