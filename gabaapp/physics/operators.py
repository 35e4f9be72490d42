"""Spin operators and the strong-coupling Hamiltonian in the Zeeman product basis.

State index s of an n-spin system encodes spin k (0 = first) in bit (n - 1 - k): 0 = up
(m = +1/2), 1 = down. Every operator here is real in this basis except Fy, which is why the
engine works with real symmetric matrices wherever the RF field lies on the x axis.

Rotating-frame Hamiltonian (rad/s), ppm offsets relative to the RF carrier:
    H = sum_k 2 pi nu_k Iz_k + sum_{k<l} 2 pi J_kl (Ix_k Ix_l + Iy_k Iy_l + Iz_k Iz_l)
(Levitt, Spin Dynamics, 2nd ed., ch. 14-15). With rho(t) = exp(-iHt) rho exp(iHt), the
p = -1 coherence of a spin at offset nu oscillates as exp(+2 pi i nu t), so detecting
Tr(F+ rho) puts that spin at +nu Hz, matching gabaapp.spectra.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True, eq=False)
class SpinOperators:
    """Dense operators of an n-spin-1/2 system (dimension 2**n)."""

    n_spins: int
    m: np.ndarray  # [n, dim] m_k of each basis state
    fz: np.ndarray  # [dim] total M of each basis state (Fz is diagonal)
    fx: np.ndarray  # [dim, dim] real
    fy: np.ndarray  # [dim, dim] complex
    fplus: np.ndarray  # [dim, dim] real, F+ = sum_k I+_k
    coherence: np.ndarray  # [dim, dim] int, M_a - M_b (coherence order of element a, b)

    @property
    def dim(self) -> int:
        return 2**self.n_spins


@cache
def spin_operators(n_spins: int) -> SpinOperators:
    """Return the operators of `n_spins` coupled spins-1/2 (cached, read-only arrays)."""
    dim = 2**n_spins
    states = np.arange(dim)
    bits = (states[None, :] >> (n_spins - 1 - np.arange(n_spins))[:, None]) & 1
    m = 0.5 - bits  # [n, dim]
    fz = m.sum(axis=0)
    fplus = np.zeros((dim, dim))
    for k in range(n_spins):
        down = bits[k] == 1
        src = states[down]
        fplus[src ^ (1 << (n_spins - 1 - k)), src] = 1.0  # I+_k raises spin k
    fx = 0.5 * (fplus + fplus.T)
    fy = -0.5j * (fplus - fplus.T)
    coherence = np.rint(fz[:, None] - fz[None, :]).astype(int)
    ops = SpinOperators(n_spins, m, fz, fx, fy, fplus, coherence)
    for arr in (m, fz, fx, fy, fplus, coherence):
        arr.setflags(write=False)
    return ops


def hamiltonian_rad_s(offsets_hz: np.ndarray, j_hz: np.ndarray) -> np.ndarray:
    """Return the real symmetric rotating-frame Hamiltonian (rad/s) of a coupled group.

    `offsets_hz`: [n] chemical-shift offsets from the carrier; `j_hz`: [n, n] couplings.
    """
    offsets = np.asarray(offsets_hz, dtype=float)
    n = offsets.shape[0]
    ops = spin_operators(n)
    dim = ops.dim
    h = np.zeros((dim, dim))
    diag = 2.0 * np.pi * (offsets @ ops.m)
    states = np.arange(dim)
    for k in range(n):
        for ell in range(k + 1, n):
            j = j_hz[k, ell]
            if j == 0:
                continue
            diag = diag + 2.0 * np.pi * j * ops.m[k] * ops.m[ell]
            # Flip-flop term pi J (I+_k I-_l + I-_k I+_l) links states differing by a swap.
            differ = ops.m[k] != ops.m[ell]
            src = states[differ]
            dst = src ^ ((1 << (n - 1 - k)) | (1 << (n - 1 - ell)))
            h[dst, src] += np.pi * j
    h[states, states] = diag
    return h
