"""BIDS derivatives: dataset_description.json, file names keeping the source entities, and
atomic TSV/JSON writers (BIDS 1.10, "Derivatives" and "Common principles: tabular files")."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gabaapp.atomic import write_text_atomic

# Entity order of BIDS file names (BIDS entity table), MRS-relevant ones included. Keys are
# the short name used in file names; pybids' long names map onto them.
ENTITY_ORDER: tuple[str, ...] = (
    "sub",
    "ses",
    "task",
    "acq",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "nuc",
    "voi",
    "seg",
    "res",
    "den",
    "label",
    "desc",
)
LONG_TO_SHORT = {
    "subject": "sub",
    "session": "ses",
    "acquisition": "acq",
    "reconstruction": "rec",
    "direction": "dir",
    "inversion": "inv",
    "nucleus": "nuc",
    "volume": "voi",
    "resolution": "res",
    "density": "den",
    "description": "desc",
    "ceagent": "ce",
    "tracer": "trc",
    "modality": "mod",
    "flip": "flip",
    "processing": "proc",
    "hemisphere": "hemi",
    "segmentation": "seg",
}
# Entities of the source name that do not go into derivative names (they are not entities).
_NOT_NAME_ENTITIES = {"suffix", "extension", "datatype", "desc"}


def _short_entities(entities: Mapping[str, object]) -> dict[str, str]:
    out = {}
    for key, value in entities.items():
        if value is None or key in _NOT_NAME_ENTITIES or key == "description":
            continue
        short = LONG_TO_SHORT.get(key, key)
        if short in ENTITY_ORDER:
            out[short] = str(value)
    return out


def derivative_name(
    entities: Mapping[str, object], *, desc: str | None, suffix: str, extension: str
) -> str:
    """Return a BIDS file name with the source `entities` (pybids long or short keys) in
    BIDS order, then `desc`, `suffix` and `extension` (".tsv", ".nii.gz", ...)."""
    ent = _short_entities(entities)
    if desc:
        ent["desc"] = desc
    if "sub" not in ent:
        raise ValueError(f"entities {dict(entities)} lack a subject")
    parts = [f"{k}-{ent[k]}" for k in ENTITY_ORDER if k in ent]
    ext = extension if extension.startswith(".") or not extension else f".{extension}"
    return "_".join([*parts, suffix]) + ext


def derivative_path(
    out_dir: str | os.PathLike,
    entities: Mapping[str, object],
    *,
    desc: str | None,
    suffix: str,
    extension: str,
    datatype: str = "mrs",
) -> Path:
    """Return out_dir/sub-<l>[/ses-<l>]/<datatype>/<derivative_name(...)>."""
    ent = _short_entities(entities)
    folder = Path(out_dir) / f"sub-{ent['sub']}" if "sub" in ent else Path(out_dir)
    if "ses" in ent:
        folder = folder / f"ses-{ent['ses']}"
    name = derivative_name(entities, desc=desc, suffix=suffix, extension=extension)
    return folder / datatype / name


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write `obj` as indented JSON to `path` atomically; return the path."""
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def write_dataset_description(
    out_dir: str | os.PathLike,
    *,
    version: str,
    name: str = "gabaapp",
    container: Mapping[str, str] | None = None,
    source_datasets: Sequence[Mapping[str, str]] | None = None,
    bids_version: str = "1.10.0",
) -> Path:
    """Write out_dir/dataset_description.json of a derivative dataset; return its path.

    GeneratedBy holds name, version and, inside a container, {"Type", "Tag"}.
    """
    generated_by = {
        "Name": name,
        "Version": version,
        "Description": "MEGA-PRESS GABA/Glx quantification with deep learning",
    }
    if container:
        generated_by["Container"] = dict(container)
    desc = {
        "Name": f"{name} derivatives",
        "BIDSVersion": bids_version,
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
    }
    if source_datasets:
        desc["SourceDatasets"] = [dict(s) for s in source_datasets]
    return write_json(Path(out_dir) / "dataset_description.json", desc)


def _tsv_cell(value: object) -> str:
    """Return the TSV text of one value: 'n/a' for missing, no tabs or newlines."""
    if value is None:
        return "n/a"
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(value) else repr(float(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value).replace("\t", " ").replace("\n", " ")


def write_tsv(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, object]],
    columns_description: Mapping[str, str | Mapping[str, object]],
) -> tuple[Path, Path]:
    """Write `rows` as a BIDS TSV with a JSON sidecar describing the columns; return both paths.

    Columns are the keys of `columns_description`, in order (a row's other keys are an error:
    every column must be described). A description is a string or a BIDS column object
    ({"Description", "Units", "Levels", ...}). Missing values are written as n/a.
    """
    path = Path(path)
    if path.suffix != ".tsv":
        raise ValueError(f"{path} must end in .tsv")
    columns = list(columns_description)
    for row in rows:
        extra = set(row) - set(columns)
        if extra:
            raise ValueError(f"row has undescribed columns {sorted(extra)}")
    lines = ["\t".join(columns)]
    lines += ["\t".join(_tsv_cell(row.get(c)) for c in columns) for row in rows]
    sidecar = {
        c: ({"Description": d} if isinstance(d, str) else dict(d))
        for c, d in columns_description.items()
    }
    json_path = write_json(path.with_suffix(".json"), sidecar)
    tsv_path = write_text_atomic(path, "\n".join(lines) + "\n")
    return tsv_path, json_path
