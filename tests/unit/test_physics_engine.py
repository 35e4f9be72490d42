"""Pulses and the vectorised propagation primitives against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from gabaapp.errors import UsageError
from gabaapp.physics.engine import chain_product, ideal_pulse, phase_shift, pulse_propagators
from gabaapp.physics.operators import hamiltonian_rad_s, spin_operators
from gabaapp.physics.pulses import (
    load_pulse,
    pulse_bandwidth_hz,
    refocusing_profile,
)


@pytest.mark.parametrize(
    ("name", "dur_s"), [("mao", 5e-3), ("fida_edit", 20e-3), ("gaussian", 20e-3), ("sinc", 5e-3)]
)
def test_pulses_are_calibrated_180s(name, dur_s):
    pulse = load_pulse(name, dur_s, 100)
    assert refocusing_profile(pulse, np.array([0.0]))[0] == pytest.approx(1.0, abs=1e-9)
    # far off resonance nothing happens
    assert refocusing_profile(pulse, np.array([50.0 / dur_s]))[0] < 0.01


def test_mao_bandwidth_matches_its_header_time_bandwidth_product():
    # The .pta header says "experimentally determined BWTP 6.000": 6 / 5 ms = 1200 Hz.
    bw = pulse_bandwidth_hz("mao", 5e-3, 100)
    assert bw == pytest.approx(1200.0, rel=0.06)
    # and the edit pulse inverts ~60 Hz (0.49 ppm at 123 MHz), paper-notes §2.1
    assert pulse_bandwidth_hz("fida_edit", 20e-3, 99) == pytest.approx(60.0, rel=0.1)


def test_unknown_pulse_raises_usage_error():
    with pytest.raises(UsageError, match="unknown pulse"):
        load_pulse("nope", 5e-3, 10)


def test_refocusing_profile_matches_spin_half_expm():
    pulse = load_pulse("mao", 5e-3, 40)
    ops = spin_operators(1)
    for off in (0.0, 300.0, 650.0):
        u = np.eye(2, dtype=complex)
        for b1 in pulse.b1_rad_s:
            h = 2 * np.pi * off * np.diag(ops.fz) + b1.real * ops.fx + b1.imag * ops.fy
            u = expm(-1j * h * pulse.dt_s) @ u
        mz = np.real(np.trace(u @ np.diag(ops.fz) @ u.conj().T @ np.diag(ops.fz)) * 2)
        assert refocusing_profile(pulse, np.array([off]))[0] == pytest.approx(
            (1 - mz) / 2, abs=1e-10
        )


def test_chain_product_is_time_ordered():
    rng = np.random.default_rng(1)
    steps = rng.normal(size=(7, 4, 4)) + 1j * rng.normal(size=(7, 4, 4))
    expected = np.eye(4)
    for s in steps:
        expected = s @ expected
    np.testing.assert_allclose(chain_product(steps), expected, rtol=1e-12, atol=1e-12)


def test_pulse_propagator_equals_stepwise_expm_and_phase_shift():
    group_j = np.array([[0, 7.0], [7.0, 0]])
    h0 = hamiltonian_rad_s(np.array([-120.0, 90.0]), group_j)
    ops = spin_operators(2)
    pulse = load_pulse("fida_edit", 20e-3, 30)
    (u,) = pulse_propagators(h0, ops, pulse.b1_rad_s, 20e-3, np.zeros(1), carrier_offset_hz=-135.0)
    dt = 20e-3 / 30
    phi = np.deg2rad(90.0)
    ref = np.eye(4, dtype=complex)
    ref_phased = np.eye(4, dtype=complex)
    for k, b1 in enumerate(pulse.b1_rad_s):
        ramp = np.exp(2j * np.pi * -135.0 * ((k + 0.5) * dt - 10e-3))
        for target, extra in ((ref, 1.0), (ref_phased, np.exp(1j * phi))):
            b = b1 * ramp * extra
            h = h0 + b.real * ops.fx + b.imag * ops.fy
            target[:] = expm(-1j * h * dt) @ target
    np.testing.assert_allclose(u, ref, atol=1e-10)
    np.testing.assert_allclose(phase_shift(u, ops, phi), ref_phased, atol=1e-10)
    np.testing.assert_allclose(u @ u.conj().T, np.eye(4), atol=1e-10)


def test_ideal_180x_turns_minus_one_into_plus_one_coherence():
    ops = spin_operators(3)
    u = ideal_pulse(ops, np.pi)
    fminus = ops.fplus.T
    np.testing.assert_allclose(u @ fminus @ u.conj().T, ops.fplus, atol=1e-12)
