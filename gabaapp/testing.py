"""Minimal MEGA-PRESS NIfTI-MRS fixtures and tiny BIDS datasets for tests and the demo.

Physically sensible, deliberately simple (the full simulator lives in `gabaapp.simulate`):
Lorentzian lines at NAA 2.01, Cr 3.03, Cho 3.20, Cr-CH2 3.92 ppm in both edit conditions, a
GABA-like triplet at 3.01 ppm (J = 7.3 Hz) that appears only in edit-ON (as the edited GABA C4
signal of MEGA-PRESS does, Mescher et al., NMR Biomed 11:266, 1998), a small residual water line,
per-coil complex sensitivities, per-transient frequency drift and phase, and complex Gaussian noise.
Sidecars are modelled on the Big GABA BIDS sidecars (Mikkelsen et al., NeuroImage 159:32, 2017).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME, WATER_PPM
from gabaapp.io.nifti_mrs import save_nifti_mrs
from gabaapp.spectra import Acquisition, FIDs

# (ppm, relative amplitude, linewidth Hz): lines present in edit-OFF and edit-ON.
_COMMON_LINES = ((2.01, 1.0, 5.0), (3.03, 0.8, 5.0), (3.20, 0.6, 5.0), (3.92, 0.6, 6.0))
# GABA-like edited triplet (ppm, amplitude, J Hz): only in edit-ON.
_EDITED_TRIPLET = (3.01, 0.15, 7.3)
_WATER = (WATER_PPM, 0.3, 8.0)

DEFAULT_ACQUISITION = Acquisition(f0_mhz=123.2, dwell_s=1.0 / 2000, n_points=2048, te_s=0.068)


def _lines_fid(
    acq: Acquisition, lines: Sequence[tuple[float, float, float]], shift_hz: np.ndarray
) -> np.ndarray:
    """Return the sum of Lorentzian lines as FIDs, shape shift_hz.shape + (n_points,)."""
    t = acq.time_axis()
    out = np.zeros(shift_hz.shape + (acq.n_points,), dtype=np.complex128)
    for ppm, amp, lw_hz in lines:
        f_hz = (ppm - acq.centre_ppm) * acq.f0_mhz + shift_hz[..., None]
        out += amp * np.exp(2j * np.pi * f_hz * t - np.pi * lw_hz * t)
    return out


def make_mega_fids(
    rng: np.random.Generator,
    *,
    n_coils: int = 4,
    n_transients: int = 8,
    acquisition: Acquisition = DEFAULT_ACQUISITION,
    noise_sd: float = 0.02,
    drift_hz: float = 1.0,
    gaba_amplitude: float = _EDITED_TRIPLET[1],
    dtype: type = np.complex64,
) -> FIDs:
    """Return edited FIDs with dims (DIM_COIL, DIM_DYN, DIM_EDIT, time); edit 0 = OFF, 1 = ON.

    `n_transients` counts transients per edit condition. Each transient has a frequency
    offset ~ N(0, drift_hz) and a random phase; each coil a random complex sensitivity.
    """
    shape = (n_coils, n_transients, 2)
    shift = rng.normal(0.0, drift_hz, size=(1, n_transients, 1)) * np.ones(shape)
    fid = _lines_fid(acquisition, (*_COMMON_LINES, _WATER), shift)
    ppm, _, j_hz = _EDITED_TRIPLET
    triplet = [(ppm, gaba_amplitude * w, 6.0) for w in (0.25, 0.5, 0.25)]
    triplet = [
        (p + k * j_hz / acquisition.f0_mhz, a, lw)
        for k, (p, a, lw) in zip((-1, 0, 1), triplet, strict=True)
    ]
    fid[:, :, 1] += _lines_fid(acquisition, triplet, shift[:, :, 1])
    coil = rng.normal(size=(n_coils, 1, 1)) + 1j * rng.normal(size=(n_coils, 1, 1))
    phase = np.exp(1j * rng.uniform(-0.2, 0.2, size=(1, n_transients, 1)))
    fid = fid * (coil * phase)[..., None]
    noise = rng.normal(scale=noise_sd, size=fid.shape + (2,))
    fid = fid + noise[..., 0] + 1j * noise[..., 1]
    return FIDs(
        data=fid.astype(dtype),
        dims=(DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME),
        acquisition=acquisition,
        meta={"edit_condition": ("OFF", "ON")},
    )


def make_water_fids(
    rng: np.random.Generator,
    *,
    n_coils: int = 4,
    n_transients: int = 2,
    acquisition: Acquisition = DEFAULT_ACQUISITION,
    noise_sd: float = 0.02,
) -> FIDs:
    """Return an unsuppressed water reference, dims (DIM_COIL, DIM_DYN, time)."""
    shape = (n_coils, n_transients)
    fid = _lines_fid(acquisition, [(WATER_PPM, 50.0, 6.0), (2.01, 0.05, 5.0)], np.zeros(shape))
    coil = rng.normal(size=(n_coils, 1)) + 1j * rng.normal(size=(n_coils, 1))
    noise = rng.normal(scale=noise_sd, size=fid.shape + (2,))
    fid = fid * coil[..., None] + noise[..., 0] + 1j * noise[..., 1]
    return FIDs(fid.astype(np.complex64), (DIM_COIL, DIM_DYN, DIM_TIME), acquisition)


def write_mega_nifti_mrs(
    path: str | Path,
    fids: FIDs,
    *,
    edit_condition: Sequence[str] = ("ON", "OFF"),
    dims_order: Sequence[str] | None = None,
    interleaved: bool = False,
    header_extra: dict | None = None,
) -> Path:
    """Write edited `fids` (edit 0 = OFF, 1 = ON) as a NIfTI-MRS file the way a converter would.

    `edit_condition` is the file order of DIM_EDIT (spec2nii: ["ON","OFF"]; UIH ["OFF","ON"]).
    `dims_order` permutes the non-time dims (e.g. DIM_EDIT first = dim 5). `interleaved`
    writes Philips-style data instead: no DIM_EDIT, DIM_DYN alternating edit_condition[0],
    edit_condition[1], ... and a top-level EditCondition key saying so.
    """
    order = [("OFF", "ON").index(str(c).upper()) for c in edit_condition]
    data = np.take(fids.data, order, axis=fids.axis(DIM_EDIT))
    dims = list(fids.dims)
    extra = {
        "EditPulse": {
            "ON": {"PulseOffset": 1.9, "PulseDuration": 0.015},
            "OFF": {"PulseOffset": 7.46, "PulseDuration": 0.015},
        },
        "EchoTime": fids.acquisition.te_s,
        "Manufacturer": "gabaapp.testing (synthetic)",
        **(header_extra or {}),
    }
    if interleaved:
        e, d = dims.index(DIM_EDIT), dims.index(DIM_DYN)
        data = np.moveaxis(data, e, d + 1 if e > d else d)  # edit right after dyn
        dims.remove(DIM_EDIT)
        d = dims.index(DIM_DYN)
        data = data.reshape(data.shape[:d] + (-1,) + data.shape[d + 2 :])
        extra["EditCondition"] = list(edit_condition)
        out = FIDs(data, tuple(dims), fids.acquisition)
        return save_nifti_mrs(path, out, header_extra=extra)
    out = FIDs(data, tuple(dims), fids.acquisition)
    if dims_order is not None:
        perm = [dims.index(t) for t in dims_order] + [len(dims) - 1]
        out = FIDs(np.transpose(data, perm), (*dims_order, DIM_TIME), fids.acquisition)
    return save_nifti_mrs(path, out, header_extra=extra, edit_condition=list(edit_condition))


def mega_sidecar(
    acquisition: Acquisition, n_transients: int, edit_condition: Sequence[str]
) -> dict:
    """Return a BIDS sidecar for a MEGA-PRESS svs file, modelled on the Big GABA sidecars."""
    return {
        "Manufacturer": "gabaapp.testing (synthetic)",
        "PulseSequenceType": "MEGA-PRESS",
        "ScanningSequence": "SVS",
        "ResonantNucleus": ["1H"],
        "SpectrometerFrequency": [acquisition.f0_mhz],
        "SpectralWidth": 1.0 / acquisition.dwell_s,
        "EchoTime": acquisition.te_s,
        "NumberOfSpectralPoints": acquisition.n_points,
        "NumberOfTransients": n_transients,
        "RepetitionTime": 2,
        "EditTarget": "GABA",
        "EditPulse": {
            "ON": {"FrequencyOffset": 1.9, "PulseDuration": 15},
            "OFF": {"FrequencyOffset": 7.46, "PulseDuration": 15},
        },
        "EditCondition": list(edit_condition),
        "WaterSuppression": True,
    }


def write_bids_dataset(
    root: str | Path,
    rng: np.random.Generator,
    *,
    subjects: Sequence[str] = ("01", "02"),
    sessions: Sequence[str] | None = None,
    acq: str = "megapress",
    edit_condition: Sequence[str] = ("ON", "OFF"),
    n_coils: int = 4,
    n_transients: int = 8,
    acquisition: Acquisition = DEFAULT_ACQUISITION,
    water: bool = True,
    reference_uri: bool = False,
) -> Path:
    """Write a tiny synthetic MEGA-PRESS BIDS dataset under `root`; return `root`.

    Per subject (and session): mrs/sub-<l>[_ses-<l>]_acq-<acq>_svs.nii.gz with a sidecar and,
    with `water`, the matching _mrsref (named from the svs sidecar's ReferenceSignal BIDS URI
    when `reference_uri`). `n_transients` counts transients per edit condition.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "gabaapp synthetic MEGA-PRESS",
                "BIDSVersion": "1.10.0",
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "gabaapp.testing"}],
            },
            indent=2,
        )
    )
    (root / "participants.tsv").write_text(
        "participant_id\n" + "".join(f"sub-{s}\n" for s in subjects)
    )
    for sub in subjects:
        for ses in sessions or [None]:
            folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "mrs"
            stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_acq-{acq}"
            fids = make_mega_fids(
                rng, n_coils=n_coils, n_transients=n_transients, acquisition=acquisition
            )
            write_mega_nifti_mrs(folder / f"{stem}_svs.nii.gz", fids, edit_condition=edit_condition)
            sidecar = mega_sidecar(acquisition, 2 * n_transients, edit_condition)
            if water:
                ref = folder / f"{stem}_mrsref.nii.gz"
                save_nifti_mrs(
                    ref,
                    make_water_fids(rng, n_coils=n_coils, acquisition=acquisition),
                    header_extra={"EchoTime": acquisition.te_s, "WaterSuppressed": False},
                )
                ref_side = {k: sidecar[k] for k in ("ResonantNucleus", "SpectrometerFrequency")}
                (folder / f"{stem}_mrsref.json").write_text(json.dumps(ref_side, indent=2))
                if reference_uri:
                    sidecar["ReferenceSignal"] = f"bids::{ref.relative_to(root).as_posix()}"
            (folder / f"{stem}_svs.json").write_text(json.dumps(sidecar, indent=2))
    return root
