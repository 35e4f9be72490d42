"""Which basis sets a model is trained on, the spectrum source built from them, and what the
model card says the model is valid for."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from gabaapp.__about__ import __version__
from gabaapp.config import SynthesisConfig
from gabaapp.constants import GAMMA_1H_MHZ_PER_T
from gabaapp.errors import GabaappError
from gabaapp.spectra import Basis
from gabaapp.training.sources import MixtureSource

logger = logging.getLogger(__name__)


def _physics_basis():
    try:
        from gabaapp.physics import basis as physics_basis
    except ImportError as err:  # the basis module lands with the physics issue
        raise GabaappError(
            "basis sets are not available in this version of gabaapp (gabaapp.physics.basis "
            f"missing: {err}); pass --basis FILE.npz once the simulator exists"
        ) from err
    return physics_basis


def resolve_bases(
    basis_files: list[str | Path] | None = None,
    sequence_presets: list[str] | None = None,
    f0s_mhz: list[float] | None = None,
    metabolites: tuple[str, ...] | None = None,
) -> list[tuple[str, Basis]]:
    """Return [(label, Basis)]: the given basis files, plus one basis per sequence preset and
    spectrometer frequency (simulated once, then cached); the bundled default basis when
    nothing is given."""
    physics_basis = _physics_basis()
    out: list[tuple[str, Basis]] = []
    for path in basis_files or []:
        out.append((Path(path).stem, physics_basis.load_basis(path)))
    if sequence_presets or f0s_mhz:
        from gabaapp.constants import METABOLITES
        from gabaapp.physics.sequence import MegaPressSequence

        for name in sequence_presets or ["paper"]:
            for f0 in f0s_mhz or [None]:
                extra = {} if f0 is None else {"f0_mhz": float(f0)}
                seq = MegaPressSequence.preset(name, **extra)
                basis = physics_basis.cached_basis(seq, tuple(metabolites or METABOLITES))
                out.append((f"{name}@{seq.f0_mhz:g}MHz", basis))
    if not out:
        out.append(("default", physics_basis.default_basis()))
    return out


def make_source(
    bases: list[tuple[str, Basis]], synthesis: SynthesisConfig, device: str
) -> tuple[Any, dict[str, Any]]:
    """Return (spectrum source, provenance for the model card): one SpectrumGenerator per
    basis, mixed within every batch when there are several."""
    from gabaapp.simulate.generator import SpectrumGenerator

    generators = [SpectrumGenerator(b, synthesis, device) for _, b in bases]
    source = generators[0] if len(generators) == 1 else MixtureSource(generators)
    try:
        from gabaapp.physics.sequence import SIMULATOR_VERSION
    except ImportError:
        SIMULATOR_VERSION = "unknown"
    f0s = sorted({round(b.acquisition.f0_mhz, 3) for _, b in bases})
    provenance = {
        "basis": {
            "sequence_hashes": [b.sequence_hash for _, b in bases],
            "sets": [
                {
                    "label": label,
                    "sequence_hash": b.sequence_hash,
                    "f0_mhz": b.acquisition.f0_mhz,
                    "metabolites": list(b.names),
                    "te_ms": None if b.acquisition.te_s is None else b.acquisition.te_s * 1e3,
                    "sequence": _jsonable(b.meta.get("sequence")),
                }
                for label, b in bases
            ],
        },
        "synthesis": _jsonable(dataclasses.asdict(synthesis)),
        "simulator_version": {"gabaapp": __version__, "physics": SIMULATOR_VERSION},
        "valid_for": {
            "sequences": [label for label, _ in bases],
            "f0_mhz": f0s,
            "field_strength_t": sorted({round(f / GAMMA_1H_MHZ_PER_T, 2) for f in f0s}),
            **_sequence_ranges([b for _, b in bases]),
        },
    }
    return source, provenance


def _sequence_ranges(bases: list[Basis]) -> dict[str, list]:
    """Return the distinct TE and editing parameters of the bases' sequences (sorted)."""
    out: dict[str, set] = {"te_ms": set()}
    for b in bases:
        if b.acquisition.te_s is not None:
            out["te_ms"].add(round(b.acquisition.te_s * 1e3, 3))
        seq = b.meta.get("sequence") or {}
        for key in ("edit_on_ppm", "edit_off_ppm", "editing_duration_ms"):
            if key in seq:
                out.setdefault(key, set()).add(seq[key])
    return {k: sorted(v) for k, v in out.items()}


def _jsonable(value: Any) -> Any:
    """Return `value` with tuples turned into lists, recursively."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
