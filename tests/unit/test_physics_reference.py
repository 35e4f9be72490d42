"""Vectorised engine vs the loop-based reference; phase cycling vs pathway selection."""

from __future__ import annotations

import numpy as np
import pytest

from gabaapp.physics.megapress import simulate_group
from gabaapp.physics.reference import simulate_group_reference
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import CoupledGroup

AX = CoupledGroup("AX", (1.95, 3.0), ((0.0, 7.3), (7.3, 0.0)))
ABX = CoupledGroup(
    "ABX", (1.9, 2.3, 3.0), ((0.0, -15.0, 7.3), (-15.0, 0.0, 6.5), (7.3, 6.5, 0.0)), weight=2.0
)
SMALL = {"n_points": 48, "grid_points": 2, "refocusing_steps": 10, "editing_steps": 12}


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("group", [AX, ABX], ids=["AX", "ABX"])
def test_vectorised_matches_loop_reference_pathway(group):
    seq = MegaPressSequence(**SMALL)
    for fast, slow in zip(
        simulate_group(group, seq), simulate_group_reference(group, seq), strict=True
    ):
        assert _rel(fast, slow) < 1e-8


def test_vectorised_matches_explicit_32_step_fida_cycle():
    # The reference runs all 2 x 2 x 2 x 4 phase combinations at every position pair; the
    # engine applies each pulse's cycle to rho in turn. Linearity says they are equal.
    seq = MegaPressSequence(**SMALL, coherence_selection="fida_cycle")
    for fast, slow in zip(
        simulate_group(ABX, seq), simulate_group_reference(ABX, seq), strict=True
    ):
        assert _rel(fast, slow) < 1e-8


def test_pathway_selection_equals_explicit_complete_phase_cycle():
    # 256-step explicit cycle (4 phases per pulse) run by the loop reference, ideal
    # refocusing so it stays quick; for two spins it selects exactly -1 -> +1 -> +1 -> -1 -> -1.
    seq = MegaPressSequence(n_points=8, ideal_refocusing=True, editing_steps=4)
    cycled = simulate_group_reference(AX, seq.replace(coherence_selection="full_cycle"))
    for a, b in zip(simulate_group(AX, seq), cycled, strict=True):
        assert _rel(a, b) < 1e-8


def test_pathway_equals_complete_cycle_with_shaped_pulses_on_grid():
    seq = MegaPressSequence(n_points=256)
    a = simulate_group(AX, seq)
    b = simulate_group(AX, seq.replace(coherence_selection="full_cycle"))
    for x, y in zip(a, b, strict=True):
        assert _rel(x, y) < 1e-10
