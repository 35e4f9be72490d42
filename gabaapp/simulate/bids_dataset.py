"""Synthetic raw MEGA-PRESS BIDS datasets: multi-coil, multi-transient NIfTI-MRS with water
references and the imperfections of real scans (ground truth known).

Per participant, one "voxel" edit-OFF/ON signal comes from SpectrumGenerator.synthesise
(metabolites from the basis with Voigt lines, macromolecules incl. the co-edited 3.0 ppm MM,
smooth baseline, residual water); then every transient gets what a scanner adds over a scan:
  * frequency drift (linear over the scan plus a random walk; Harris et al., MRM 72:941, 2014),
  * zero-order phase jitter per transient,
  * a few motion-corrupted transients (signal loss, phase and frequency jumps),
  * eddy currents: a decaying time-domain phase, the same in the water reference (Klose,
    MRM 14:26, 1990, so water-reference ECC can remove it),
  * complex coil sensitivities and coil noise with mild correlation between coils,
  * white complex Gaussian noise scaled so the averaged, coil-combined edit-OFF reaches a target
    NAA SNR.
Layout and sidecars follow the Big GABA BIDS example (bids-examples/mrs_biggaba): entity
acq-megapress68, suffixes svs/mrsref, EditPulse, EditCondition ["ON", "OFF"].
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gabaapp.__about__ import __version__
from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME, METABOLITES, NAA_PPM
from gabaapp.errors import CannotCreateOutputError, UsageError
from gabaapp.io.derivatives import write_json, write_tsv
from gabaapp.io.nifti_mrs import save_nifti_mrs
from gabaapp.preproc.qc import peak_height
from gabaapp.simulate.generator import SpectrumGenerator
from gabaapp.simulate.samplers import sample_invivo
from gabaapp.spectra import Acquisition, Basis, FIDs

logger = logging.getLogger(__name__)

CENTRE_PPM = 4.68  # transmitter on water (Big GABA sidecars: ChemicalShiftOffset 4.68)
EDIT_CONDITION = ("ON", "OFF")  # order of the DIM_EDIT entries, as spec2nii writes MEGA data
TE_S = 0.068
TR_S = 2.0
# Phantom series modelled on Jenkins et al., arXiv:1909.02163 (mM): fixed background, GABA steps.
PHANTOM_BACKGROUND_MM = {"Cr": 8.0, "Gln": 3.0, "Glu": 12.0, "NAA": 15.0}
PHANTOM_GABA_MM = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0)
INVIVO_NAA_MM = 15.0  # sample_invivo's NAA in [0.5, 1) x this = 7.5-15 mM (Govindaraju 2000)


@dataclass(frozen=True)
class ScanSettings:
    """Ranges (low, high) of the per-scan imperfections (see the module docstring)."""

    snr: tuple[float, float] = (100.0, 300.0)  # NAA SNR of the averaged, combined edit-OFF
    lorentz_hz: tuple[float, float] = (2.5, 5.0)
    gauss_hz: tuple[float, float] = (3.0, 6.0)
    drift_hz: tuple[float, float] = (-5.0, 5.0)  # linear drift over the whole scan
    drift_walk_hz: float = 0.1  # random-walk step SD per transient
    phase_jitter_deg: float = 5.0  # SD per transient
    motion_fraction: float = 0.01  # fraction of transients corrupted by motion
    eddy_rad: tuple[float, float] = (0.3, 1.5)  # initial eddy-current phase
    eddy_tau_s: tuple[float, float] = (0.01, 0.05)
    water_ref_ratio: tuple[float, float] = (1000.0, 2000.0)  # water/NAA peak height in mrsref
    n_water_transients: int = 8


PHANTOM_SCAN = ScanSettings(
    snr=(150.0, 400.0), lorentz_hz=(1.0, 3.0), gauss_hz=(1.5, 4.0), drift_hz=(-2.0, 2.0)
)


def _u(rng: np.random.Generator, lo_hi: tuple[float, float], size=None):
    return rng.uniform(lo_hi[0], lo_hi[1], size=size)


def _recentre(fid: np.ndarray, acq: Acquisition, n_points: int) -> tuple[np.ndarray, Acquisition]:
    """Return FIDs moved to a transmitter at CENTRE_PPM and cut to n_points, with the sampling."""
    t = acq.time_axis()
    shift = np.exp(2j * np.pi * (acq.centre_ppm - CENTRE_PPM) * acq.f0_mhz * t)
    n = min(n_points, acq.n_points)
    out = replace(acq, n_points=n, centre_ppm=CENTRE_PPM, te_s=TE_S)
    return (fid * shift)[..., :n], out


def voxel_signal(
    basis: Basis,
    conc_mm: np.ndarray,
    *,
    phantom: bool,
    scan: ScanSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return the noise-free edit-OFF and edit-ON voxel FIDs [T] (basis sampling) and params.

    In vivo: macromolecules with co-edited MM (GABA+), baseline and residual water; phantom:
    residual water only. Line shapes are Voigt with widths drawn from `scan`.
    """
    base = AugmentationConfig.none()
    aug = replace(
        base,
        enabled=True,
        lorentz_hz=scan.lorentz_hz,
        gauss_hz=scan.gauss_hz,
        linewidth_mode="metabolite" if not phantom else "spectrum",
        metabolite_lorentz_hz=(0.0, 1.0) if not phantom else (0.0, 0.0),
        # in vivo MM around MM_INVIVO_AMPLITUDE (0.25): the co-edited MM, which scales with it,
        # is then 31-58 % of GABA+ (5-95 %; benchmarks/bench_simulate_mm_share.py)
        mm_amplitude=(0.0, 0.0) if phantom else (0.15, 0.35),
        mm_state="gaba" if phantom else "gaba+",
        mm_coedited_fraction=(0.0, 0.0) if phantom else (0.35, 0.55),
        baseline_amplitude=(0.0, 0.0) if phantom else (0.0, 0.15),
        water_amplitude=(0.5, 10.0),
    )
    gen = SpectrumGenerator(basis, SynthesisConfig(sampler="uniform", augmentation=aug))
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    params = gen.sample_parameters(1, g)
    conc = torch.as_tensor(conc_mm[None], dtype=torch.float32)
    fids = gen.synthesise(conc, params, g)
    info = {k: float(v.reshape(-1)[0]) for k, v in params.items() if v.ndim == 1}
    off = fids["off"][0].numpy().astype(np.complex128)
    on = fids["on"][0].numpy().astype(np.complex128)
    return off, on, info


