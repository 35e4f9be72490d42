"""LCModel .BASIS export (plain text, Fortran namelists; Provencher, LCModel manual §9).

Each metabolite is written as its frequency-domain spectrum: the unshifted FFT of the FID
(zero frequency first, ISHIFT = 0), real/imaginary pairs in FMTBAS '(2E15.6)'. The time-domain
sign follows gabaapp (a line above the reference frequency at +f), which is the sign LCModel's
.RAW files use (NIfTI-MRS stores the conjugate). This writer has not been checked by running
LCModel itself; use it as a convenience export.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gabaapp.atomic import write_text_atomic
from gabaapp.errors import UsageError
from gabaapp.spectra import Basis

_CONDITIONS = ("off", "on", "diff")


def _fmt(values: np.ndarray) -> str:
    """Return real/imag pairs, two numbers per line, Fortran E15.6 style."""
    pairs = np.column_stack([values.real, values.imag])
    return "\n".join(f"{a:15.6E}{b:15.6E}" for a, b in pairs) + "\n"


def write_lcmodel_basis(
    basis: Basis,
    path: str | os.PathLike,
    *,
    condition: str = "off",
    lw_hz: float = 0.0,
    sequence_name: str = "MEGA-PRESS",
) -> Path:
    """Write one LCModel .BASIS file for edit `condition` ("off", "on" or "diff"); return path.

    `lw_hz` applies a Lorentzian line (FWHMBA in the header stays the nominal 0 Hz width of the
    simulation when `lw_hz` is 0).
    """
    if condition not in _CONDITIONS:
        raise UsageError(f"condition must be one of {_CONDITIONS}, got {condition!r}")
    acq = basis.acquisition
    fids = {"off": basis.off, "on": basis.on, "diff": basis.diff}[condition]
    t = acq.time_axis()
    fids = fids * np.exp(-np.pi * lw_hz * t)
    te_ms = 1000.0 * acq.te_s if acq.te_s is not None else 0.0
    lines = [
        " $SEQPAR",
        f" FWHMBA = {lw_hz / acq.f0_mhz:.6f},",
        f" HZPPPM = {acq.f0_mhz:.6f},",
        f" ECHOT = {te_ms:.3f},",
        f" SEQ = '{sequence_name}'",
        " $END",
        " $BASIS1",
        f" IDBASI = 'gabaapp {basis.sequence_hash} {condition.upper()}',",
        " FMTBAS = '(2E15.6)',",
        f" BADELT = {acq.dwell_s:.8E},",
        f" NDATAB = {acq.n_points}",
        " $END",
    ]
    body = ["\n".join(lines) + "\n"]
    for i, name in enumerate(basis.names):
        header = [
            " $NMUSED",
            f" FILERAW = 'gabaapp simulate basis: {name} {condition.upper()}'",
            " $END",
            " $BASIS",
            f" ID = '{name}',",
            f" METABO = '{name}',",
            " CONC = 1.,",
            " TRAMP = 1.,",
            " VOLUME = 1.,",
            " ISHIFT = 0",
            " $END",
        ]
        body.append("\n".join(header) + "\n")
        body.append(_fmt(np.fft.fft(fids[i])))
    return write_text_atomic(path, "".join(body))


def read_lcmodel_basis(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return {metabolite: FID} from a .BASIS file written by `write_lcmodel_basis`."""
    text = Path(path).read_text().splitlines()
    out: dict[str, np.ndarray] = {}
    name, numbers, in_header = None, [], False
    for line in text + [" $BASIS"]:
        stripped = line.strip()
        if stripped.startswith("$"):
            if stripped == "$BASIS" and name is not None:
                vals = np.asarray(numbers, dtype=float)
                out[name] = np.fft.ifft(vals[0::2] + 1j * vals[1::2])
                name, numbers = None, []
            in_header = stripped != "$END"
            continue
        if in_header:
            if stripped.startswith("METABO"):
                name = stripped.split("'")[1]
            continue
        if name is not None:
            numbers += [float(v) for v in stripped.split()]
    return out
