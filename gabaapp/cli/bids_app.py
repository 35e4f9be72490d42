"""The BIDS-App levels: checks on the directories, then the participant or group level.

For now the participant level discovers and loads the MEGA-PRESS scans and writes what it found
(the nipype workflow replaces its core later); the group level summarises those files.
Nothing is ever written inside bids_dir (except under bids_dir/derivatives/ when asked).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gabaapp.__about__ import __version__
from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT
from gabaapp.errors import CannotCreateOutputError, GabaappError, NoInputError
from gabaapp.io.bids import Scan, check_bids_dir, check_filters, find_scans, read_filter_file
from gabaapp.io.derivatives import (
    derivative_path,
    write_dataset_description,
    write_json,
    write_tsv,
)
from gabaapp.io.nifti_mrs import load_nifti_mrs

log = logging.getLogger(__name__)

SUMMARY_DESC = "summary"
GROUP_INPUTS_TSV = "group_inputs.tsv"
TABLE_COLUMNS = {
    "participant_id": "BIDS subject label with the sub- prefix",
    "session_id": "BIDS session label with the ses- prefix (n/a without sessions)",
    "acq": "acq- entity of the metabolite file",
    "run": "run- entity of the metabolite file",
    "coils": "number of receive coil channels (DIM_COIL; 1 = already combined)",
    "transients": "number of transients, all edit conditions together (DIM_DYN x DIM_EDIT)",
    "edit_order": "edit conditions in file order (loaded as OFF, ON)",
    "f0_mhz": {"Description": "spectrometer frequency", "Units": "MHz"},
    "dwell_s": {"Description": "dwell time", "Units": "s"},
    "water_ref": "file name of the paired water reference (n/a: none)",
    "source": "metabolite file, relative to the BIDS dataset root",
}


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
    if args.analysis_level == "participant":
        return run_participant(args, bids_dir, out_dir, db_dir)
    return run_group(args, out_dir)


def _label(prefix: str, value: object) -> str | None:
    return None if value is None else f"{prefix}-{value}"


def summarise_scan(scan: Scan, bids_dir: Path) -> dict:
    """Load `scan` (edited data required) and its water reference; return the summary dict.

    Raises GabaappError subclasses for bad files (the caller reports and goes on).
    """
    fids = load_nifti_mrs(scan.path, sidecar=scan.sidecar, require_edit=True)
    water = None
    if scan.water_path is not None:
        water = load_nifti_mrs(scan.water_path)
    acq = fids.acquisition
    return {
        "participant_id": f"sub-{scan.subject}",
        "session_id": _label("ses", scan.session),
        "acq": scan.entities.get("acquisition"),
        "run": scan.entities.get("run"),
        "coils": fids.size(DIM_COIL),
        "transients": fids.size(DIM_DYN) * fids.size(DIM_EDIT),
        "edit_order": ",".join(fids.meta.get("edit_condition_in_file") or ()),
        "f0_mhz": acq.f0_mhz,
        "dwell_s": acq.dwell_s,
        "water_ref": scan.water_path.name if scan.water_path else None,
        "source": scan.path.relative_to(bids_dir).as_posix(),
        # extra detail for the JSON summary only
        "te_s": acq.te_s,
        "n_points": acq.n_points,
        "dims": list(fids.dims),
        "shape": list(fids.data.shape),
        "edit_layout": fids.meta.get("edit_layout"),
        "water_shape": list(water.data.shape) if water is not None else None,
        "entities": dict(scan.entities),
    }


def format_table(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """Return `rows` as a plain-text table with aligned columns (missing values as '-')."""
    cells = [[str(c) for c in columns]]
    for row in rows:
        cells.append(["-" if row.get(c) is None else str(row.get(c)) for c in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


_PRINTED = (
    "participant_id",
    "session_id",
    "acq",
    "run",
    "coils",
    "transients",
    "edit_order",
    "water_ref",
    "status",
)


def _filters(args: argparse.Namespace) -> dict:
    """Return the --bids-filter-file queries (parsed by the CLI parser when it did)."""
    if getattr(args, "bids_filters", None) is not None:
        return check_filters(args.bids_filters)
    return read_filter_file(getattr(args, "bids_filter_file", None))


def run_participant(
    args: argparse.Namespace, bids_dir: Path, out_dir: Path, db_dir: Path | None
) -> int:
    """Discover and load every selected scan; write dataset_description.json and one summary
    JSON per loaded scan. A failing file is reported on one stderr line; the others still run.
    Returns 0, or the exit code of the first failure."""
    scans = find_scans(
        bids_dir,
        participant_label=args.participant_label,
        session_label=args.session_label,
        bids_filters=_filters(args),
        database_dir=db_dir,
        validate=not args.skip_bids_validation,
    )
    rows, failures = [], []
    for scan in scans:
        try:
            row = summarise_scan(scan, bids_dir)
        except GabaappError as err:
            print(f"gabaapp: error: {' '.join(str(err).split())}", file=sys.stderr)
            failures.append(err)
            rows.append(
                {
                    "participant_id": f"sub-{scan.subject}",
                    "session_id": _label("ses", scan.session),
                    "acq": scan.entities.get("acquisition"),
                    "run": scan.entities.get("run"),
                    "status": "FAILED",
                    "failed": True,
                }
            )
            continue
        row["status"] = "ok"
        rows.append(row)
    loaded = [r for r in rows if not r.get("failed")]
    if loaded:  # nothing is written when every file failed
        write_dataset_description(
            out_dir,
            version=__version__,
            container=container_info(),
            source_datasets=[{"URL": bids_dir.as_uri()}],
        )
        for scan, row in zip(scans, rows, strict=True):
            if not row.get("failed"):
                path = derivative_path(
                    out_dir, scan.entities, desc=SUMMARY_DESC, suffix="svs", extension=".json"
                )
                write_json(path, {k: v for k, v in row.items() if k != "status"})
    print(f"gabaapp {__version__}: {len(scans)} MEGA-PRESS scan(s) in {bids_dir}")
    print(format_table(rows, _PRINTED))
    print(
        f"{len(loaded)} loaded, {len(failures)} failed; outputs in {out_dir}"
        if loaded
        else f"{len(failures)} failed; nothing written"
    )
    return failures[0].exit_code if failures else 0


def run_group(args: argparse.Namespace, out_dir: Path) -> int:
    """Summarise the participant-level outputs in out_dir/group_inputs.tsv (+ .json)."""
    if not (out_dir / "dataset_description.json").is_file():
        raise NoInputError(
            f"{out_dir} holds no gabaapp derivatives; run the participant level first"
        )
    import json

    rows = []
    for path in sorted(out_dir.glob(f"sub-*/**/*_desc-{SUMMARY_DESC}_svs.json")):
        summary = json.loads(path.read_text(encoding="utf-8"))
        label = summary.get("participant_id", "")[len("sub-") :]
        if args.participant_label and label not in args.participant_label:
            continue
        rows.append({k: summary.get(k) for k in TABLE_COLUMNS})
    if not rows:
        raise NoInputError(
            f"no participant summaries in {out_dir}; run the participant level first"
        )
    tsv, _ = write_tsv(out_dir / GROUP_INPUTS_TSV, rows, TABLE_COLUMNS)
    print(f"gabaapp {__version__}: group summary of {len(rows)} scan(s)")
    print(format_table(rows, [c for c in _PRINTED if c != "status"]))
    print(f"written {tsv}")
    return 0
