"""Basis sets: simulate, save/load (npz), cache by hash, bundled default, line broadening.

A basis holds per-metabolite edit-OFF and edit-ON FIDs at zero linewidth (gabaapp.spectra.Basis);
line shape is applied afterwards with `apply_linewidth` (Lorentzian exp(-pi lw t), paper-notes
§2.1). The cache key combines the sequence hash (every parameter + simulator version) with the
hash of every spin-system number, so editing a spin file or a parameter never reuses a stale
basis.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from gabaapp.atomic import atomic_path
from gabaapp.constants import METABOLITES
from gabaapp.errors import DataError, NoInputError, UsageError
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import load_spin_system
from gabaapp.spectra import Acquisition, Basis, stable_hash

logger = logging.getLogger(__name__)

DEFAULT_BASIS_FILE = "default_basis.npz"
_FORMAT = "gabaapp-basis-1"


def basis_hash(sequence: MegaPressSequence, metabolites: Sequence[str]) -> str:
    """Return the hash identifying a basis: sequence parameters + spin-system data."""
    spins = [load_spin_system(m).data_hash() for m in metabolites]
    return stable_hash(sequence.hash(), tuple(metabolites), spins)


def simulate_basis(
    sequence: MegaPressSequence,
    metabolites: Sequence[str] = METABOLITES,
    *,
    progress: bool = False,
) -> Basis:
    """Return the zero-linewidth OFF/ON basis of `metabolites` for `sequence`.

    For `sequence.editing == False` the ON rows equal the OFF rows (PRESS).
    `progress` shows a tqdm bar (CLI use). Unknown names raise UsageError before any work.
    """
    names = tuple(metabolites)
    if not names:
        raise UsageError("metabolites: give at least one metabolite name")
    if len(set(names)) != len(names):
        raise UsageError(f"metabolites: names repeat in {names}")
    systems = [load_spin_system(m) for m in names]  # validates every name first
    off = np.zeros((len(names), sequence.n_points), complex)
    on = np.zeros_like(off)
    iterator = range(len(names))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="simulating basis", unit="metabolite")
    for i in iterator:
        logger.debug("simulating %s", names[i])
        off[i], on[i] = simulate_spin_system(systems[i], sequence)
    return Basis(
        names=names,
        off=off,
        on=on,
        acquisition=sequence.acquisition(),
        sequence_hash=basis_hash(sequence, names),
        meta={"sequence": sequence.to_dict(), "n_protons": [s.n_protons for s in systems]},
    )


def save_basis(basis: Basis, path: str | os.PathLike, *, dtype=np.complex128) -> Path:
    """Write `basis` to an .npz file atomically (complex64 halves the size); return the path.

    The file is not compressed: noise-free complex FIDs barely compress (~2x for complex128)
    and decompression would dominate the load time (35 ms vs 1.3 ms for 16 metabolites).
    """
    path = Path(path)
    acq = basis.acquisition
    header = {
        "format": _FORMAT,
        "names": list(basis.names),
        "sequence_hash": basis.sequence_hash,
        "acquisition": {
            "f0_mhz": acq.f0_mhz,
            "dwell_s": acq.dwell_s,
            "n_points": acq.n_points,
            "te_s": acq.te_s,
            "nucleus": acq.nucleus,
            "centre_ppm": acq.centre_ppm,
        },
        "meta": basis.meta,
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            header=np.array(json.dumps(header)),
            off=basis.off.astype(dtype),
            on=basis.on.astype(dtype),
        )
    return path


def load_basis(path: str | os.PathLike) -> Basis:
    """Return the basis stored at `path` (written by `save_basis`), arrays as complex128."""
    path = Path(path)
    if not path.is_file():
        raise NoInputError(f"basis file {path} not found; build one with 'gabaapp simulate basis'")
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            off = data["off"].astype(np.complex128)
            on = data["on"].astype(np.complex128)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a gabaapp basis file ({exc}); rebuild it") from exc
    if header.get("format") != _FORMAT:
        raise DataError(f"{path} has basis format {header.get('format')!r}, expected {_FORMAT}")
    return Basis(
        names=tuple(header["names"]),
        off=off,
        on=on,
        acquisition=Acquisition(**header["acquisition"]),
        sequence_hash=header["sequence_hash"],
        meta=header.get("meta", {}),
    )


def default_cache_dir() -> Path:
    """Return $XDG_CACHE_HOME/gabaapp/basis (or ~/.cache/gabaapp/basis)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "gabaapp" / "basis"


def cached_basis(
    sequence: MegaPressSequence,
    metabolites: Sequence[str] = METABOLITES,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = False,
) -> Basis:
    """Return the basis for (`sequence`, `metabolites`), simulating only on a cache miss."""
    names = tuple(metabolites)
    key = basis_hash(sequence, names)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = directory / f"basis-{key}.npz"
    if path.is_file():
        try:
            basis = load_basis(path)
            if basis.sequence_hash == key:
                return basis
        except DataError:
            logger.warning("ignoring unreadable cached basis %s", path)
    basis = simulate_basis(sequence, names, progress=progress)
    try:
        save_basis(basis, path)
    except OSError as exc:  # a read-only cache must not stop the caller
        logger.warning("could not write basis cache %s: %s", path, exc)
    return basis


def default_basis_path() -> Path:
    """Return the path of the bundled default basis (paper preset)."""
    return Path(str(resources.files("gabaapp").joinpath("data", "basis", DEFAULT_BASIS_FILE)))


def default_basis(metabolites: Sequence[str] | None = METABOLITES) -> Basis:
    """Return the bundled default basis (paper preset, shaped pulses, 8 x 8 grid).

    By default only METABOLITES, in that order; `metabolites=None` returns every bundled
    metabolite. Inference and demos use this and never simulate.
    """
    basis = load_basis(default_basis_path())
    return basis if metabolites is None else basis.subset(tuple(metabolites))


def apply_linewidth(
    fids: np.ndarray, acquisition: Acquisition, lw_hz: float | np.ndarray
) -> np.ndarray:
    """Return `fids` (time last) multiplied by the Lorentzian decay exp(-pi lw_hz t).

    `lw_hz` is the FWHM in Hz; an array broadcasts against the leading axes of `fids`.
    """
    lw = np.asarray(lw_hz, dtype=float)
    if np.any(lw < 0):
        raise UsageError(f"lw_hz must be >= 0, got {lw_hz}")
    t = acquisition.time_axis()
    return fids * np.exp(-np.pi * lw[..., None] * t)
