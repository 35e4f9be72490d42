"""MEGA-PRESS / PRESS density-matrix simulation of one spin system (vectorised engine).

Physics (paper-notes §2.1; Mescher et al., NMR Biomed 1998;11:266-272 for MEGA-PRESS):
ideal 90-degree excitation; two slice-selective shaped refocusing pulses, the 1st under an x
gradient and the 2nd under a y gradient, each sampled on `grid_points` positions over
+/-`grid_extent_cm` (slice-profile-aware "2D" simulation, signals averaged over the 2D grid);
two frequency-selective editing pulses (edit ON or OFF frequency) without gradient; J and
chemical-shift evolution everywhere, including during the pulses.

Because the x position only affects the 1st refocusing pulse and the y position only the 2nd,
and everything is linear in rho, the average over the 2D grid equals averaging rho over x
right after the 1st pulse and over y right after the 2nd: 2 x 8 pulse propagations instead of
64 full simulations.

Coherence selection (`sequence.coherence_selection`):
* "pathway": keep only total coherence order -1 -> +1 -> +1 -> -1 -> -1 after excitation,
  refocusing 1, editing 1, refocusing 2, editing 2 (what ideal crusher gradients select;
  detection of p = -1). Default.
* "fida_cycle": FID-A's phase cycle (paper-notes §2.1): refocusing pulses {0, 90} deg with
  signs (+, -) each, 1st editing pulse {0, 90}, 2nd {0, 90, 180, 270}, all added: 32 steps.
* "full_cycle": 4-step cycles: refocusing {0, 90, 180, 270} with signs (+, -, +, -) (selects
  Delta p = +/-2 mod 4) and editing {0, 90, 180, 270} added (Delta p = 0 mod 4).
A product phase cycle equals applying each pulse's cycle to rho in turn (linearity), so a
32-step cycle costs 2 + 2 + 2 + 4 pulse applications. Cycles are normalised by the weight of
the wanted pathway, so every mode gives the same amplitude for a clean echo.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from gabaapp.physics.engine import FreeEvolution, ideal_pulse, phase_shift, pulse_propagators
from gabaapp.physics.operators import SpinOperators, hamiltonian_rad_s, spin_operators
from gabaapp.physics.pulses import load_pulse, pulse_bandwidth_hz
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import CoupledGroup, SpinSystem

# Wanted total coherence order after: excitation, refoc 1, edit 1, refoc 2, edit 2.
PATHWAY = (-1, +1, +1, -1, -1)

_CYCLES = {
    "fida_cycle": {
        "refocusing": ((0.0, 90.0), (1.0, -1.0)),
        "edit1": ((0.0, 90.0), (1.0, 1.0)),
        "edit2": ((0.0, 90.0, 180.0, 270.0), (1.0, 1.0, 1.0, 1.0)),
    },
    "full_cycle": {
        "refocusing": ((0.0, 90.0, 180.0, 270.0), (1.0, -1.0, 1.0, -1.0)),
        "edit1": ((0.0, 90.0, 180.0, 270.0), (1.0, 1.0, 1.0, 1.0)),
        "edit2": ((0.0, 90.0, 180.0, 270.0), (1.0, 1.0, 1.0, 1.0)),
    },
}


def phase_cycle(selection: str, role: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return (phases_deg, weights) of the pulse `role` ("refocusing", "edit1", "edit2")."""
    return _CYCLES[selection][role]


def cycle_gain(phases_deg, weights, delta_p: int) -> complex:
    """Return sum_k w_k exp(-i delta_p phi_k): what a phase cycle does to pathway delta_p."""
    phi = np.deg2rad(np.asarray(phases_deg))
    return complex(np.sum(np.asarray(weights) * np.exp(-1j * delta_p * phi)))


class _PulseStage:
    """A pulse applied to rho: average over positions, then pathway or phase-cycle selection."""

    def __init__(
        self,
        props: np.ndarray,
        ops: SpinOperators,
        selection: str,
        role: str,
        p_before: int,
        p_after: int,
    ) -> None:
        self.ops = ops
        self.p_after = p_after
        if selection == "pathway":
            self.props = props
            self.weights = np.ones(props.shape[0]) / props.shape[0]
            self.mask = ops.coherence == p_after
        else:
            phases, weights = phase_cycle(selection, role)
            gain = cycle_gain(phases, weights, p_after - p_before)
            self.props = np.concatenate(
                [phase_shift(props, ops, np.deg2rad(ph)) for ph in phases], axis=0
            )
            self.weights = np.repeat(np.asarray(weights) / gain, props.shape[0]) / props.shape[0]
            self.mask = None

    def apply(self, rho: np.ndarray) -> np.ndarray:
        u = self.props
        out = np.einsum("p,pab->ab", self.weights, u @ rho @ np.swapaxes(u.conj(), -1, -2))
        return out * self.mask if self.mask is not None else out


def _offsets_hz(group: CoupledGroup, sequence: MegaPressSequence) -> np.ndarray:
    return (np.asarray(group.shifts_ppm) - sequence.rf_centre_ppm) * sequence.f0_mhz


