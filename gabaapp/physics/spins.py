"""Spin systems of brain metabolites, read from JSON package data (`gabaapp/data/spins`).

A molecule is a list of sub-systems (e.g. NAA acetyl + aspartyl) that do not couple to each
other; each sub-system lists protons (chemical shift in ppm, optional count `n` of equivalent
protons) and the non-zero scalar couplings in Hz. Values: Govindaraju, Young & Maudsley,
NMR Biomed 2000;13:129-153, and for GABA the 6-spin model with geminal couplings of
Kaiser et al., J Magn Reson 2008 / Near et al., Magn Reson Med 2013 (the references travel in
each file).

For simulation, every sub-system is split into its connected coupling components: parts that
share no coupling evolve independently, so their signals add exactly. Uncoupled single protons
of equal shift (methyl singlets) are simulated once and weighted by their count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from gabaapp.errors import DataError, UsageError
from gabaapp.spectra import stable_hash

_SPIN_PACKAGE = "gabaapp"
_SPIN_DIR = ("data", "spins")


@dataclass(frozen=True)
class CoupledGroup:
    """Protons that are (possibly) coupled: shifts in ppm, symmetric J matrix in Hz.

    `weight` multiplies the simulated signal (sub-system scale x number of identical copies).
    """

    label: str
    shifts_ppm: tuple[float, ...]
    j_hz: tuple[tuple[float, ...], ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        j = np.asarray(self.j_hz, dtype=float)
        n = len(self.shifts_ppm)
        if n < 1 or j.shape != (n, n):
            raise DataError(f"spin group {self.label!r}: J matrix must be {n}x{n}, got {j.shape}")
        if not (np.all(np.isfinite(j)) and np.all(np.isfinite(self.shifts_ppm))):
            raise DataError(f"spin group {self.label!r}: shifts and couplings must be finite")
        if not np.allclose(j, j.T, atol=1e-12) or np.any(np.diag(j) != 0):
            raise DataError(
                f"spin group {self.label!r}: inconsistent couplings, the J matrix must be "
                "symmetric with a zero diagonal"
            )
        if not self.weight > 0:
            raise DataError(f"spin group {self.label!r}: weight must be > 0")

    @property
    def n_spins(self) -> int:
        return len(self.shifts_ppm)

    def j_matrix(self) -> np.ndarray:
        """Return the coupling matrix in Hz as an [n, n] float array."""
        return np.asarray(self.j_hz, dtype=float)


@dataclass(frozen=True)
class SpinSystem:
    """One molecule: its name, literature references and independent coupled groups."""

    name: str
    full_name: str
    references: tuple[str, ...]
    groups: tuple[CoupledGroup, ...]
    n_protons: float

    def data_hash(self) -> str:
        """Return a stable hash of every number that enters the simulation."""
        return stable_hash(
            self.name, [(g.shifts_ppm, g.j_hz, round(g.weight, 12)) for g in self.groups]
        )


def _expand_subsystem(sub: dict, where: str) -> tuple[list[str], list[float], np.ndarray]:
    """Return labels, shifts and J matrix of a sub-system with `n`-fold protons expanded."""
    labels: list[str] = []
    shifts: list[float] = []
    owner: dict[str, list[int]] = {}
    for spin in sub.get("spins", []):
        label, n = spin.get("label"), spin.get("n", 1)
        if label in owner:
            raise DataError(f"{where}: spin label {label!r} appears twice")
        if not isinstance(n, int) or n < 1:
            raise DataError(f"{where}: spin {label!r} needs an integer count n >= 1, got {n!r}")
        ppm = float(spin.get("ppm", np.nan))
        if not np.isfinite(ppm):
            raise DataError(f"{where}: spin {label!r} needs a finite 'ppm'")
        owner[label] = list(range(len(labels), len(labels) + n))
        labels += [label] * n
        shifts += [ppm] * n
    if not labels:
        raise DataError(f"{where}: sub-system has no spins")
    j = np.zeros((len(labels), len(labels)))
    seen: dict[tuple[str, str], float] = {}
    for entry in sub.get("couplings", []):
        if len(entry) != 3:
            raise DataError(f"{where}: coupling {entry!r} must be [label_a, label_b, J_Hz]")
        a, b, value = entry[0], entry[1], float(entry[2])
        for lab in (a, b):
            if lab not in owner:
                raise DataError(
                    f"{where}: inconsistent couplings, coupling {a}-{b} names unknown spin {lab!r}"
                )
        if a == b:
            raise DataError(f"{where}: inconsistent couplings, spin {a!r} coupled to itself")
        key = tuple(sorted((a, b)))
        if key in seen and seen[key] != value:
            raise DataError(
                f"{where}: inconsistent couplings, {a}-{b} given as {seen[key]} and {value} Hz"
            )
        if not np.isfinite(value):
            raise DataError(f"{where}: coupling {a}-{b} must be finite")
        seen[key] = value
        for i in owner[a]:
            for k in owner[b]:
                j[i, k] = j[k, i] = value
    return labels, shifts, j


def _components(j: np.ndarray) -> list[list[int]]:
    """Return the connected components (lists of spin indices) of the coupling graph."""
    n = j.shape[0]
    todo, comps = set(range(n)), []
    while todo:
        stack, comp = [min(todo)], []
        todo.discard(stack[0])
        while stack:
            i = stack.pop()
            comp.append(i)
            for k in np.flatnonzero(j[i]):
                if int(k) in todo:
                    todo.discard(int(k))
                    stack.append(int(k))
        comps.append(sorted(comp))
    return comps


def spin_system_from_dict(data: dict, where: str = "spin system") -> SpinSystem:
    """Return a validated SpinSystem from its JSON dictionary; DataError names the problem."""
    name = data.get("name")
    if not name:
        raise DataError(f"{where}: missing 'name'")
    subs = data.get("subsystems")
    if not subs:
        raise DataError(f"{where}: missing 'subsystems'")
    singlets: dict[float, float] = {}
    groups: list[CoupledGroup] = []
    n_protons = 0.0
    for sub in subs:
        scale = float(sub.get("scale", 1.0))
        if not scale > 0:
            raise DataError(f"{where}: sub-system {sub.get('label')!r} needs scale > 0")
        label = sub.get("label", name)
        _, shifts, j = _expand_subsystem(sub, f"{where} / {label}")
        n_protons += scale * len(shifts)
        for comp in _components(j):
            if len(comp) == 1:
                ppm = shifts[comp[0]]
                singlets[ppm] = singlets.get(ppm, 0.0) + scale
                continue
            sub_j = j[np.ix_(comp, comp)]
            groups.append(
                CoupledGroup(
                    label=label,
                    shifts_ppm=tuple(shifts[i] for i in comp),
                    j_hz=tuple(tuple(float(v) for v in row) for row in sub_j),
                    weight=scale,
                )
            )
    for ppm, count in sorted(singlets.items()):
        groups.append(CoupledGroup(f"{name}_{ppm:g}ppm", (ppm,), ((0.0,),), weight=count))
    return SpinSystem(
        name=name,
        full_name=data.get("full_name", name),
        references=tuple(data.get("references", ())),
        groups=tuple(groups),
        n_protons=n_protons,
    )


def _spin_dir():
    return resources.files(_SPIN_PACKAGE).joinpath(*_SPIN_DIR)


def available_metabolites() -> tuple[str, ...]:
    """Return the names of the bundled spin systems, sorted case-insensitively."""
    names = [p.name[:-5] for p in _spin_dir().iterdir() if p.name.endswith(".json")]
    return tuple(sorted(names, key=str.lower))


@cache
def load_spin_system(name: str) -> SpinSystem:
    """Return the bundled spin system `name` (e.g. "GABA"); UsageError for unknown names."""
    available = available_metabolites()
    if name not in available:
        raise UsageError(f"unknown metabolite {name!r}; choose from {', '.join(available)}")
    path = _spin_dir().joinpath(f"{name}.json")
    return spin_system_from_dict(json.loads(path.read_text()), where=f"spins/{name}.json")
