"""NIfTI-MRS files <-> `gabaapp.spectra.FIDs`.

Format: NIfTI-2 image of shape (x, y, z, time, dim_5, dim_6, dim_7), complex, dwell time in
pixdim[4], a JSON header extension (code 44) with SpectrometerFrequency, ResonantNucleus and the
tags of dims 5-7 (DIM_COIL, DIM_DYN, DIM_EDIT, ...) (Clarke et al., "NIfTI-MRS: a standard
data format for magnetic resonance spectroscopy", MRM 88:2358, 2022, doi:10.1002/mrm.29418).

Conjugation convention. The standard stores FIDs in the right-handed (Levitt) reference frame:
a resonance at higher chemical shift than the transmitter evolves as exp(-i 2 pi f t) in the
stored data. gabaapp.spectra wants exp(+i 2 pi f t) at +f Hz = higher ppm, which is the
left-handed frame FSL-MRS was written in. The `nifti_mrs` package bridges exactly this gap:
`NIFTI_MRS.__getitem__` returns `image[...].conj()` ("swaps from the NIfTI-MRS ... right-handed
reference frame to a left-handed one"), and spec2nii conjugates vendor data (e.g. Philips SDAT)
into the right-handed frame before writing. So we conjugate once on load and once on save.
Proven on real spec2nii output (Siemens RDA/DICOM, Philips SDAT, Siemens 7T twix): after the
conjugation NAA sits at 2.01 ppm on `Acquisition.ppm_axis()` (tests/unit/test_io_real_data.py);
without it, it sits near 2.28 ppm or nowhere.

Speed. We read the pixel data with nibabel directly (one decompression into one buffer) and
conjugate in place; the array is exposed with its axes moved (a free view) so that time is
the last axis and still the contiguous one. Loading through `nifti_mrs.NIFTI_MRS` (fslpy Image) would add copies. The
`nifti_mrs` package still validates the header extension (`validator.validate_hdr_ext`).

Non-conforming headers: keys whose value is JSON null (e.g. "InversionTime": null written by old
converters) are dropped with a warning before validation, and an integer SpectrometerFrequency
(a valid JSON number) is read as float; any other violation is a DataError.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from nifti_mrs import validator as nmrs_validator
from nifti_mrs.definitions import nifti_mrs_version as _NMRS_VERSION

from gabaapp.atomic import atomic_path
from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME, WATER_PPM
from gabaapp.errors import DataError, NoInputError
from gabaapp.io.editing import edit_order, unwrap_value
from gabaapp.spectra import Acquisition, FIDs

log = logging.getLogger(__name__)

HEADER_EXTENSION_CODE = 44
_INTENT_RE = re.compile(r"^mrs_v(\d+)_(\d+)")
_DIM_KEY_RE = re.compile(r"^dim_[567](_info|_header)?$")
# Keys gabaapp sets itself when writing (taken from the FIDs, not from the source header).
_OWN_KEYS = {"SpectrometerFrequency", "ResonantNucleus", "EchoTime", "SpecFreqChemShift"}
# Sidecar and header frequency may differ by rounding (sidecars often hold 3 decimals, MHz).
F0_TOLERANCE_MHZ = 1e-3
INTERNAL_EDIT_CONDITION = ("OFF", "ON")


# ----------------------------------------------------------------------------------- reading
def _first(value: object) -> object:
    """Return the first element of a one-element list/tuple, or the value itself."""
    value = unwrap_value(value)
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _open_nifti(path: Path) -> nib.Nifti1Image:
    if not path.is_file():
        raise NoInputError(f"{path}: file not found")
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for corrupt files
        raise DataError(
            f"{path}: cannot read as NIfTI ({type(err).__name__}: {err}); the file is truncated "
            "or corrupt: convert it again with spec2nii"
        ) from None
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise DataError(f"{path}: not a NIfTI file; convert vendor data with spec2nii")
    return img


def _header_extension(img: nib.Nifti1Image, path: Path) -> dict:
    """Return the NIfTI-MRS JSON header extension with null-valued keys dropped."""
    intent_name = img.header.get_intent()[2]
    if not _INTENT_RE.match(intent_name or ""):
        raise DataError(
            f"{path}: not NIfTI-MRS (intent name {intent_name!r}, expected 'mrs_vMAJOR_MINOR'); "
            "convert it with spec2nii"
        )
    exts = [e for e in img.header.extensions if e.get_code() == HEADER_EXTENSION_CODE]
    if not exts:
        raise DataError(f"{path}: not NIfTI-MRS (no header extension with code 44)")
    try:
        hdr = json.loads(exts[0].get_content())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: NIfTI-MRS header extension is not valid JSON ({err})") from None
    if not isinstance(hdr, dict):
        raise DataError(f"{path}: NIfTI-MRS header extension is not a JSON object")
    nulls = [k for k, v in hdr.items() if v is None]
    if nulls:
        log.warning("%s: ignoring header extension keys with null values: %s", path, nulls)
        hdr = {k: v for k, v in hdr.items() if v is not None}
    # JSON has one number type; the nifti_mrs validator insists on Python floats. An integer
    # frequency (e.g. [297]) is a valid JSON number, so accept it as float.
    f0 = hdr.get("SpectrometerFrequency")
    if isinstance(f0, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in f0):
        hdr["SpectrometerFrequency"] = [float(v) for v in f0]
    return hdr


def read_header_extension(path: str | os.PathLike) -> dict:
    """Return the NIfTI-MRS header extension of `path` (null-valued keys dropped); cheap."""
    path = Path(path)
    return _header_extension(_open_nifti(path), path)


def _dwell_s(img: nib.Nifti1Image, path: Path) -> float:
    time_unit = img.header.get_xyzt_units()[1]
    dwell = float(img.header["pixdim"][4])
    dwell *= {"msec": 1e-3, "usec": 1e-6}.get(time_unit, 1.0)
    if not (0 < dwell < 1.0) or not math.isfinite(dwell):
        raise DataError(f"{path}: implausible dwell time pixdim[4] = {dwell} s")
    return dwell


def _check_sidecar(hdr: Mapping, sidecar: Mapping, path: Path) -> None:
    """Raise DataError when the BIDS sidecar and the NIfTI-MRS header disagree."""
    if "ResonantNucleus" in sidecar:
        side, head = _first(sidecar["ResonantNucleus"]), _first(hdr["ResonantNucleus"])
        if str(side).strip().upper() != str(head).strip().upper():
            raise DataError(
                f"{path}: sidecar ResonantNucleus {side!r} disagrees with the NIfTI-MRS header "
                f"{head!r}; fix the sidecar JSON"
            )
    if "SpectrometerFrequency" in sidecar:
        side = _first(sidecar["SpectrometerFrequency"])
        head = _first(hdr["SpectrometerFrequency"])
        try:
            agree = abs(float(side) - float(head)) <= F0_TOLERANCE_MHZ
        except (TypeError, ValueError):
            agree = False
        if not agree:
            raise DataError(
                f"{path}: sidecar SpectrometerFrequency {side} MHz disagrees with the NIfTI-MRS "
                f"header {head} MHz; fix the sidecar JSON or pair the right files"
            )


def _file_dims(hdr: Mapping, data_ndim: int, path: Path) -> list[str]:
    """Return the tags of dims 5.. of the file (including singletons implied by the header)."""
    n_dims = max(data_ndim, *(n for n in (5, 6, 7) if f"dim_{n}" in hdr), 4)
    tags = []
    for n in range(5, n_dims + 1):
        tag = hdr.get(f"dim_{n}")
        if tag is None:
            raise DataError(f"{path}: data have {n_dims} dimensions but no 'dim_{n}' tag")
        tags.append(str(tag))
    if len(set(tags)) != len(tags):
        raise DataError(f"{path}: repeated dimension tags {tags}; tags must be unique")
    return tags


def _edit_conditions(
    hdr: Mapping, sidecar: Mapping, tags: list[str], sizes: list[int]
) -> tuple[str, list[str] | None]:
    """Decide how edit conditions are stored. Return (layout, labels):

    ("dim", labels)         a DIM_EDIT dimension, labels in file order (None: unknown);
    ("dyn-labels", labels)  per-transient labels in the DIM_DYN header (len = n transients);
    ("interleaved", pair)   no DIM_EDIT, DIM_DYN alternates pair[0], pair[1], ... (Philips SDAT),
                            declared by a top-level EditCondition in the NIfTI-MRS header;
    ("none", None)          not an edited acquisition.
    """
    top = unwrap_value(hdr.get("EditCondition", sidecar.get("EditCondition")))
    top = list(top) if isinstance(top, list | tuple) else None
    if DIM_EDIT in tags:
        n = 5 + tags.index(DIM_EDIT)
        labels = unwrap_value((hdr.get(f"dim_{n}_header") or {}).get("EditCondition"))
        labels = list(labels) if isinstance(labels, list | tuple) else top
        return "dim", labels
    if DIM_DYN in tags:
        n = 5 + tags.index(DIM_DYN)
        n_dyn = sizes[tags.index(DIM_DYN)]
        labels = unwrap_value((hdr.get(f"dim_{n}_header") or {}).get("EditCondition"))
        if isinstance(labels, list) and len(labels) == n_dyn and len(set(labels)) > 1:
            return "dyn-labels", [str(x) for x in labels]
        # Only the file's own header may declare interleaving: a BIDS sidecar's EditCondition
        # describes the acquisition, not how a converter laid the transients out.
        own = unwrap_value(hdr.get("EditCondition"))
        if isinstance(own, list) and len(own) >= 2 and n_dyn % len(own) == 0 and n_dyn > 1:
            return "interleaved", [str(x) for x in own]
    return "none", None


def _validate_hdr(hdr: dict, shape: tuple[int, ...], path: Path) -> None:
    try:
        nmrs_validator.validate_hdr_ext(json.dumps(hdr), tuple(shape))
    except (nmrs_validator.headerExtensionError, TypeError, IndexError, KeyError) as err:
        # the validator itself trips (TypeError) on some malformed values
        raise DataError(f"{path}: invalid NIfTI-MRS header extension: {err}") from None


def load_nifti_mrs(
    path: str | os.PathLike,
    *,
    sidecar: Mapping | None = None,
    require_edit: bool = False,
) -> FIDs:
    """Load a single-voxel NIfTI-MRS file into FIDs in gabaapp's spectral convention.

    Returns FIDs whose dims always include DIM_COIL and DIM_DYN (size 1 when the data are
    already combined/averaged) and, for edited data, DIM_EDIT with index 0 = edit-OFF and
    1 = edit-ON whatever the file order; time is last. `meta` holds "source",
    "header_extension", "affine", "edit_condition" (internal labels) and
    "edit_condition_in_file". `sidecar` (the BIDS JSON) is cross-checked against the header.
    Raises NoInputError (missing file) or DataError (corrupt, not NIfTI-MRS, nucleus not 1H,
    NaN/Inf, HERMES/HERCULES, and with `require_edit` data that are not edited).
    """
    path = Path(path)
    sidecar = dict(sidecar or {})
    img = _open_nifti(path)
    hdr = _header_extension(img, path)
    _validate_hdr(hdr, img.shape, path)
    nucleus = str(_first(hdr["ResonantNucleus"]))
    if nucleus.upper() != "1H":
        raise DataError(f"{path}: nucleus {nucleus!r} is not supported; gabaapp needs 1H MRS")
    _check_sidecar(hdr, sidecar, path)
    if any(s != 1 for s in img.shape[:3]):
        raise DataError(f"{path}: spatial size {img.shape[:3]}; only single-voxel MRS is supported")
    if len(img.shape) < 4:
        raise DataError(f"{path}: NIfTI-MRS data need a spectral (4th) dimension")
    tags = _file_dims(hdr, len(img.shape), path)
    sizes = list(img.shape[4:]) + [1] * (len(tags) - len(img.shape[4:]))
    layout, labels = _edit_conditions(hdr, sidecar, tags, sizes)
    if layout == "none" and require_edit:
        raise DataError(
            f"{path}: not an edited (MEGA) acquisition: no DIM_EDIT dimension (dims {tags or 'none'})"
            "; gabaapp quantifies MEGA-PRESS edit-OFF/ON data (Philips SDAT with interleaved "
            "transients: convert with spec2nii --tags DIM_EDIT DIM_DYN, see docs/spec2nii.md)"
        )
    edit_pulse = unwrap_value(hdr.get("EditPulse", sidecar.get("EditPulse")))
    f0_mhz = float(_first(hdr["SpectrometerFrequency"]))
    if layout == "dim":
        n_edit = sizes[tags.index(DIM_EDIT)]
        if n_edit > 2:
            labels = labels or [f"#{i}" for i in range(n_edit)]  # edit_order refuses politely
        elif labels is None:
            raise DataError(
                f"{path}: DIM_EDIT has no EditCondition header; cannot tell edit-OFF from "
                'edit-ON. Add dim_N_header {"EditCondition": ["ON","OFF"]} (file order) to the '
                "file, or EditCondition to its BIDS sidecar"
            )
        elif len(labels) != n_edit:
            raise DataError(f"{path}: EditCondition {labels} does not match DIM_EDIT size {n_edit}")
    if layout != "none":
        off, on = edit_order(
            labels if layout != "dyn-labels" else sorted(set(labels), key=labels.index),
            edit_pulse if isinstance(edit_pulse, Mapping) else None,
            source=str(path),
            f0_mhz=f0_mhz,
        )
    dwell_s = _dwell_s(img, path)

    data = _read_data(img, path)  # (time, dim_5, dim_6, dim_7) view, conjugated
    data = data.reshape(data.shape + (1,) * (1 + len(tags) - data.ndim))
    # View (dim_5, dim_6, dim_7, time): file order, and time stays the contiguous axis.
    data = np.moveaxis(data, 0, -1)
    dims = [*tags, DIM_TIME]

    if layout == "dim":
        if off == 1:  # file stores ON first: a reversed view puts OFF at index 0
            data = np.flip(data, axis=dims.index(DIM_EDIT))
    elif layout == "interleaved":
        axis = dims.index(DIM_DYN)
        n_dyn = data.shape[axis]
        data = data.reshape(data.shape[:axis] + (n_dyn // 2, 2) + data.shape[axis + 1 :])
        dims.insert(axis + 1, DIM_EDIT)
        if off == 1:
            data = np.flip(data, axis=axis + 1)
        log.info("%s: DIM_DYN interleaves edit conditions %s; split into DIM_EDIT", path, labels)
    elif layout == "dyn-labels":
        axis = dims.index(DIM_DYN)
        uniq = sorted(set(labels), key=labels.index)
        idx = [[i for i, lab in enumerate(labels) if lab == uniq[k]] for k in (off, on)]
        if len(idx[0]) != len(idx[1]):
            raise DataError(f"{path}: unequal numbers of edit-OFF/ON transients in DIM_DYN")
        data = np.stack([np.take(data, ix, axis=axis) for ix in idx], axis=axis + 1)
        dims.insert(axis + 1, DIM_EDIT)

    for tag in (DIM_DYN, DIM_COIL):  # already combined/averaged data: size-1 axes
        if tag not in dims:
            data = data[np.newaxis]
            dims.insert(0, tag)

    te = hdr.get("EchoTime", sidecar.get("EchoTime"))
    acquisition = Acquisition(
        f0_mhz=f0_mhz,
        dwell_s=dwell_s,
        n_points=data.shape[-1],
        te_s=float(_first(te)) if te is not None else None,
        nucleus=nucleus,
        centre_ppm=float(hdr.get("SpecFreqChemShift", WATER_PPM)),
    )
    meta = {
        "source": str(path),
        "header_extension": hdr,
        "affine": img.affine,
        "edit_condition": INTERNAL_EDIT_CONDITION if DIM_EDIT in dims else None,
        "edit_condition_in_file": tuple(labels) if labels else None,
        "edit_layout": layout,
    }
    return FIDs(data=data, dims=tuple(dims), acquisition=acquisition, meta=meta)


def _read_data(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """Return the pixel data as (time, dim_5, ...), conjugated into gabaapp's convention."""
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # EOFError, zlib.error, OSError, ValueError for short files
        raise DataError(
            f"{path}: cannot read the data ({type(err).__name__}: {err}); the file is truncated "
            "or corrupt: copy or convert it again"
        ) from None
    if not np.iscomplexobj(data):
        raise DataError(f"{path}: data are {data.dtype}, NIfTI-MRS data must be complex")
    # One reduction pass finds NaN and Inf anywhere (both propagate through a sum).
    if not np.isfinite(data.sum()):
        raise DataError(f"{path}: data contain NaN or Inf values; re-export the file")
    data = data[0, 0, 0]
    if data.flags.writeable:
        np.conjugate(data, out=data)  # in place: no second buffer of the whole file
    else:
        data = data.conj()
    return data


