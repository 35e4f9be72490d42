"""The pre-processing chain of one MEGA-PRESS scan (or an unedited SVS scan).

coil combination -> eddy-current correction -> frequency/phase alignment of transients (per
edit condition) -> outlier rejection -> averaging -> residual water removal -> ON-to-OFF
alignment -> zero-order phase -> frequency referencing -> DIFF, with QC metrics and
NIfTI-MRS `ProcessingApplied` records. docs/preprocessing.md describes each step.

Input: `gabaapp.spectra.FIDs` whose axes are named by tag (DIM_COIL, DIM_DYN, DIM_EDIT with
OFF = index 0, ON = 1; any of COIL/DYN may be absent = size 1). Fallbacks are never silent:
each is logged, listed in `PreprocResult.notes` and flagged by a number in `qc`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from threadpoolctl import threadpool_limits

from gabaapp.__about__ import __version__
from gabaapp.config import PreprocConfig
from gabaapp.constants import CR_PPM, DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME
from gabaapp.errors import DataError
from gabaapp.preproc import qc as qcm
from gabaapp.preproc.align import align_pair, align_transients, apply_shift_phase
from gabaapp.preproc.coils import coil_weights, combine_coils, noise_covariance
from gabaapp.preproc.eddy import correct_eddy_currents
from gabaapp.preproc.outliers import deviation_from_median, find_outliers
from gabaapp.preproc.phase import reference_shift_hz, zero_order_phase
from gabaapp.preproc.water import remove_residual_water
from gabaapp.spectra import Acquisition, FIDs, fid_to_spectrum

logger = logging.getLogger(__name__)

KNOWN_DIMS = (DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME)
# Transients whose FID tails estimate the coil noise covariance (plenty for 32 coils).
NOISE_TRANSIENTS = 64
CR_CH2_PPM = 3.93


def step_record(method: str, details: str) -> dict:
    """Return one NIfTI-MRS ProcessingApplied entry (Time, Program, Version, Method, Details)."""
    return {
        "Time": datetime.now(UTC).isoformat(timespec="seconds"),
        "Program": "gabaapp",
        "Version": __version__,
        "Method": method,
        "Details": details,
    }


@dataclass(frozen=True)
class PreprocResult:
    """Output of the chain. Per-transient arrays are in acquisition order, flattened
    dynamic-major then edit condition: index = dyn * n_edit + edit (`edit_index` says which).

    `off`, `on`, `diff`: averaged, corrected FIDs [n_points] (`on`/`diff` None when unedited);
    `water`: combined, averaged water reference or None. `shift_hz`/`phase_deg`: offsets of
    each transient before correction; `shift_hz_after`/`phase_deg_after`: offsets left after
    correction (re-registered to the final reference). `rejected`: bool mask (outliers and
    invalid transients); `invalid`: all-zero or non-finite transients; `qc`: numbers only.
    """

    acquisition: Acquisition
    off: np.ndarray
    on: np.ndarray | None
    diff: np.ndarray | None
    water: np.ndarray | None
    transients_before: np.ndarray
    transients_after: np.ndarray
    edit_index: np.ndarray
    shift_hz: np.ndarray
    phase_deg: np.ndarray
    shift_hz_after: np.ndarray
    phase_deg_after: np.ndarray
    rejected: np.ndarray
    invalid: np.ndarray
    rejection_metric: np.ndarray
    rejection_threshold: float
    coil_weights: np.ndarray
    qc: dict[str, float]
    processing_applied: list[dict]
    settings: dict
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_indices(self) -> np.ndarray:
        """Return the flattened indices of rejected transients."""
        return np.nonzero(self.rejected)[0]

    def as_fids(self) -> FIDs:
        """Return the averaged data as FIDs: [OFF, ON, DIFF] on DIM_EDIT (OFF only if unedited)."""
        rows = [self.off] if self.on is None else [self.off, self.on, self.diff]
        return FIDs(np.stack(rows), (DIM_EDIT, DIM_TIME), self.acquisition)


def _standard_layout(fids: FIDs, edited: bool) -> np.ndarray:
    """Return data as [coil, dyn, edit, time] (edit size 1 if unedited), sizes 1 for absent axes."""
    unknown = [d for d in fids.dims if d not in KNOWN_DIMS]
    if unknown:
        raise DataError(
            f"unsupported NIfTI-MRS dimension(s) {unknown}; gabaapp handles {KNOWN_DIMS[:-1]}"
        )
    data = np.asarray(fids.data)
    order = [fids.dims.index(d) for d in (DIM_COIL, DIM_DYN, DIM_EDIT) if d in fids.dims]
    data = np.moveaxis(data, order + [data.ndim - 1], list(range(len(order) + 1)))
    present = [d for d in (DIM_COIL, DIM_DYN, DIM_EDIT) if d in fids.dims]
    for i, d in enumerate((DIM_COIL, DIM_DYN, DIM_EDIT)):
        if d not in present:
            data = np.expand_dims(data, i)
    if edited and data.shape[2] != 2:
        raise DataError(
            f"DIM_EDIT has {data.shape[2]} entries; MEGA-PRESS needs exactly 2 (OFF, ON)"
        )
    if not edited and DIM_EDIT in fids.dims and data.shape[2] != 1:
        raise DataError("edited data passed to the unedited chain; use preprocess_megapress")
    if not np.iscomplexobj(data):
        data = data.astype(np.complex128)
    return data


def _nonfinite_mask(data: np.ndarray) -> np.ndarray:
    """Return [dyn, edit] True where a transient holds NaN/Inf in any coil.

    One reduction pass: NaN and Inf propagate through the sum (Inf - Inf gives NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return ~np.isfinite(data.sum(axis=(0, 3)))


def stack_edit(off: FIDs, on: FIDs) -> tuple[FIDs, list[str]]:
    """Return (FIDs with DIM_EDIT [OFF, ON], notes) from separate OFF and ON FIDs.

    Fallback for mismatched counts: the trailing unpaired transients of the longer set are
    dropped (so ON and OFF stay paired in time) and a note says how many.
    """
    if off.dims != on.dims or off.acquisition != on.acquisition:
        raise DataError("edit-OFF and edit-ON data differ in axes or sampling; check the input")
    notes: list[str] = []
    a, b = off.data, on.data
    if DIM_DYN in off.dims:
        ax = off.axis(DIM_DYN)
        n = min(a.shape[ax], b.shape[ax])
        if a.shape[ax] != b.shape[ax]:
            notes.append(
                f"edit-OFF has {a.shape[ax]} and edit-ON {b.shape[ax]} transients; the "
                f"{abs(a.shape[ax] - b.shape[ax])} unpaired trailing one(s) were dropped"
            )
            logger.info(notes[-1])
        a = np.take(a, np.arange(n), axis=ax)
        b = np.take(b, np.arange(n), axis=ax)
    if a.shape != b.shape:
        raise DataError(f"edit-OFF {a.shape} and edit-ON {b.shape} data cannot be paired")
    data = np.stack([a, b], axis=-2)
    dims = off.dims[:-1] + (DIM_EDIT, DIM_TIME)
    return FIDs(data, dims, off.acquisition, dict(off.meta)), notes


def preprocess_megapress(
    metab: FIDs, water: FIDs | None = None, options: PreprocConfig | None = None
) -> PreprocResult:
    """Return the pre-processed MEGA-PRESS scan (averaged OFF/ON/DIFF, estimates, QC, records).

    `metab` needs a DIM_EDIT axis of size 2 (OFF = 0, ON = 1); `water` is the unsuppressed
    water reference (any of DIM_COIL/DIM_DYN) or None. Raises DataError for unusable data.
    """
    if DIM_EDIT not in metab.dims:
        raise DataError(
            "no DIM_EDIT axis: not MEGA-PRESS edit-OFF/ON data (use preprocess_unedited)"
        )
    with threadpool_limits(1, user_api="blas"):  # small matrices: threads only contend
        return _run(metab, water, options or PreprocConfig(), edited=True)


def preprocess_unedited(
    metab: FIDs, water: FIDs | None = None, options: PreprocConfig | None = None
) -> PreprocResult:
    """Return the pre-processed unedited SVS scan (PRESS/STEAM): as MEGA without ON/DIFF."""
    with threadpool_limits(1, user_api="blas"):
        return _run(metab, water, options or PreprocConfig(), edited=False)


def _run(metab: FIDs, water: FIDs | None, opt: PreprocConfig, edited: bool) -> PreprocResult:
    acq = metab.acquisition
    notes: list[str] = []
    records: list[dict] = []
    qc: dict[str, float] = {}

    def note(text: str) -> None:
        logger.info(text)  # recorded in the QC sidecar and report
        notes.append(text)

    data = _standard_layout(metab, edited)  # [coil, dyn, edit, time]
    n_coils, n_dyn, n_edit, n_points = data.shape
    nonfinite = _nonfinite_mask(data)
    if nonfinite.any():
        data = np.where(nonfinite[None, :, :, None], 0, data)
    # --- water reference: [coil, dyn_w, time]
    wdata = None
    if water is not None:
        wfids = water
        if DIM_EDIT in water.dims:  # an edited water reference: average the conditions
            ax = water.axis(DIM_EDIT)
            wfids = FIDs(
                water.data.mean(axis=ax),
                water.dims[:ax] + water.dims[ax + 1 :],
                water.acquisition,
                water.meta,
            )
        wdata = _standard_layout(wfids, edited=False)[:, :, 0]
        wfinite = np.all(np.isfinite(wdata), axis=(0, 2)) & np.any(wdata != 0, axis=(0, 2))
        if not wfinite.any():
            note("the water reference is empty or non-finite; it was ignored")
            wdata = None
        else:
            wdata = wdata[:, wfinite]
        if wdata is not None and wdata.shape[0] != n_coils:
            note(
                f"the water reference has {wdata.shape[0]} coils, the metabolite data "
                f"{n_coils}; coil weights come from the metabolite data, water is not used"
            )
            wdata = None
    qc["water_reference_used"] = float(wdata is not None)

    # --- coil combination (noise from the FID tails of up to NOISE_TRANSIENTS transients)
    finite_idx = np.nonzero(~nonfinite.reshape(-1))[0]
    if len(finite_idx) == 0:
        raise DataError("every transient holds NaN or Inf values; the data cannot be used")
    sample = finite_idx[
        np.linspace(0, len(finite_idx) - 1, min(NOISE_TRANSIENTS, len(finite_idx))).astype(int)
    ]
    flat_view = data.reshape(n_coils, n_dyn * n_edit, n_points)
    cov = noise_covariance(flat_view[:, sample])
    ref_source = "water reference" if wdata is not None else "metabolite data"
    weights = coil_weights(
        wdata if wdata is not None else flat_view[:, sample], cov, method=opt.coil_method
    )
    combined = combine_coils(data, weights).astype(np.complex128)  # [dyn, edit, time]
    # All-zero transients (e.g. a dropped acquisition) are zero after combination too.
    invalid = nonfinite | ~np.any(combined != 0, axis=-1)
    qc["n_transients"] = float(n_dyn * n_edit)
    qc["n_invalid_transients"] = float(invalid.sum())
    if invalid.all(axis=0).any():
        raise DataError(
            "every transient of an edit condition is empty or non-finite (NaN/Inf/all zero); "
            "the data cannot be pre-processed"
        )
    if invalid.any():
        note(f"{int(invalid.sum())} transient(s) are all-zero or non-finite and were excluded")
    water_avg = None
    if wdata is not None:
        water_avg = combine_coils(wdata, weights).astype(np.complex128).mean(axis=0)
    if n_coils > 1:
        records.append(
            step_record(
                "RF coil combination",
                f"gabaapp.preproc.coils method={opt.coil_method}, {n_coils} coils, "
                f"weights from the {ref_source}, noise covariance from FID tails",
            )
        )

    # --- eddy-current correction (Klose) with the water reference
    qc["eddy_current_corrected"] = 0.0
    if opt.eddy_current and water_avg is not None:
        same_dwell = np.isclose(water.acquisition.dwell_s, acq.dwell_s, rtol=1e-6)
        if same_dwell and water_avg.shape[-1] >= n_points:
            if water_avg.shape[-1] > n_points:
                note(
                    f"water reference has {water_avg.shape[-1]} points, metabolite data "
                    f"{n_points}; its first {n_points} points were used for eddy-current correction"
                )
            combined = correct_eddy_currents(combined, water_avg, acq)
            qc["eddy_current_corrected"] = 1.0
            records.append(
                step_record("Eddy current correction", "Klose 1990 with the water reference")
            )
        else:
            note(
                f"eddy-current correction skipped: water reference sampling "
                f"({water_avg.shape[-1]} points, dwell {water.acquisition.dwell_s:g} s) does "
                f"not cover the metabolite data ({n_points} points, dwell {acq.dwell_s:g} s)"
            )

    # --- alignment of transients, per edit condition
    before = combined.copy()
    freq = np.full((n_dyn, n_edit), np.nan)
    phase = np.full((n_dyn, n_edit), np.nan)
    freq_after = np.full((n_dyn, n_edit), np.nan)
    phase_after = np.full((n_dyn, n_edit), np.nan)
    for e in range(n_edit):
        valid = ~invalid[:, e]
        res = align_transients(
            combined[:, e],
            acq,
            method=opt.align_method,
            ppm_range=opt.align_ppm,
            time_s=opt.align_time_s,
            max_shift_hz=opt.max_shift_hz,
            valid=valid,
        )
        combined[:, e] = res.aligned
        freq[:, e], phase[:, e] = res.freq_hz, res.phase_rad
        # What is left: re-register the corrected transients to the final reference.
        check = align_transients(
            res.aligned, acq, method="sr", ppm_range=opt.align_ppm, time_s=opt.align_time_s,
            max_shift_hz=opt.max_shift_hz, valid=valid,
        )  # fmt: skip
        freq_after[:, e], phase_after[:, e] = check.freq_hz, check.phase_rad
    if opt.align_method != "none" and n_dyn > 1:
        records.append(
            step_record(
                "Frequency and phase correction",
                f"spectral registration ({opt.align_method}) per edit condition on "
                f"{opt.align_ppm[0]}-{opt.align_ppm[1]} ppm, first {opt.align_time_s} s",
            )
        )

    # --- outlier rejection
    zscore = np.full((n_dyn, n_edit), np.nan)
    outlier = np.zeros((n_dyn, n_edit), bool)
    if opt.reject_outliers:
        for e in range(n_edit):
            deviation = deviation_from_median(
                combined[:, e], acq, opt.outlier_ppm, valid=~invalid[:, e]
            )
            outlier[:, e], zscore[:, e] = find_outliers(deviation, opt.outlier_z)
        if n_dyn > 1 and np.nanmax(np.abs(zscore)) == 0:
            note(f"outlier rejection skipped: {n_dyn} transient(s) are too few or identical")
    rejected = outlier | invalid
    if opt.reject_pairs and n_edit == 2:
        rejected = rejected | rejected.any(axis=1, keepdims=True)
    if rejected.all(axis=0).any():
        raise DataError("all transients of an edit condition were rejected; check the data")
    if outlier.any():
        records.append(
            step_record(
                "Outlier removal",
                f"{int(outlier.sum())} transient(s) with robust z > {opt.outlier_z} of the "
                f"deviation from the median spectrum on {opt.outlier_ppm[0]}-"
                f"{opt.outlier_ppm[1]} ppm" + (" (and their ON/OFF partners)" if opt.reject_pairs else ""),
            )
        )  # fmt: skip
    qc["n_rejected"] = float(outlier.sum())
    qc["n_excluded"] = float(rejected.sum())
    qc["rejected_fraction"] = float(rejected.sum() / rejected.size)

    # --- averaging
    keep = ~rejected
    avg = np.stack([combined[keep[:, e], e].mean(axis=0) for e in range(n_edit)])
    if n_dyn > 1:
        records.append(
            step_record(
                "Signal averaging",
                f"mean of {int(keep[:, 0].sum())} edit-OFF"
                + (f" and {int(keep[:, 1].sum())} edit-ON" if n_edit == 2 else "")
                + " transients",
            )
        )

    # --- residual water removal
    qc["water_removed"] = 0.0
    if opt.water_removal == "hlsvd":
        avg = remove_residual_water(avg, acq, opt.water_ppm, opt.hlsvd_rank)
        qc["water_removed"] = 1.0
        records.append(
            step_record(
                "Nuisance peak removal",
                f"HLSVD (rank {opt.hlsvd_rank}) components in {opt.water_ppm[0]}-"
                f"{opt.water_ppm[1]} ppm removed",
            )
        )

    # --- ON-to-OFF alignment
    if edited and opt.align_on_to_off:
        f_on, p_on = align_pair(avg[1], avg[0], acq, ppm_range=opt.on_off_ppm)
        avg[1] = apply_shift_phase(avg[1], acq, f_on, p_on)
        qc["on_off_shift_hz"] = f_on
        qc["on_off_phase_deg"] = float(np.degrees(p_on))
        records.append(
            step_record(
                "Alignment of subtraction sub-spectra",
                "edit-ON registered to edit-OFF on "
                + ", ".join(f"{lo}-{hi}" for lo, hi in opt.on_off_ppm)
                + f" ppm "
                f"(shift {f_on:.3f} Hz, phase {np.degrees(p_on):.2f} deg)",
            )
        )

    # --- zero-order phase and frequency referencing (both from edit-OFF, applied to all)
    if opt.phase_correct:
        phi = zero_order_phase(avg[0], acq)
        avg = avg * np.exp(-1j * phi)
        qc["phase0_deg"] = float(np.degrees(phi))
        records.append(
            step_record("Phasing", f"zero-order {np.degrees(phi):.2f} deg from Cr/NAA of edit-OFF")
        )
    if opt.reference_frequency:
        shift = reference_shift_hz(avg[0], acq)
        avg = apply_shift_phase(avg, acq, -shift)
        qc["reference_shift_hz"] = shift
        records.append(
            step_record(
                "Frequency and phase correction",
                f"frequency referencing: shifted {shift:.3f} Hz so the stronger of NAA/Cr "
                "sits at 2.01/3.015 ppm",
            )
        )

    off = avg[0]
    on = avg[1] if edited else None
    diff = on - off if edited else None
    if edited:
        records.append(step_record("Subtraction of sub-spectra", "DIFF = edit-ON - edit-OFF"))

    # --- QC
    qc.update(qcm.spectrum_qc(off, acq))
    if water_avg is not None:
        qc.update(qcm.water_qc(water_avg, water.acquisition))
    valid_flat = ~invalid.reshape(-1)
    qc.update(qcm.drift_metrics(freq.reshape(-1)[valid_flat]))
    qc["phase_sd_deg"] = float(np.degrees(np.nanstd(phase)))
    qc["drift_after_sd_hz"] = float(np.nanstd(np.where(rejected, np.nan, freq_after)))
    if edited:
        qc["diff_cr30_residual"] = qcm.diff_residual(off, diff, acq, CR_PPM)
        qc["diff_cr39_residual"] = qcm.diff_residual(off, diff, acq, CR_CH2_PPM)

    return PreprocResult(
        acquisition=acq,
        off=off,
        on=on,
        diff=diff,
        water=water_avg,
        transients_before=fid_to_spectrum(before.reshape(-1, n_points)),
        transients_after=fid_to_spectrum(combined.reshape(-1, n_points)),
        edit_index=np.tile(np.arange(n_edit), n_dyn),
        shift_hz=freq.reshape(-1),
        phase_deg=np.degrees(phase.reshape(-1)),
        shift_hz_after=freq_after.reshape(-1),
        phase_deg_after=np.degrees(phase_after.reshape(-1)),
        rejected=rejected.reshape(-1),
        invalid=invalid.reshape(-1),
        rejection_metric=zscore.reshape(-1),
        rejection_threshold=float(opt.outlier_z),
        coil_weights=weights,
        qc=qc,
        processing_applied=records,
        settings=asdict(opt),
        notes=notes,
    )
