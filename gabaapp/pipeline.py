"""Step functions for one MEGA-PRESS scan: load -> preprocess -> network grid -> quantify with
each selected model -> write derivatives -> report data; and the notebook API `quantify`.

The nipype interfaces (gabaapp.interfaces) call exactly these functions, so the BIDS-App, the
notebook API and tests cannot drift apart. Each step takes and returns plain values:

* `load_scan(path, water_path, sidecar)` -> (metab FIDs, water FIDs or None)
* `preprocess_scan(metab, water, options)` -> `Preprocessed` (averaged OFF/ON + what reports show)
* `network_grid(pre)` -> network input [1, 4, 2048] on the 1.0-4.5 ppm grid
* `quantify_network(x, model, ...)` -> `Quantification` (relative concentrations + MC-dropout SD)
* `scan_qc(pre, quantifications)` -> QC metrics with traffic lights
* `write_scan_outputs(...)` -> derivative files + the scan's report fragment (JSON)
* `write_participant_report(out_dir, subject, ...)` -> sub-<label>.html

Derivative layout: DESIGN.md "Outputs". Files are written atomically (temporary name, then
rename), so an interrupted run never leaves a half-written output under its final name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import pickle
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path

import numpy as np

from gabaapp.__about__ import __version__
from gabaapp.atomic import write_text_atomic
from gabaapp.config import PRECISIONS
from gabaapp.constants import (
    DIM_EDIT,
    DIM_TIME,
    GRID_PPM_HIGH,
    GRID_PPM_LOW,
    GRID_ROWS,
    METABOLITES,
)
from gabaapp.errors import DataError, NoInputError, UsageError
from gabaapp.io.derivatives import derivative_name, derivative_path, write_json
from gabaapp.io.nifti_mrs import load_nifti_mrs, save_nifti_mrs
from gabaapp.report import figures, html, methods, qc, tables
from gabaapp.spectra import Acquisition, FIDs, fid_to_spectrum

log = logging.getLogger(__name__)

DL_MODELS = ("yae", "cnn", "fcnn")
MC_SAMPLES = 32  # Monte-Carlo dropout passes for the uncertainty
MC_SEED = 0  # fixed: identical tables on reruns
MAX_PLOTTED_TRANSIENTS = 64  # keeps report figures small and fast for 320+ transients
ERRORS_DIR = Path("logs") / "errors"
FRAGMENT_DESC = "report"


# ----------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class Preprocessed:
    """What the quantifiers and reports need from pre-processing one scan.

    `off`, `on`: averaged, corrected FIDs [n_points]; transient arrays are spectra
    [n_transients, n_points] (complex) before/after alignment, in acquisition order.
    """

    acquisition: Acquisition
    off: np.ndarray
    on: np.ndarray
    transients_before: np.ndarray | None = None
    transients_after: np.ndarray | None = None
    shift_hz: np.ndarray | None = None
    phase_deg: np.ndarray | None = None
    edit_index: np.ndarray | None = None  # per transient: 0 = edit-OFF, 1 = edit-ON
    rejected: np.ndarray | None = None
    rejection_metric: np.ndarray | None = None
    rejection_threshold: float | None = None
    qc_metrics: dict = field(default_factory=dict)
    processing_applied: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    header_extension: dict = field(default_factory=dict)
    affine: np.ndarray | None = None
    notes: list = field(default_factory=list)  # fallbacks the pre-processing took


@dataclass(frozen=True)
class Quantification:
    """Output of one quantifier for one scan (METABOLITES order, relative concentrations)."""

    model: str
    names: tuple[str, ...]
    concentrations: np.ndarray
    sd: np.ndarray
    gaba_label: str
    info: dict = field(default_factory=dict)  # model id, weights sha256, card fields, ...
    reconstruction: np.ndarray | None = None  # YAE: [4, 2048] on the network grid
    network_input: np.ndarray | None = None  # [4, 2048] that went in


# ----------------------------------------------------------------------------- load
def load_scan(
    path: str | Path, water_path: str | Path | None = None, sidecar: Mapping | None = None
) -> tuple[FIDs, FIDs | None]:
    """Return (metabolite FIDs with DIM_EDIT, water FIDs or None) from NIfTI-MRS files."""
    metab = load_nifti_mrs(path, sidecar=sidecar, require_edit=True)
    water = load_nifti_mrs(water_path) if water_path else None
    return metab, water


# ----------------------------------------------------------------------------- preprocess
def preprocess_scan(metab: FIDs, water: FIDs | None, options: object | None = None) -> Preprocessed:
    """Run coil combination, alignment, outlier rejection, eddy-current correction and
    averaging (gabaapp.preproc.chain); return the `Preprocessed` record of the scan."""
    from gabaapp.preproc.chain import preprocess_megapress

    return _from_preproc_result(preprocess_megapress(metab, water, options), metab)


def _from_preproc_result(result: object, metab: FIDs) -> Preprocessed:
    """Map gabaapp.preproc.chain.PreprocResult onto `Preprocessed` (the one adapter)."""
    if result.on is None:
        raise DataError("the scan is not edited (no edit-ON data); gabaapp quantifies MEGA-PRESS")
    return Preprocessed(
        acquisition=result.acquisition,
        off=np.asarray(result.off),
        on=np.asarray(result.on),
        transients_before=result.transients_before,
        transients_after=result.transients_after,
        shift_hz=result.shift_hz,
        phase_deg=result.phase_deg,
        edit_index=getattr(result, "edit_index", None),
        rejected=result.rejected,
        rejection_metric=result.rejection_metric,
        rejection_threshold=result.rejection_threshold,
        qc_metrics=dict(result.qc),
        processing_applied=list(result.processing_applied),
        settings=dict(result.settings),
        header_extension=dict(metab.meta.get("header_extension") or {}),
        affine=metab.meta.get("affine"),
        notes=list(getattr(result, "notes", [])),
    )


# ----------------------------------------------------------------------------- quantify
def network_grid(pre: Preprocessed) -> np.ndarray:
    """Return the network input [1, 4, 2048] float32 of the averaged OFF/ON FIDs."""
    from gabaapp.preproc.features import network_input

    return network_input(pre.off[None], pre.on[None], pre.acquisition)


def bundled_model_dir(model: str) -> Path:
    """Return gabaapp/data/models/<id>/ holding the bundled weights of quantifier `model`:
    the folder named `model`, else the first (sorted) whose card.json names that model."""
    root = Path(str(resources.files("gabaapp") / "data" / "models"))
    if (root / model / "card.json").is_file():
        return root / model
    for folder in sorted(p for p in root.glob("*") if (p / "card.json").is_file()):
        with contextlib.suppress(OSError, ValueError):
            if json.loads((folder / "card.json").read_text()).get("model") == model:
                return folder
    raise NoInputError(
        f"no bundled weights for model {model!r} in {root}; train one with 'gabaapp train' "
        "or install a gabaapp release that ships them"
    )


@lru_cache(maxsize=4)
def _load_model(model_dir: str, device: str):
    from gabaapp.models.card import load_model

    return load_model(model_dir, device=device)


def gaba_label_of(card: Mapping) -> str:
    """Return what a network's GABA output measures, from its model card.

    'GABA' when the card says so, or when the network was trained with the co-edited 3.0 ppm
    macromolecule signal as a nuisance (synthesis augmentation with mm_coedited_fraction > 0)
    while its GABA target excluded it: it learned to report GABA apart from the MM. Otherwise
    'GABA+': a network that never saw co-edited MM attributes it to GABA in vivo (Mullins et
    al. 2014).
    """
    explicit = card.get("gaba_definition") or card.get("gaba_label")
    if explicit in ("GABA", "GABA+"):
        return explicit
    training = card.get("training") if isinstance(card.get("training"), Mapping) else {}
    if training.get("macromolecules") in ("modelled", "separate"):
        return "GABA"
    synthesis = card.get("synthesis") if isinstance(card.get("synthesis"), Mapping) else {}
    aug = (
        synthesis.get("augmentation") if isinstance(synthesis.get("augmentation"), Mapping) else {}
    )
    coedited = aug.get("mm_coedited_fraction") or (0.0, 0.0)
    trained_with_mm = aug.get("enabled", True) and aug.get("mm_state") == "gaba+"
    return "GABA" if trained_with_mm and max(coedited) > 0 else "GABA+"


def quantify_network(
    x: np.ndarray,
    model: str,
    *,
    model_dir: str | Path | None = None,
    device: str = "cpu",
    n_samples: int = MC_SAMPLES,
    seed: int = MC_SEED,
    precision: str = "float32",
) -> Quantification:
    """Return the relative concentrations and MC-dropout SD of network input `x` [1, 4, 2048]
    with the bundled (or `model_dir`) weights of `model`; the YAE adds its reconstruction.
    `precision`: "float32" or "bfloat16" (autocast; outputs within ~1e-3, 2-3x faster)."""
    if model not in DL_MODELS:
        raise UsageError(f"{model!r} is not a network; choose from {DL_MODELS}")
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    from gabaapp.models.inference import predict

    folder = str(model_dir or bundled_model_dir(model))
    net, card = _load_model(folder, device)
    mean, sd = _mc_dropout(partial(predict, precision=precision), net, x, n_samples, seed)
    reconstruction = _reconstruct(net, x) if hasattr(net, "forward_both") else None
    names = tuple(card.get("output", {}).get("metabolites", METABOLITES))
    return Quantification(
        model=model,
        names=names,
        concentrations=np.asarray(mean[0], float),
        sd=np.asarray(sd[0], float),
        gaba_label=gaba_label_of(card),
        info={
            "Name": model,
            "ModelDirectory": Path(folder).name,
            "WeightsSHA256": card.get("weights", {}).get("sha256"),
            "ModelCardVersion": card.get("card_format"),
            "TrainedWithGabaappVersion": card.get("gabaapp_version"),
            "Uncertainty": f"SD over {n_samples} Monte-Carlo dropout passes (seed {seed})"
            if n_samples > 1
            else "none (single deterministic pass)",
            "Citation": card.get("citation"),
            "Precision": precision,
        },
        reconstruction=None if reconstruction is None else reconstruction[0],
        network_input=np.asarray(x[0]),
    )


def _mc_dropout(predict, net, x: np.ndarray, n_samples: int, seed: int):
    """Return (mean, sd) [N, n_out] over `n_samples` MC-dropout passes, computed as 2 passes of
    a batch holding n_samples/2 copies of each spectrum (dropout masks differ per batch row, so
    all samples are independent). Batching amortises reading the weights: about 4x faster on
    a CPU than n_samples passes of one spectrum. Pooled mean and SD follow from the per-copy
    means and SDs of models.inference.predict (law of total variance, exact)."""
    if n_samples < 4 or n_samples % 2:
        return predict(net, x, n_samples, seed=seed)
    n, copies, passes = len(x), n_samples // 2, 2
    m, s = predict(net, np.repeat(np.asarray(x), copies, axis=0), passes, seed=seed)
    m = m.reshape(n, copies, -1).astype(np.float64)
    s = s.reshape(n, copies, -1).astype(np.float64)
    mean = m.mean(axis=1)
    within = (passes - 1) * (s**2).sum(axis=1)
    between = passes * ((m - mean[:, None]) ** 2).sum(axis=1)
    sd = np.sqrt((within + between) / (n_samples - 1))
    return mean.astype(np.float32), sd.astype(np.float32)


def _reconstruct(net, x: np.ndarray) -> np.ndarray:
    """Return the YAE decoder output [N, 4, 2048] for `x` (deterministic, eval mode)."""
    import torch  # lazy: keeps `import gabaapp.pipeline` light

    net.eval()
    with torch.inference_mode():
        param = next(net.parameters())
        _, recon = net.forward_both(torch.as_tensor(x, dtype=torch.float32, device=param.device))
    return recon.float().cpu().numpy()


def quantification_from_fit(
    model: str,
    names: Sequence[str],
    amplitudes: Mapping[str, float],
    sd: Mapping[str, float],
    *,
    gaba_label: str,
    info: Mapping | None = None,
) -> Quantification:
    """Return a Quantification from a fitter's amplitudes and SDs (e.g. gabaapp.lcm), keeping
    METABOLITES order; missing metabolites are NaN."""
    conc = np.array([float(amplitudes.get(m, math.nan)) for m in METABOLITES])
    err = np.array([float(sd.get(m, math.nan)) for m in METABOLITES])
    return Quantification(model, tuple(METABOLITES), conc, err, gaba_label, dict(info or {}))


def lcm_basis_for(acquisition: Acquisition, header: Mapping | None) -> object:
    """Return the basis the LCM fits a scan with: the bundled default basis when the scan's
    field, echo time and edit offsets match its (paper) sequence, else a basis simulated for
    the scan's own f0, TE and edit offsets (gabaapp.physics, cached on disk after the first
    scan: a fit with a basis of another field or TE would misplace and mis-shape the lines)."""
    from gabaapp.physics.basis import cached_basis, default_basis
    from gabaapp.physics.sequence import MegaPressSequence

    paper = MegaPressSequence.preset("paper")
    params = scan_sequence_parameters(acquisition, header)
    changes = {}
    if abs(params["f0_mhz"] - paper.f0_mhz) > LCM_BASIS_TOLERANCE["f0_mhz"]:
        changes["f0_mhz"] = params["f0_mhz"]
    for key in ("edit_on_ppm", "edit_off_ppm"):
        if key in params and abs(params[key] - getattr(paper, key)) > LCM_BASIS_TOLERANCE[key]:
            changes[key] = params[key]
    te_ms = params.get("te_ms")
    paper_te_ms = sum(paper.delays_ms)
    if te_ms is not None and abs(te_ms - paper_te_ms) > LCM_BASIS_TOLERANCE["te_ms"]:
        changes["delays_ms"] = MegaPressSequence.for_te(te_ms).delays_ms
    if not changes:
        return default_basis()
    log.info("lcm: simulating a basis for this scan's sequence (%s)", changes)
    return cached_basis(paper.replace(**changes))


# how far a scan may be from the bundled basis's sequence before the LCM simulates its own
LCM_BASIS_TOLERANCE = {"f0_mhz": 0.05, "te_ms": 1.0, "edit_on_ppm": 0.02, "edit_off_ppm": 0.2}


def quantify_lcm(
    pre: Preprocessed, config: object | None = None, basis: object | None = None
) -> Quantification:
    """Return the linear-combination-model Quantification of a pre-processed scan
    (gabaapp.lcm.fit_megapress on the averaged OFF and DIFF; SD = Cramer-Rao lower bound).
    `basis`: a gabaapp.spectra.Basis (default: `lcm_basis_for` the scan's sequence)."""
    from gabaapp.config import LcmConfig
    from gabaapp.lcm.fit import fit_megapress

    config = config or LcmConfig()
    if basis is None:
        basis = lcm_basis_for(pre.acquisition, pre.header_extension)
    fit = fit_megapress(pre.off, pre.on - pre.off, pre.acquisition, basis, config)
    return quantification_from_fit(
        "lcm",
        fit.names,
        fit.amplitudes,
        fit.crlb_abs,
        # with Gaussian MM components in the fit the 3 ppm co-edited MM is separated from GABA
        gaba_label="GABA" if getattr(config, "include_mm", False) else "GABA+",
        info={
            "Name": "lcm",
            "Uncertainty": "Cramer-Rao lower bound (absolute SD)",
            "Converged": bool(fit.converged),
            "FitFlags": list(fit.flags),
        },
    )


def quantify_scan(
    pre: Preprocessed,
    model: str,
    device: str = "cpu",
    model_dir: str | Path | None = None,
    *,
    lcm_config: object | None = None,
    precision: str = "float32",
) -> Quantification:
    """Return the Quantification of `pre` by `model` (a network or 'lcm'); `model_dir`
    overrides the bundled weights of a network, `lcm_config` the LcmConfig of 'lcm',
    `precision` the networks' arithmetic (float32 or bfloat16)."""
    if model == "lcm":
        return quantify_lcm(pre, lcm_config)
    q = quantify_network(
        network_grid(pre), model, model_dir=model_dir, device=device, precision=precision
    )
    folder = str(model_dir or bundled_model_dir(model))
    card = _load_model(folder, device)[1]  # cached: the card quantify_network just used
    warnings = valid_for_warnings(pre.acquisition, pre.header_extension, card.get("valid_for"))
    if warnings:
        log.warning("%s: %s", model, "; ".join(warnings))
        q = replace(q, info={**q.info, OUT_OF_DOMAIN_KEY: warnings})
    return q


# ----------------------------------------------------------------------------- model domain
# How far a scan may sit from the nearest value a model was trained for before it is flagged.
# f0: 0.5 MHz covers vendors' rounding (123.2 vs 123.23) and is far below the 4.5 MHz gap
# between 2.89 T and 3 T; TE: 2 ms changes J-evolution of the GABA triplet only marginally;
# edit pulses: 0.1 ppm = 12 Hz at 3 T, well inside a 14-20 ms pulse's ~60-90 Hz bandwidth.
VALID_FOR_TOLERANCE = {"f0_mhz": 0.5, "te_ms": 2.0, "edit_on_ppm": 0.1, "edit_off_ppm": 0.1}
OUT_OF_DOMAIN_FLAG = "out_of_domain"
OUT_OF_DOMAIN_KEY = "OutOfDomain"


def scan_sequence_parameters(acquisition: Acquisition, header: Mapping | None) -> dict:
    """Return the sequence parameters a scan states: f0_mhz always, te_ms when the echo time
    is known, edit_on_ppm / edit_off_ppm when the NIfTI-MRS header has a one-pulse EditPulse."""
    from gabaapp.io.editing import pulse_offsets_ppm, unwrap_value

    scan: dict[str, float] = {"f0_mhz": float(acquisition.f0_mhz)}
    if acquisition.te_s is not None:
        scan["te_ms"] = float(acquisition.te_s) * 1e3
    pulses = unwrap_value((header or {}).get("EditPulse"))
    if isinstance(pulses, Mapping):
        for cond, key in (("ON", "edit_on_ppm"), ("OFF", "edit_off_ppm")):
            entry = pulses.get(cond)
            offsets = (
                pulse_offsets_ppm(entry, acquisition.f0_mhz) if isinstance(entry, Mapping) else []
            )
            if len(offsets) == 1:  # several pulses per condition: HERMES-like, refused earlier
                scan[key] = offsets[0]
    return scan


def valid_for_warnings(
    acquisition: Acquisition, header: Mapping | None, valid_for: Mapping | None
) -> list[str]:
    """Return one warning string per scan parameter (f0, TE, edit-ON/OFF pulse offsets) that
    lies farther than VALID_FOR_TOLERANCE from every value of the model card's `valid_for`;
    [] when all known parameters are inside. Parameters the scan does not state (TE None, no
    EditPulse in the NIfTI-MRS header) or the card does not list are not judged."""
    if not valid_for:
        return []
    scan = scan_sequence_parameters(acquisition, header)
    units = {"f0_mhz": "MHz", "te_ms": "ms", "edit_on_ppm": "ppm", "edit_off_ppm": "ppm"}
    labels = {
        "f0_mhz": "spectrometer frequency",
        "te_ms": "echo time",
        "edit_on_ppm": "edit-ON pulse offset",
        "edit_off_ppm": "edit-OFF pulse offset",
    }
    out = []
    for key, value in scan.items():
        allowed = [float(v) for v in valid_for.get(key) or () if v is not None]
        if not allowed or min(abs(value - v) for v in allowed) <= VALID_FOR_TOLERANCE[key]:
            continue
        unit = units[key]
        out.append(
            f"{labels[key]} {value:.6g} {unit} is outside what the model was trained for "
            f"({', '.join(f'{v:g}' for v in allowed)} {unit}, +-{VALID_FOR_TOLERANCE[key]:g}); "
            "treat its estimates with caution or use a model trained for this sequence"
        )
    return out


# ----------------------------------------------------------------------------- QC
def _fwhm_ppm(
    ppm: np.ndarray, spectrum: np.ndarray, centre_ppm: float, half_window: float = 0.15
) -> float:
    """Return the FWHM (ppm) of the largest real peak within +-half_window of centre_ppm,
    by linear interpolation of the half-maximum crossings; NaN if it cannot be found."""
    sel = np.flatnonzero(np.abs(ppm - centre_ppm) <= half_window)
    if sel.size < 5:
        return math.nan
    y = spectrum.real[sel]
    k = int(np.argmax(y))
    half = y[k] / 2
    if half <= 0:
        return math.nan
    left = k
    while left > 0 and y[left] > half:
        left -= 1
    right = k
    while right < len(y) - 1 and y[right] > half:
        right += 1
    if y[left] > half or y[right] > half:
        return math.nan
    x = ppm[sel]
    xl = np.interp(half, [y[left], y[left + 1]], [x[left], x[left + 1]])
    xr = np.interp(half, [y[right], y[right - 1]], [x[right], x[right - 1]])
    return float(abs(xr - xl))


def scan_qc(pre: Preprocessed, quantifications: Sequence[Quantification] = ()) -> dict[str, float]:
    """Return the QC metrics of a scan: those of the pre-processing plus NAA/Cr FWHM of the
    averaged edit-OFF (when pre-processing did not measure them), fraction of rejected
    transients, drift range, and the YAE reconstruction residual."""
    metrics = {k: (None if v is None else float(v)) for k, v in pre.qc_metrics.items()}
    ppm = pre.acquisition.ppm_axis()
    off_spec = fid_to_spectrum(pre.off)
    metrics.setdefault("naa_fwhm_ppm", _fwhm_ppm(ppm, off_spec, 2.01))
    metrics.setdefault("cr_fwhm_ppm", _fwhm_ppm(ppm, off_spec, 3.02, 0.08))
    if pre.rejected is not None and len(pre.rejected):
        metrics.setdefault("rejected_fraction", float(np.mean(pre.rejected)))
    if pre.shift_hz is not None and len(pre.shift_hz):
        metrics.setdefault("drift_range_hz", float(np.ptp(pre.shift_hz)))
    for q in quantifications:
        if q.reconstruction is not None and q.network_input is not None:
            metrics["reconstruction_residual"] = qc.reconstruction_residual(
                q.network_input, q.reconstruction
            )
    return metrics


def scan_flags(qc_rows: Sequence[qc.QCRow]) -> list[str]:
    """Return the flags every concentration row of the scan carries (qc_warn/qc_fail, and
    large_residual when the YAE reconstruction residual is not 'pass')."""
    flags = []
    worst = qc.worst_status([r for r in qc_rows if r.key != "reconstruction_residual"])
    if worst in (qc.WARN, qc.FAIL):
        flags.append(f"qc_{worst}")
    if any(r.key == "reconstruction_residual" and r.status in (qc.WARN, qc.FAIL) for r in qc_rows):
        flags.append("large_residual")
    return flags


# ----------------------------------------------------------------------------- outputs
def scan_key(entities: Mapping) -> str:
    """Return the scan's name: its entities without suffix, e.g. 'sub-01_acq-megapress68'."""
    return derivative_name(entities, desc=None, suffix="x", extension="").removesuffix("_x")


def _preproc_fids(pre: Preprocessed) -> FIDs:
    data = np.stack([pre.off, pre.on, pre.on - pre.off])
    meta = {"header_extension": pre.header_extension, "affine": pre.affine}
    return FIDs(data=data, dims=(DIM_EDIT, DIM_TIME), acquisition=pre.acquisition, meta=meta)


def _figures(pre: Preprocessed, quantifications: Sequence[Quantification]) -> list[dict]:
    """Return the scan's report figures as {title, caption, uri}."""
    ppm = pre.acquisition.ppm_axis()
    out = []

    def add(fig, title, caption):
        out.append({"title": title, "caption": caption, "uri": figures.figure_to_data_uri(fig)})

    if pre.transients_before is not None and pre.transients_after is not None:
        step = max(1, len(pre.transients_after) // MAX_PLOTTED_TRANSIENTS)
        rejected = None if pre.rejected is None else np.asarray(pre.rejected)[::step]
        add(
            figures.plot_transients(
                ppm, pre.transients_before[::step], pre.transients_after[::step], rejected
            ),
            "Transients before and after alignment",
            f"real part, every {step}. transient; red: rejected"
            if step > 1
            else "real part; red: rejected",
        )
    if pre.shift_hz is not None:
        add(
            figures.plot_drift(pre.shift_hz, pre.phase_deg, pre.rejected, pre.edit_index),
            "Frequency drift",
            "frequency (and phase) correction applied to each transient, per edit condition",
        )
    if pre.rejection_metric is not None and pre.rejected is not None:
        add(
            figures.plot_rejection(pre.rejection_metric, pre.rejected, pre.rejection_threshold),
            "Rejected transients",
            "outlier metric per transient and the rejection threshold",
        )
    add(
        figures.plot_edit_spectra(
            ppm, fid_to_spectrum(pre.off), fid_to_spectrum(pre.on), (GRID_PPM_LOW, GRID_PPM_HIGH)
        ),
        "Final spectra",
        "averaged edit-OFF, edit-ON and DIFF; shaded: the window the models see",
    )
    for q in quantifications:
        if q.reconstruction is not None and q.network_input is not None:
            from gabaapp.preproc.features import grid_ppm

            residual = qc.reconstruction_residual(q.network_input, q.reconstruction)
            add(
                figures.plot_reconstruction(
                    grid_ppm(), q.network_input, q.reconstruction, GRID_ROWS
                ),
                f"{q.model.upper()} reconstruction",
                f"network input vs autoencoder reconstruction; relative RMS residual "
                f"{residual:.3f} (large values flag data unlike the simulated training spectra)",
            )
    return out


def _error_path(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / ERRORS_DIR / f"{key}.json"


@contextlib.contextmanager
def recording_failure(out_dir: str | Path, key: str, source: str = "") -> Iterator[None]:
    """Run a step; on an exception write logs/errors/<key>.json (scan, source, error) for the
    group report and re-raise, so one failing scan is listed without stopping the others."""
    try:
        yield
    except Exception as err:
        record = {
            "scan": key,
            "source": str(source),
            "error": f"{type(err).__name__}: {err}",
            "exit_code": getattr(err, "exit_code", 1),
        }
        write_json(_error_path(Path(out_dir), key), record)
        raise


def write_scan_outputs(
    out_dir: str | Path,
    entities: Mapping,
    source: str | Path,
    pre: Preprocessed,
    quantifications: Sequence[Quantification],
) -> dict:
    """Write the scan's derivatives and report fragment; return the fragment (a dict).

    Files: <ent>_desc-preproc_svs.nii.gz (OFF/ON/DIFF, ProcessingApplied), per model
    <ent>_desc-<model>_concentrations.tsv + .json, and sub-<l>/figures/<ent>_desc-report.json.
    """
    out_dir = Path(out_dir)
    key = scan_key(entities)
    metrics = scan_qc(pre, quantifications)
    qc_rows = qc.qc_rows(metrics)
    status = qc.worst_status(qc_rows)
    flags = scan_flags(qc_rows)
    outputs = []

    nii = derivative_path(out_dir, entities, desc="preproc", suffix="svs", extension=".nii.gz")
    step = {
        "Time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(0)),  # fixed: identical reruns
        "Program": "gabaapp",
        "Version": __version__,
        "Method": "Sub-spectrum difference",
        "Details": "DIM_EDIT holds OFF, ON and DIFF = ON - OFF of the averaged, corrected data",
    }
    save_nifti_mrs(
        nii,
        _preproc_fids(pre),
        processing_applied=[*pre.processing_applied, step],
        edit_condition=("OFF", "ON", "DIFF"),
    )
    outputs.append(nii)

    results = []
    notes = list(pre.notes)
    for q in quantifications:
        out_of_domain = q.info.get(OUT_OF_DOMAIN_KEY) or []
        rows = tables.concentration_rows(
            q.concentrations,
            q.sd,
            gaba_label=q.gaba_label,
            scan_flags=[*flags, OUT_OF_DOMAIN_FLAG] if out_of_domain else flags,
        )
        notes += [f"{q.model}: {w}" for w in out_of_domain]
        tsv = derivative_path(
            out_dir, entities, desc=q.model, suffix="concentrations", extension=".tsv"
        )
        columns = list(tables.CONCENTRATION_COLUMNS)
        sidecar = {
            **tables.column_descriptions(columns),
            "Sources": [f"bids:raw:{Path(source).name}"],
            "Quantifier": q.info | {"GABAReportedAs": q.gaba_label},
            "GeneratedBy": {"Name": "gabaapp", "Version": __version__},
            "Preprocessing": pre.settings,
            "QC": {"status": status, "metrics": metrics},
        }
        write_text_atomic(tsv, tables.format_tsv(rows, columns))
        write_json(tsv.with_suffix(".json"), _json_ready(sidecar))
        outputs += [tsv, tsv.with_suffix(".json")]
        results.append(
            {
                "model": q.model,
                "gaba_label": q.gaba_label,
                "weights_sha256": q.info.get("WeightsSHA256") or "n/a",
                "rows": rows,
            }
        )

    fragment = {
        "name": key,
        "source": str(source),
        "status": "ok",
        "error": None,
        "qc": qc.rows_as_dicts(qc_rows),
        "qc_status": status,
        "figures": _figures(pre, quantifications),
        "results": results,
        "outputs": [p.relative_to(out_dir).as_posix() for p in outputs],
        "models": [q.model for q in quantifications],
        "settings": pre.settings,
        "notes": notes,
    }
    write_json(fragment_path(out_dir, entities), _json_ready(fragment))
    with contextlib.suppress(FileNotFoundError):  # the scan succeeded now
        _error_path(out_dir, key).unlink()
    return fragment


def fragment_path(out_dir: str | Path, entities: Mapping) -> Path:
    """Return out_dir/sub-<l>[/ses-<l>]/figures/<ent>_desc-report.json."""
    return derivative_path(
        out_dir, entities, desc=FRAGMENT_DESC, suffix="svs", extension=".json", datatype="figures"
    )


def _json_ready(value: object) -> object:
    """Return `value` with NaN/inf as None and numpy types as Python types (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_participant_report(
    out_dir: str | Path, subject: str, models: Sequence[str], failures: Sequence[Mapping] = ()
) -> Path:
    """Render out_dir/sub-<subject>.html from the scan fragments under sub-<subject>/ and the
    given failures ({scan, source, error}); return its path."""
    out_dir = Path(out_dir)
    scans = [
        json.loads(p.read_text())
        for p in sorted(
            (out_dir / f"sub-{subject}").glob(f"**/figures/*_desc-{FRAGMENT_DESC}_svs.json")
        )
    ]
    failed = {f["scan"] for f in failures}
    scans = [s for s in scans if s["name"] not in failed]
    for f in failures:
        scans.append(
            {
                "name": f["scan"],
                "source": f.get("source", ""),
                "status": "failed",
                "error": f.get("error", ""),
                "qc": [],
                "qc_status": "info",
                "figures": [],
                "results": [],
                "outputs": [],
                "notes": [],
            }
        )
    settings = next((s.get("settings") for s in scans if s.get("settings")), None)
    page = html.render_participant_report(subject, scans, __version__, models, settings)
    path = out_dir / f"sub-{subject}.html"
    write_text_atomic(path, page)
    return path


def read_failures(out_dir: str | Path) -> list[dict]:
    """Return the recorded scan failures [{scan, source, error}] under out_dir/logs/errors."""
    return [json.loads(p.read_text()) for p in sorted((Path(out_dir) / ERRORS_DIR).glob("*.json"))]


def write_citations(
    out_dir: str | Path, models: Sequence[str], settings: Mapping | None = None
) -> list[Path]:
    """Write out_dir/logs/CITATION.md and CITATION.bib; return their paths."""
    logs = Path(out_dir) / "logs"
    md = write_text_atomic(
        logs / "CITATION.md", methods.citation_markdown(__version__, models, settings)
    )
    bib = write_text_atomic(logs / "CITATION.bib", methods.citation_bibtex(models))
    return [md, bib]


# ----------------------------------------------------------------------------- state files
def save_state(obj: object, path: str | Path) -> Path:
    """Pickle an intermediate result (nipype node outputs in the work directory only)."""
    path = Path(path)
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_state(path: str | Path) -> object:
    """Load what `save_state` wrote (files gabaapp itself made in its work directory)."""
    with Path(path).open("rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own work-directory files, never user input


# ----------------------------------------------------------------------------- notebook API
def quantify(
    path: str | Path,
    water: str | Path | None = None,
    *,
    models: Sequence[str] = ("yae",),
    device: str = "cpu",
    sidecar: Mapping | str | Path | None = None,
    model_dirs: Mapping[str, str | Path] | None = None,
    precision: str = "float32",
) -> list[dict]:
    """Quantify one MEGA-PRESS NIfTI-MRS file; return one record per metabolite and model.

    Each record: {model, metabolite, reported_as, concentration, concentration_sd, percent_sd,
    ratio_cr, ratio_naa, ..., flags, qc_status, <qc metrics>} — ready for
    `pandas.DataFrame(records)`. `sidecar`: the BIDS JSON (dict or path), read from beside the
    file when omitted. `models`: any of yae, cnn, fcnn, lcm; `model_dirs` maps a model to
    the folder of its weights and card (default: the bundled ones); `precision` the networks'
    arithmetic (float32 or bfloat16).
    """
    path = Path(path)
    if not path.is_file():
        raise NoInputError(f"{path} does not exist")
    unknown = [m for m in models if m not in (*DL_MODELS, "lcm")]
    if unknown:
        raise UsageError(f"unknown model(s) {unknown}; choose from {(*DL_MODELS, 'lcm')}")
    if sidecar is None:
        candidate = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".json")
        sidecar = json.loads(candidate.read_text()) if candidate.is_file() else {}
    elif not isinstance(sidecar, Mapping):
        sidecar = json.loads(Path(sidecar).read_text())
    metab, water_fids = load_scan(path, water, sidecar)
    pre = preprocess_scan(metab, water_fids)
    dirs = dict(model_dirs or {})
    quants = [quantify_scan(pre, m, device, dirs.get(m), precision=precision) for m in models]
    metrics = scan_qc(pre, quants)
    rows = qc.qc_rows(metrics)
    status, flags = qc.worst_status(rows), scan_flags(rows)
    records = []
    for q in quants:
        for row in tables.concentration_rows(
            q.concentrations, q.sd, gaba_label=q.gaba_label, scan_flags=flags
        ):
            records.append({"model": q.model, **row, "qc_status": status, **metrics})
    return records


def preprocessed_from_arrays(
    acquisition: Acquisition, off: np.ndarray, on: np.ndarray, **fields: object
) -> Preprocessed:
    """Return a Preprocessed record from averaged OFF/ON FIDs (tests, simulated data)."""
    if off.shape != on.shape or off.shape[-1] != acquisition.n_points:
        raise DataError("OFF and ON FIDs must both have acquisition.n_points samples")
    return Preprocessed(acquisition=acquisition, off=off, on=on, **fields)
