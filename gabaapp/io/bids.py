"""Find MEGA-PRESS scans in a BIDS dataset with PyBIDS.

BIDS MRS (BIDS >= 1.8, "Magnetic Resonance Spectroscopy"): files live in `mrs/`; single-voxel
metabolite data have suffix `svs`, water references `mrsref` (or `unloc`). A metabolite
sidecar may name its reference in `ReferenceSignal` with a BIDS URI
("bids::sub-01/mrs/sub-01_acq-x_mrsref.nii.gz", relative to the dataset root); otherwise the
`mrsref` file with the same entities is its reference.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gabaapp.errors import (
    BIDSValidationError,
    NoFilesSelectedError,
    NoInputError,
    UsageError,
)

log = logging.getLogger(__name__)

NIFTI_EXTENSIONS = [".nii", ".nii.gz"]
FILTER_KEYS = ("svs", "mrsref")
# Entities that identify a metabolite scan and its same-entity water reference.
_PAIRING_IGNORED = {"suffix", "extension", "datatype"}


@dataclass(frozen=True)
class Scan:
    """One metabolite (svs) NIfTI-MRS file, its entities, its water reference and its sidecar."""

    path: Path
    entities: dict = field(hash=False)
    water_path: Path | None
    sidecar: dict = field(hash=False, compare=False)

    @property
    def subject(self) -> str:
        return str(self.entities["subject"])

    @property
    def session(self) -> str | None:
        value = self.entities.get("session")
        return None if value is None else str(value)


def check_bids_dir(bids_dir: str | os.PathLike) -> Path:
    """Return `bids_dir` resolved; NoInputError if missing, not a directory, or lacking
    dataset_description.json."""
    path = Path(bids_dir)
    if not path.exists():
        raise NoInputError(f"BIDS directory {path} does not exist")
    if not path.is_dir():
        raise NoInputError(f"BIDS directory {path} is not a directory")
    if not (path / "dataset_description.json").is_file():
        raise NoInputError(
            f"{path} has no dataset_description.json; point gabaapp at the root of a BIDS dataset"
        )
    return path.resolve()


def read_filter_file(path: str | os.PathLike | None) -> dict:
    """Return the `--bids-filter-file` JSON as {"svs": {...}, "mrsref": {...}}.

    Keys other than "svs"/"mrsref" are a UsageError; so are a missing file and bad JSON.
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        filters = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--bids-filter-file {path} not found") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"--bids-filter-file {path} is not readable JSON ({err})") from None
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise UsageError(
            f'--bids-filter-file {path} must hold {{"svs": {{entity: value}}, "mrsref": {{...}}}}'
        )
    return check_filters(filters)


def check_filters(filters: Mapping[str, Mapping] | None) -> dict:
    """Return `filters` as a dict; UsageError for queries other than "svs"/"mrsref"."""
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise UsageError(
            f"--bids-filter-file: unknown query {unknown}; gabaapp reads {list(FILTER_KEYS)}, "
            'e.g. {"svs": {"acquisition": "megapress68"}}'
        )
    return filters


def _pybids_filters(filters: Mapping[str, object]) -> dict:
    """Translate JSON filter values: null -> entity absent, "*" -> entity present."""
    from bids.layout import Query

    out = {}
    for key, value in filters.items():
        if value is None:
            value = Query.NONE
        elif value == "*":
            value = Query.REQUIRED
        out[key] = value
    return out


def _layout(bids_dir: Path, *, validate: bool, database_dir: Path | None):
    import bids
    from bids.exceptions import BIDSValidationError as PyBIDSValidationError

    kwargs = {"validate": validate}
    if database_dir is not None:
        kwargs["database_path"] = str(database_dir)
    try:
        return bids.BIDSLayout(str(bids_dir), **kwargs)
    except PyBIDSValidationError as err:
        raise BIDSValidationError(
            f"{bids_dir} is not a valid BIDS dataset: {err} (or rerun with --skip-bids-validation)"
        ) from None