def transients(
    off: np.ndarray,
    on: np.ndarray,
    acq: Acquisition,
    *,
    n_coils: int,
    n_transients: int,
    scan: ScanSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return raw metabolite data [coil, dyn, edit, T] (edit order EDIT_CONDITION), the matching
    water reference [coil, dyn, T] and the drawn imperfections.

    Transient k is edit EDIT_CONDITION[k % 2] of pair k // 2 (interleaved as scanners acquire).
    """
    t = acq.time_axis()
    n_pairs = n_transients // 2
    k = np.arange(n_transients)
    drift = _u(rng, scan.drift_hz) * k / max(n_transients - 1, 1)
    drift += np.cumsum(rng.normal(0.0, scan.drift_walk_hz, n_transients))
    phase = np.deg2rad(rng.normal(0.0, scan.phase_jitter_deg, n_transients))
    amp = np.ones(n_transients)
    n_motion = int(round(scan.motion_fraction * n_transients))
    motion = rng.choice(n_transients, size=n_motion, replace=False) if n_motion else []
    amp[motion] = rng.uniform(0.3, 0.8, n_motion)
    phase[motion] += np.deg2rad(rng.uniform(-90.0, 90.0, n_motion))
    drift[motion] += rng.uniform(-10.0, 10.0, n_motion)
    eddy = _u(rng, scan.eddy_rad) * np.exp(-t / _u(rng, scan.eddy_tau_s))
    per_transient = amp[:, None] * np.exp(1j * (phase[:, None] + 2 * np.pi * drift[:, None] * t))
    by_label = {"ON": on, "OFF": off}
    signal = np.where(
        (k % 2 == 0)[:, None], by_label[EDIT_CONDITION[0]], by_label[EDIT_CONDITION[1]]
    )
    voxel = (signal * per_transient * np.exp(1j * eddy)).astype(np.complex64)  # [n_transients, T]
    sens = rng.uniform(0.2, 1.0, n_coils) * np.exp(1j * rng.uniform(-np.pi, np.pi, n_coils))
    sens = sens.astype(np.complex64)
    # Noise level: the SNR-optimally combined average of the OFF transients reaches the target.
    height = peak_height(off, acq, (NAA_PPM - 0.1, NAA_PPM + 0.1))
    target_snr = _u(rng, scan.snr)
    n_avg = n_pairs
    sigma = (
        height * np.sqrt(n_avg * np.sum(np.abs(sens) ** 2)) / (target_snr * np.sqrt(acq.n_points))
    )
    # Mildly correlated coil noise with coil-dependent levels (mixing of white noise).
    mixing = np.eye(n_coils) + 0.1 * rng.standard_normal((n_coils, n_coils))
    mixing = (sigma * mixing * rng.uniform(0.8, 1.2, n_coils)[:, None]).astype(np.float32)

    def noise(shape_tail: tuple[int, ...]) -> np.ndarray:
        shape = (n_coils, *shape_tail)
        white = rng.standard_normal(shape, dtype=np.float32) * 1j
        white += rng.standard_normal(shape, dtype=np.float32)
        return np.tensordot(mixing, white, axes=1)

    data = sens[:, None, None] * voxel[None] + noise((n_transients, acq.n_points))
    data = data.reshape(n_coils, n_pairs, 2, acq.n_points)
    # Water reference: unsuppressed water at the transmitter, same coils and eddy currents.
    water_h = _u(rng, scan.water_ref_ratio) * height
    lw = _u(rng, scan.lorentz_hz) + 1.0
    w = np.exp(-np.pi * lw * t - (np.pi * _u(rng, scan.gauss_hz) * t) ** 2 / (4 * np.log(2)))
    w = water_h * w / w.sum()
    n_ref = scan.n_water_transients
    ref_phase = np.deg2rad(rng.normal(0.0, scan.phase_jitter_deg, n_ref))
    ref = w * np.exp(1j * (ref_phase[:, None] + eddy))
    water = sens[:, None, None] * ref[None] + noise((n_ref, acq.n_points))
    info = {
        "target_snr": float(target_snr),
        "drift_range_hz": float(np.ptp(drift)),
        "motion_transients": [int(i) for i in sorted(motion)],
        "sigma": float(sigma),
    }
    return data, water.astype(np.complex64), info


def _sidecar(acq: Acquisition, n_transients: int, *, water_ref: bool, phantom: bool) -> dict:
    """Return the BIDS sidecar of one scan, modelled on the Big GABA example."""
    side = {
        "Manufacturer": "gabaapp synthetic",
        "ManufacturersModelName": f"gabaapp {__version__} simulate bids",
        "MagneticFieldStrength": round(acq.f0_mhz / 42.577, 2),
        "PulseSequenceType": "MEGA-PRESS",
        "ScanningSequence": "SVS",
        "ResonantNucleus": ["1H"],
        "SpectrometerFrequency": [round(acq.f0_mhz, 6)],
        "SpectralWidth": 1.0 / acq.dwell_s,
        "EchoTime": TE_S,
        "NumberOfSpectralPoints": acq.n_points,
        "NumberOfTransients": n_transients,
        "RepetitionTime": TR_S,
        "AcquisitionVoxelSize": [30, 30, 30],
        "BodyPart": "PHANTOM" if phantom else "BRAIN",
        "WaterSuppression": not water_ref,
        "ChemicalShiftOffset": CENTRE_PPM,
        "ChemicalShiftReference": CENTRE_PPM if water_ref else 3.0,
    }
    if not water_ref:
        side.update(
            {
                "EditTarget": "GABA",
                "EditPulse": {
                    "ON": {"FrequencyOffset": 1.9, "PulseDuration": 20},
                    "OFF": {"FrequencyOffset": 7.5, "PulseDuration": 20},
                },
                "EditCondition": list(EDIT_CONDITION),
            }
        )
    return side


def _header_extra(phantom: bool, water_ref: bool) -> dict:
    hdr = {
        "RepetitionTime": TR_S,
        "Manufacturer": "gabaapp synthetic",
        "WaterSuppressed": not water_ref,
        "ConversionMethod": f"gabaapp {__version__} simulate bids",
    }
    if not water_ref:
        hdr["EditPulse"] = {
            "ON": {"PulseOffset": 1.9, "PulseDuration": 0.02},
            "OFF": {"PulseOffset": 7.5, "PulseDuration": 0.02},
        }
    return hdr


def _concentrations(n: int, phantom: bool, rng: np.random.Generator) -> np.ndarray:
    """Return [n, 5] true concentrations (mM) in METABOLITES order."""
    if phantom:
        rows = []
        for i in range(n):
            c = dict(PHANTOM_BACKGROUND_MM, GABA=PHANTOM_GABA_MM[i % len(PHANTOM_GABA_MM)])
            rows.append([c[m] for m in METABOLITES])
        return np.array(rows)
    return sample_invivo(n, METABOLITES, rng) * INVIVO_NAA_MM


def write_synthetic_bids(
    out_dir: str | os.PathLike,
    n_participants: int,
    basis: Basis,
    *,
    phantom: bool = False,
    seed: int = 0,
    n_coils: int = 32,
    n_transients: int = 320,
    n_points: int = 2048,
    scan: ScanSettings | None = None,
    progress: bool = False,
) -> Path:
    """Write a raw BIDS dataset of synthetic MEGA-PRESS scans to `out_dir`; return its path.

    Per participant: sub-XX/mrs/sub-XX_acq-megapress68_svs.nii.gz (+ .json), dims
    [DIM_COIL, DIM_DYN, DIM_EDIT], and the water reference ..._mrsref.nii.gz [DIM_COIL,
    DIM_DYN]. With `phantom`, participants.tsv holds the true concentrations (cr gaba gln glu
    naa, mM) described in participants.json. The same seed gives the same dataset.
    `progress` shows a tqdm bar over participants (CLI use).
    """
    if n_participants < 1:
        raise UsageError(f"--n-participants must be >= 1, got {n_participants}")
    if n_coils < 1:
        raise UsageError(f"--n-coils must be >= 1, got {n_coils}")
    if n_transients < 2 or n_transients % 2:
        raise UsageError(f"--n-transients must be an even number >= 2, got {n_transients}")
    if n_points < 256:
        raise UsageError(f"--n-points must be >= 256, got {n_points}")
    scan = scan or (PHANTOM_SCAN if phantom else ScanSettings())
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise CannotCreateOutputError(f"{out} exists and is not empty; choose a new OUT_DIR")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CannotCreateOutputError(f"cannot create {out}: {err}") from err
    rng = np.random.default_rng(seed)
    basis = basis.subset(list(METABOLITES))
    conc = _concentrations(n_participants, phantom, rng)
    width = max(2, len(str(n_participants)))
    rows = []
    for i in tqdm(range(n_participants), desc="participants", disable=not progress):
        label = f"{i + 1:0{width}d}"
        off, on, voxel_info = voxel_signal(basis, conc[i], phantom=phantom, scan=scan, rng=rng)
        both, acq = _recentre(np.stack([off, on]), basis.acquisition, n_points)
        data, water, scan_info = transients(
            both[0], both[1], acq, n_coils=n_coils, n_transients=n_transients, scan=scan, rng=rng
        )
        mrs = out / f"sub-{label}" / "mrs"
        mrs.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{label}_acq-megapress68"
        dims = (DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME)
        save_nifti_mrs(
            mrs / f"{stem}_svs.nii.gz",
            FIDs(data, dims, acq),
            header_extra=_header_extra(phantom, water_ref=False),
            edit_condition=EDIT_CONDITION,
        )
        write_json(
            mrs / f"{stem}_svs.json", _sidecar(acq, n_transients, water_ref=False, phantom=phantom)
        )
        save_nifti_mrs(
            mrs / f"{stem}_mrsref.nii.gz",
            FIDs(water, (DIM_COIL, DIM_DYN, DIM_TIME), acq),
            header_extra=_header_extra(phantom, water_ref=True),
        )
        write_json(
            mrs / f"{stem}_mrsref.json",
            _sidecar(acq, scan.n_water_transients, water_ref=True, phantom=phantom),
        )
        row = {"participant_id": f"sub-{label}"}
        if phantom:
            row.update({m.lower(): float(c) for m, c in zip(METABOLITES, conc[i], strict=True)})
        rows.append(row)
        logger.info("sub-%s: %s %s", label, voxel_info, scan_info)
    columns: dict[str, object] = {"participant_id": "Participant label (synthetic)."}
    if phantom:
        for m in METABOLITES:
            columns[m.lower()] = {
                "Description": f"True {m} concentration of the synthetic phantom.",
                "Units": "mM",
            }
    write_tsv(out / "participants.tsv", rows, columns)
    write_json(out / "dataset_description.json", _description(phantom, seed))
    (out / "README").write_text(_readme(phantom, n_coils, n_transients, seed))
    return out


def _description(phantom: bool, seed: int) -> dict:
    kind = "phantom" if phantom else "in vivo-like"
    return {
        "Name": f"gabaapp synthetic MEGA-PRESS ({kind}, seed {seed})",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["gabaapp simulate bids"],
        "GeneratedBy": [
            {
                "Name": "gabaapp",
                "Version": __version__,
                "Description": "gabaapp simulate bids: synthetic raw MEGA-PRESS NIfTI-MRS",
            }
        ],
    }


def _readme(phantom: bool, n_coils: int, n_transients: int, seed: int) -> str:
    kind = "phantom" if phantom else "in vivo-like"
    truth = (
        "participants.tsv holds the true concentrations (mM).\n"
        if phantom
        else "No ground truth is stored (in vivo-like concentrations).\n"
    )
    return (
        f"# Synthetic MEGA-PRESS dataset ({kind})\n\n"
        "SIMULATED DATA, not measured on a scanner. Written by `gabaapp simulate bids` "
        f"(seed {seed}) with {n_coils} coils and {n_transients} transients per scan, water "
        "references, frequency drift, phase jitter, motion-corrupted transients, eddy currents, "
        "residual water, macromolecules (in vivo-like) and noise.\n\n" + truth
    )
