"""`gabaapp simulate basis --out DIR [sequence options] [--nifti] [--lcmodel]`.

Simulates a zero-linewidth MEGA-PRESS (or PRESS, --no-editing) basis and writes
DIR/basis.npz (load with gabaapp.physics.basis.load_basis) and DIR/sequence.json; optionally
one NIfTI-MRS file per metabolite (DIR/nifti/<name>.nii.gz, DIM_EDIT = OFF, ON) and an LCModel
.BASIS file per edit condition (DIR/lcmodel/basis_{off,on,diff}.BASIS).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gabaapp.constants import DIM_EDIT, DIM_TIME, METABOLITES
from gabaapp.errors import CannotCreateOutputError, UsageError

logger = logging.getLogger(__name__)

_PRESETS = ("paper", "siemens", "ge", "philips")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `gabaapp simulate basis` to `parser`."""
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--preset", choices=_PRESETS, default="paper", help="sequence preset")
    parser.add_argument(
        "--metabolites", nargs="+", default=list(METABOLITES), help="metabolites to simulate"
    )
    seq = parser.add_argument_group("sequence (overrides the preset)")
    seq.add_argument("--f0-mhz", type=float, help="Larmor frequency (MHz)")
    seq.add_argument("--spectral-width-hz", type=float, help="spectral width (Hz)")
    seq.add_argument("--n-points", type=int, help="points per FID")
    seq.add_argument("--delays-ms", type=float, nargs=5, metavar="MS", help="5 inter-pulse delays")
    seq.add_argument("--te-ms", type=float, help="echo time; delays split as TE1 = --te1-ms")
    seq.add_argument("--te1-ms", type=float, default=10.0, help="TE1 used with --te-ms")
    seq.add_argument("--refocusing-pulse", help="refocusing pulse shape (mao, sinc, ...)")
    seq.add_argument("--refocusing-duration-ms", type=float)
    seq.add_argument("--ideal-refocusing", action="store_true", help="instantaneous ideal 180s")
    seq.add_argument("--editing-pulse", help="editing pulse shape (fida_edit, gaussian, ...)")
    seq.add_argument("--editing-duration-ms", type=float)
    seq.add_argument("--edit-on-ppm", type=float)
    seq.add_argument("--edit-off-ppm", type=float)
    seq.add_argument("--no-editing", action="store_true", help="PRESS: no editing pulses")
    seq.add_argument("--voxel-cm", type=float, nargs=2, metavar="CM")
    seq.add_argument("--grid-points", type=int, help="grid positions per axis")
    seq.add_argument("--grid-extent-cm", type=float, help="grid spans +/- this (cm)")
    seq.add_argument(
        "--coherence-selection", choices=("pathway", "fida_cycle", "full_cycle"), default=None
    )
    out = parser.add_argument_group("exports")
    out.add_argument("--nifti", action="store_true", help="also write NIfTI-MRS per metabolite")
    out.add_argument("--lcmodel", action="store_true", help="also write LCModel .BASIS files")
    out.add_argument(
        "--linewidth-hz", type=float, default=0.0, help="Lorentzian FWHM applied to the exports"
    )
    out.add_argument("--no-progress", action="store_true", help="hide the progress bar")


_OVERRIDES = {
    "f0_mhz": "f0_mhz",
    "spectral_width_hz": "spectral_width_hz",
    "n_points": "n_points",
    "delays_ms": "delays_ms",
    "refocusing_pulse": "refocusing_pulse",
    "refocusing_duration_ms": "refocusing_duration_ms",
    "editing_pulse": "editing_pulse",
    "editing_duration_ms": "editing_duration_ms",
    "edit_on_ppm": "edit_on_ppm",
    "edit_off_ppm": "edit_off_ppm",
    "voxel_cm": "voxel_cm",
    "grid_points": "grid_points",
    "grid_extent_cm": "grid_extent_cm",
    "coherence_selection": "coherence_selection",
}


def sequence_from_args(args: argparse.Namespace):
    """Return the MegaPressSequence described by the parsed options."""
    from gabaapp.physics.sequence import MegaPressSequence

    changes = {
        field: getattr(args, opt)
        for opt, field in _OVERRIDES.items()
        if getattr(args, opt) is not None
    }
    if args.ideal_refocusing:
        changes["ideal_refocusing"] = True
    if args.no_editing:
        changes["editing"] = False
    if args.te_ms is not None:
        if args.delays_ms is not None:
            raise UsageError("give either --te-ms or --delays-ms, not both")
        base = MegaPressSequence.preset(args.preset, **changes)
        return MegaPressSequence.for_te(
            args.te_ms, args.te1_ms, **{k: v for k, v in base.to_dict().items() if k != "delays_ms"}
        )
    return MegaPressSequence.preset(args.preset, **changes)


def _export_nifti(basis, out_dir: Path, lw_hz: float, sequence) -> None:
    import numpy as np

    from gabaapp.io.nifti_mrs import save_nifti_mrs
    from gabaapp.physics.basis import apply_linewidth
    from gabaapp.spectra import FIDs

    for i, name in enumerate(basis.names):
        data = np.stack([basis.off[i], basis.on[i]])
        data = apply_linewidth(data, basis.acquisition, lw_hz)
        fids = FIDs(
            data, (DIM_EDIT, DIM_TIME), basis.acquisition, meta={"edit_condition": ("OFF", "ON")}
        )
        save_nifti_mrs(
            out_dir / "nifti" / f"{name}.nii.gz",
            fids,
            processing_applied=[
                {
                    "Program": "gabaapp simulate basis",
                    "Method": "Other",
                    "Details": f"density-matrix simulation of {name}; sequence hash "
                    f"{basis.sequence_hash}; Lorentzian linewidth {lw_hz} Hz; "
                    f"parameters {json.dumps(sequence.to_dict())}",
                }
            ],
        )


def run(args: argparse.Namespace) -> int:
    """Simulate the basis and write the outputs; return 0."""
    from gabaapp.physics.basis import save_basis, simulate_basis
    from gabaapp.physics.lcmodel import write_lcmodel_basis

    sequence = sequence_from_args(args)
    out_dir: Path = args.out
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotCreateOutputError(f"cannot create --out {out_dir}: {exc}") from exc
    if args.linewidth_hz < 0:
        raise UsageError(f"--linewidth-hz must be >= 0, got {args.linewidth_hz}")
    basis = simulate_basis(sequence, tuple(args.metabolites), progress=not args.no_progress)
    save_basis(basis, out_dir / "basis.npz")
    (out_dir / "sequence.json").write_text(
        json.dumps({"sequence": sequence.to_dict(), "hash": basis.sequence_hash}, indent=1) + "\n"
    )
    if args.nifti:
        _export_nifti(basis, out_dir, args.linewidth_hz, sequence)
    if args.lcmodel:
        for cond in ("off", "on", "diff"):
            write_lcmodel_basis(
                basis,
                out_dir / "lcmodel" / f"basis_{cond}.BASIS",
                condition=cond,
                lw_hz=args.linewidth_hz,
            )
    logger.info("wrote basis %s to %s", basis.sequence_hash, out_dir)
    return 0