def _reference_from_uri(uri: object, bids_dir: Path, source: Path) -> Path | None:
    """Return the file a `ReferenceSignal` BIDS URI names, or None with a warning."""
    if isinstance(uri, list):
        uri = uri[0] if uri else None
    if not isinstance(uri, str) or not uri:
        return None
    if uri.startswith("bids::"):
        target = bids_dir / uri[len("bids::") :]
    elif uri.startswith("bids:"):
        log.warning("%s: ReferenceSignal %s points to another dataset; ignored", source, uri)
        return None
    else:  # deprecated form: a path relative to the subject/dataset
        target = bids_dir / uri
    if not target.is_file():
        log.warning("%s: ReferenceSignal %s does not exist; ignored", source, uri)
        return None
    return target


def find_scans(
    bids_dir: str | os.PathLike,
    *,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    bids_filters: Mapping[str, Mapping] | None = None,
    database_dir: str | os.PathLike | None = None,
    validate: bool = True,
) -> list[Scan]:
    """Return the metabolite scans (suffix svs, datatype mrs) selected by labels and filters.

    Each Scan carries its entities, merged sidecar metadata (BIDS inheritance) and water
    reference (ReferenceSignal URI first, then the same-entity mrsref, else None).
    Raises NoInputError (no MRS data at all), NoFilesSelectedError (labels/filters select
    nothing) or BIDSValidationError.
    """
    root = check_bids_dir(bids_dir)
    filters = check_filters(bids_filters)
    layout = _layout(
        root, validate=validate, database_dir=Path(database_dir) if database_dir else None
    )
    base = {"datatype": "mrs", "extension": NIFTI_EXTENSIONS}
    all_svs = layout.get(suffix="svs", **base)
    if not all_svs:
        hint = (
            ""
            if not validate
            else " (files with invalid BIDS names are ignored unless --skip-bids-validation)"
        )
        raise NoInputError(f"{root} holds no MRS data (no mrs/*_svs.nii[.gz] files){hint}")

    query = dict(base, suffix="svs")
    if participant_label:
        missing = sorted(set(participant_label) - set(layout.get_subjects()))
        if missing:
            raise NoFilesSelectedError(
                f"--participant-label {missing} not found in {root}; subjects there: "
                f"{sorted(layout.get_subjects())}"
            )
        query["subject"] = list(participant_label)
    if session_label:
        query["session"] = list(session_label)
    query.update(_pybids_filters(filters.get("svs", {})))
    try:
        files = layout.get(**query)
    except (ValueError, KeyError) as err:  # pybids: unknown entity in a filter
        raise UsageError(f"invalid BIDS filter {filters.get('svs')}: {err}") from None
    if not files:
        raise NoFilesSelectedError(
            f"no MRS svs files match participant(s) {participant_label or 'any'}, session(s) "
            f"{session_label or 'any'} and filters {filters.get('svs', {})} in {root}"
        )

    scans = []
    for f in sorted(files, key=lambda f: f.path):
        entities = {k: v for k, v in f.get_entities().items() if k not in ("extension",)}
        sidecar = dict(layout.get_metadata(f.path))
        path = Path(f.path)
        water = _reference_from_uri(sidecar.get("ReferenceSignal"), root, path)
        if water is None:
            water = _same_entity_reference(layout, entities, filters.get("mrsref", {}), path)
        scans.append(Scan(path=path, entities=entities, water_path=water, sidecar=sidecar))
    log.info("found %d MRS scan(s) in %s", len(scans), root)
    return scans


def _same_entity_reference(layout, entities: Mapping, mrsref_filters: Mapping, source: Path):
    query = {k: v for k, v in entities.items() if k not in _PAIRING_IGNORED}
    # Entities the svs file lacks must be absent on the reference too.
    for name in ("session", "acquisition", "run", "reconstruction", "nucleus", "volume"):
        query.setdefault(name, None)
    query.update(mrsref_filters)
    try:
        refs = layout.get(
            suffix="mrsref",
            datatype="mrs",
            extension=NIFTI_EXTENSIONS,
            **_pybids_filters(query),
        )
    except (ValueError, KeyError) as err:
        raise UsageError(f"invalid mrsref BIDS filter {dict(mrsref_filters)}: {err}") from None
    if len(refs) > 1:
        log.warning("%s: %d candidate water references; using %s", source, len(refs), refs[0].path)
    return Path(sorted(r.path for r in refs)[0]) if refs else None