def _refocusing_props(h0, ops, sequence: MegaPressSequence, axis: int) -> np.ndarray:
    """Return the refocusing propagators at every grid position along `axis`, [P, dim, dim]."""
    if sequence.ideal_refocusing:
        return ideal_pulse(ops, np.pi)[None]
    duration_s = sequence.refocusing_duration_ms / 1000.0
    pulse = load_pulse(sequence.refocusing_pulse, duration_s, sequence.refocusing_steps)
    bw_hz = pulse_bandwidth_hz(sequence.refocusing_pulse, duration_s, sequence.refocusing_steps)
    # Gradient chosen so the refocusing bandwidth spans the voxel: offset(x) = BW/voxel * x.
    hz_per_cm = bw_hz / sequence.voxel_cm[axis]
    offsets = hz_per_cm * np.asarray(sequence.grid_cm())
    return pulse_propagators(h0, ops, pulse.b1_rad_s, duration_s, offsets)


def _editing_props(h0, ops, sequence: MegaPressSequence, edit_ppm: float) -> np.ndarray:
    duration_s = sequence.editing_duration_ms / 1000.0
    pulse = load_pulse(sequence.editing_pulse, duration_s, sequence.editing_steps)
    carrier_hz = (edit_ppm - sequence.rf_centre_ppm) * sequence.f0_mhz
    return pulse_propagators(h0, ops, pulse.b1_rad_s, duration_s, np.zeros(1), carrier_hz)


def simulate_group(
    group: CoupledGroup, sequence: MegaPressSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Return (edit-OFF FID, edit-ON FID) of one coupled group, each [n_points] complex.

    Amplitude: one proton refocused perfectly gives 1 at t = 0 (times `group.weight`).
    For `sequence.editing == False` both FIDs are the same PRESS FID.
    """
    ops = spin_operators(group.n_spins)
    h0 = hamiltonian_rad_s(_offsets_hz(group, sequence), group.j_matrix())
    free = FreeEvolution(h0)
    tau_s = [t / 1000.0 for t in sequence.free_intervals_ms()]
    sel = sequence.coherence_selection

    ref1 = _PulseStage(
        _refocusing_props(h0, ops, sequence, 0), ops, sel, "refocusing", PATHWAY[0], PATHWAY[1]
    )
    ref2_props = (
        ref1.props[: ref1.props.shape[0]]
        if sequence.voxel_cm[0] == sequence.voxel_cm[1] and sel == "pathway"
        else _refocusing_props(h0, ops, sequence, 1)
    )
    ref2 = _PulseStage(ref2_props, ops, sel, "refocusing", PATHWAY[2], PATHWAY[3])

    rho = ops.fx.astype(complex)  # after the ideal 90-degree excitation (about y)
    if sel == "pathway":
        rho = rho * (ops.coherence == PATHWAY[0])
    rho = free.evolve(rho, tau_s[0])
    rho = ref1.apply(rho)
    rho = free.evolve(rho, tau_s[1])

    t_s = np.arange(sequence.n_points) / sequence.spectral_width_hz
    shift_hz = (sequence.rf_centre_ppm - sequence.centre_ppm) * sequence.f0_mhz
    # Normalise so one proton gives amplitude 1: Tr(F+ Fx) = n 2**(n-2).
    scale = group.weight / 2.0 ** (group.n_spins - 2)

    def finish(edit_ppm: float | None) -> np.ndarray:
        r = rho
        if edit_ppm is not None:
            edit = _editing_props(h0, ops, sequence, edit_ppm)
            edit1 = _PulseStage(edit, ops, sel, "edit1", PATHWAY[1], PATHWAY[2])
            edit2 = _PulseStage(edit, ops, sel, "edit2", PATHWAY[3], PATHWAY[4])
        r = edit1.apply(r) if edit_ppm is not None else r
        r = free.evolve(r, tau_s[2])
        r = ref2.apply(r)
        r = free.evolve(r, tau_s[3])
        r = edit2.apply(r) if edit_ppm is not None else r
        r = free.evolve(r, tau_s[4])
        return scale * free.acquire(r, ops.fplus, t_s, shift_hz)

    if not sequence.editing:
        fid = finish(None)
        return fid, fid.copy()
    return finish(sequence.edit_off_ppm), finish(sequence.edit_on_ppm)


def simulate_spin_system(
    system: SpinSystem, sequence: MegaPressSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Return (edit-OFF FID, edit-ON FID) of a molecule: the sum over its coupled groups."""
    off = np.zeros(sequence.n_points, complex)
    on = np.zeros(sequence.n_points, complex)
    # Many small matrices: BLAS threads only add contention (measured 10-50x slower with
    # 2 busy cores), so the engine runs single-threaded BLAS.
    with threadpool_limits(1, user_api="blas"):
        for group in system.groups:
            g_off, g_on = simulate_group(group, sequence)
            off += g_off
            on += g_on
    return off, on