# ----------------------------------------------------------------------------------- writing
def _json_safe(value: object) -> object:
    """Return `value` with numpy scalars/arrays turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_header_extension(
    fids: FIDs,
    *,
    processing_applied: Sequence[Mapping] | None = None,
    header_extra: Mapping | None = None,
    edit_condition: Sequence[str] | None = None,
) -> dict:
    """Return the NIfTI-MRS header extension describing `fids` (see save_nifti_mrs)."""
    acq = fids.acquisition
    source = dict(fids.meta.get("header_extension") or {})
    hdr = {
        k: v
        for k, v in source.items()
        if not _DIM_KEY_RE.match(k) and k not in _OWN_KEYS | {"SpectralWidth", "EditCondition"}
    }
    hdr["SpectrometerFrequency"] = [float(acq.f0_mhz)]
    hdr["ResonantNucleus"] = [acq.nucleus]
    hdr["SpectralWidth"] = float(1.0 / acq.dwell_s)
    hdr["SpecFreqChemShift"] = float(acq.centre_ppm)
    if acq.te_s is not None:
        hdr["EchoTime"] = float(acq.te_s)
    if processing_applied:
        hdr["ProcessingApplied"] = list(hdr.get("ProcessingApplied", [])) + [
            dict(p) for p in processing_applied
        ]
    hdr.update(header_extra or {})
    for n, tag in enumerate(fids.dims[:-1], start=5):
        hdr[f"dim_{n}"] = tag
        if tag == DIM_EDIT:
            labels = edit_condition or fids.meta.get("edit_condition") or INTERNAL_EDIT_CONDITION
            hdr[f"dim_{n}_header"] = {"EditCondition": list(labels)}
    return _json_safe(hdr)


def save_nifti_mrs(
    path: str | os.PathLike,
    fids: FIDs,
    *,
    processing_applied: Sequence[Mapping] | None = None,
    header_extra: Mapping | None = None,
    edit_condition: Sequence[str] | None = None,
) -> Path:
    """Write `fids` as NIfTI-MRS (.nii or .nii.gz) atomically; return the path written.

    dims 5.. are fids.dims (time excluded) in order; the data are conjugated back into the
    NIfTI-MRS frame. Standard keys of the source header (fids.meta["header_extension"]) are
    kept, dim keys rebuilt. `processing_applied` entries (dicts with Time, Program, Version,
    Method, Details, as the standard suggests) are appended to ProcessingApplied.
    `edit_condition` labels the DIM_EDIT entries in `fids` order (default fids.meta
    "edit_condition", else ("OFF", "ON")). `header_extra` keys override the rest; user-defined
    keys need {"Value", "Description"}. Raises ValueError for an invalid header, OutputWriteError
    when writing fails.
    """
    path = Path(path)
    if len(fids.dims) > 4:
        raise ValueError(f"NIfTI-MRS holds at most 3 dimensions besides time; got {fids.dims}")
    hdr = build_header_extension(
        fids,
        processing_applied=processing_applied,
        header_extra=header_extra,
        edit_condition=edit_condition,
    )
    dtype = np.complex128 if fids.data.dtype == np.complex128 else np.complex64
    # (…, time) -> (1, 1, 1, time, dim_5, dim_6, dim_7), back to the right-handed frame.
    data = np.conjugate(np.moveaxis(fids.data, -1, 0)).astype(dtype, copy=False)[None, None, None]
    try:
        nmrs_validator.validate_hdr_ext(json.dumps(hdr), data.shape)
    except (nmrs_validator.headerExtensionError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"invalid NIfTI-MRS header extension for {path}: {err}") from None
    affine = fids.meta.get("affine")
    affine = np.asarray(affine, dtype=float) if affine is not None else np.diag([10.0] * 3 + [1])
    img = nib.Nifti2Image(data, affine)
    header = img.header
    header.set_intent("none", (), name=f"mrs_v{_NMRS_VERSION[0]}_{_NMRS_VERSION[1]}")
    header.set_xyzt_units("mm", "sec")
    zooms = list(header.get_zooms())
    zooms[3] = fids.acquisition.dwell_s
    header.set_zooms(zooms)
    header.extensions.append(
        nib.nifti1.Nifti1Extension(HEADER_EXTENSION_CODE, json.dumps(hdr).encode())
    )
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
