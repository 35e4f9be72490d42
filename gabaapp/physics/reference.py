"""Straightforward loop-based reference simulator (slow; for tests and the speed-up figure).

Independent of the vectorised engine in every step that could hide a mistake: operators are
built from Kronecker products of Pauli matrices, every pulse step is `scipy.linalg.expm` of the
full complex Hamiltonian, the 2D grid and the phase cycle are explicit nested loops (one full
simulation per position pair and per phase combination), and the acquisition steps rho through
time with the dwell-time propagator. Only the pulse waveforms and the sequence timing are
shared with the fast path.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from scipy.linalg import expm

from gabaapp.physics.megapress import _CYCLES, PATHWAY
from gabaapp.physics.pulses import load_pulse, pulse_bandwidth_hz
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import CoupledGroup

_SX = np.array([[0, 1], [1, 0]], complex) / 2
_SY = np.array([[0, -1j], [1j, 0]], complex) / 2
_SZ = np.array([[1, 0], [0, -1]], complex) / 2
_SP = np.array([[0, 1], [0, 0]], complex)


def _single(op: np.ndarray, k: int, n: int) -> np.ndarray:
    out = np.eye(1, dtype=complex)
    for i in range(n):
        out = np.kron(out, op if i == k else np.eye(2))
    return out


def _operators(n: int):
    ix = [_single(_SX, k, n) for k in range(n)]
    iy = [_single(_SY, k, n) for k in range(n)]
    iz = [_single(_SZ, k, n) for k in range(n)]
    ip = [_single(_SP, k, n) for k in range(n)]
    return ix, iy, iz, ip


def simulate_group_reference(
    group: CoupledGroup, sequence: MegaPressSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Return (OFF, ON) FIDs of `group` like `megapress.simulate_group`, by brute force."""
    n = group.n_spins
    ix, iy, iz, ip = _operators(n)
    fx, fy, fz, fplus = sum(ix), sum(iy), sum(iz), sum(ip)
    mz = np.real(np.diag(fz))
    order = np.rint(mz[:, None] - mz[None, :])
    nu = (np.asarray(group.shifts_ppm) - sequence.rf_centre_ppm) * sequence.f0_mhz
    j = group.j_matrix()
    h0 = sum(2 * np.pi * nu[k] * iz[k] for k in range(n))
    for a in range(n):
        for b in range(a + 1, n):
            h0 = h0 + 2 * np.pi * j[a, b] * (ix[a] @ ix[b] + iy[a] @ iy[b] + iz[a] @ iz[b])

    def free(tau_s: float) -> np.ndarray:
        return expm(-1j * h0 * tau_s)

    def shaped(name, dur_ms, steps, offset_hz, carrier_hz, phase_rad):
        dur = dur_ms / 1000.0
        pulse = load_pulse(name, dur, steps)
        dt = dur / steps
        u = np.eye(2**n, dtype=complex)
        for k in range(steps):
            t_mid = (k + 0.5) * dt - 0.5 * dur
            b1 = pulse.b1_rad_s[k] * np.exp(1j * (2 * np.pi * carrier_hz * t_mid + phase_rad))
            h = h0 + 2 * np.pi * offset_hz * fz + b1.real * fx + b1.imag * fy
            u = expm(-1j * h * dt) @ u
        return u

    # Pulses depend only on (position, phase): memoise them so the explicit loops below stay
    # affordable; every combination still runs its own full density-matrix simulation.
    @cache
    def refocus(pos_cm: float, axis: int, phase_rad: float) -> np.ndarray:
        if sequence.ideal_refocusing:
            return expm(-1j * np.pi * (np.cos(phase_rad) * fx + np.sin(phase_rad) * fy))
        dur = sequence.refocusing_duration_ms / 1000.0
        bw = pulse_bandwidth_hz(sequence.refocusing_pulse, dur, sequence.refocusing_steps)
        offset = bw / sequence.voxel_cm[axis] * pos_cm
        return shaped(
            sequence.refocusing_pulse,
            sequence.refocusing_duration_ms,
            sequence.refocusing_steps,
            offset,
            0.0,
            phase_rad,
        )

    @cache
    def edit(ppm: float, phase_rad: float) -> np.ndarray:
        carrier = (ppm - sequence.rf_centre_ppm) * sequence.f0_mhz
        return shaped(
            sequence.editing_pulse,
            sequence.editing_duration_ms,
            sequence.editing_steps,
            0.0,
            carrier,
            phase_rad,
        )

    tau = [t / 1000.0 for t in sequence.free_intervals_ms()]
    free_u = [free(t) for t in tau]
    grid = sequence.grid_cm()
    sel = sequence.coherence_selection
    if sel == "pathway":
        cycles = [((0.0,), (1.0,))] * 4
    else:
        c = _CYCLES[sel]
        cycles = [c["refocusing"], c["edit1"], c["refocusing"], c["edit2"]]
    deltas = [PATHWAY[i + 1] - PATHWAY[i] for i in range(4)]
    norm = 1.0 + 0j
    for (phases, weights), dp in zip(cycles, deltas, strict=True):
        norm *= sum(
            w * np.exp(-1j * dp * np.deg2rad(p)) for p, w in zip(phases, weights, strict=True)
        )

    def project(rho, p):
        return rho * (order == p) if sel == "pathway" else rho

    t_dwell = 1.0 / sequence.spectral_width_hz
    u_dwell = free(t_dwell)
    shift_hz = (sequence.rf_centre_ppm - sequence.centre_ppm) * sequence.f0_mhz
    times = np.arange(sequence.n_points) * t_dwell
    scale = group.weight / 2.0 ** (n - 2)

    def run(edit_ppm):
        total = np.zeros(sequence.n_points, complex)
        for x, y in itertools.product(grid, grid):
            for combo in itertools.product(*[range(len(c[0])) for c in cycles]):
                ph = [np.deg2rad(cycles[i][0][combo[i]]) for i in range(4)]
                weight = np.prod([cycles[i][1][combo[i]] for i in range(4)])
                rho = project(fx.astype(complex), PATHWAY[0])
                steps = [
                    (free_u[0], None),
                    (refocus(x, 0, ph[0]), PATHWAY[1]),
                    (free_u[1], None),
                    (edit(edit_ppm, ph[1]) if edit_ppm is not None else None, PATHWAY[2]),
                    (free_u[2], None),
                    (refocus(y, 1, ph[2]), PATHWAY[3]),
                    (free_u[3], None),
                    (edit(edit_ppm, ph[3]) if edit_ppm is not None else None, PATHWAY[4]),
                    (free_u[4], None),
                ]
                for u, p in steps:
                    if u is None:
                        continue
                    rho = u @ rho @ u.conj().T
                    if p is not None:
                        rho = project(rho, p)
                fid = np.empty(sequence.n_points, complex)
                for i in range(sequence.n_points):
                    fid[i] = np.trace(fplus @ rho)
                    rho = u_dwell @ rho @ u_dwell.conj().T
                total += weight * fid
        total /= norm * len(grid) ** 2
        return scale * total * np.exp(2j * np.pi * shift_hz * times)

    if not sequence.editing:
        fid = run(None)
        return fid, fid.copy()
    return run(sequence.edit_off_ppm), run(sequence.edit_on_ppm)
