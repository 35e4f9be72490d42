"""RF pulse shapes: bundled waveforms (JSON package data) and analytic Gaussian / sinc shapes.

A `Pulse` is a piecewise-constant complex B1 waveform in rad/s, calibrated so that an
on-resonance isolated spin is rotated by the nominal flip angle. For real (0/180 degree phase)
shapes about one axis the on-resonance rotation angle is exactly sum(omega1 * dt), which fixes
the calibration without a Bloch simulation.

Bundled shapes: `mao` (FID-A's Mao-type refocusing pulse mao_400_4, BSD-3-Clause, J. Near) and
`fida_edit` (FID-A's MEGA editing pulse). Analytic: `gaussian` (truncated at 1 % of the peak)
and `sinc` (Hann-windowed sinc with 4 zero crossings, time-bandwidth ~6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from gabaapp.errors import UsageError

ANALYTIC_SHAPES = ("gaussian", "sinc")


@dataclass(frozen=True, eq=False)
class Pulse:
    """A calibrated shaped pulse: complex B1 samples in rad/s of duration `duration_s`."""

    name: str
    b1_rad_s: np.ndarray  # [n_steps] complex, omega1 * exp(i phase)
    duration_s: float

    @property
    def n_steps(self) -> int:
        return int(self.b1_rad_s.shape[0])

    @property
    def dt_s(self) -> float:
        return self.duration_s / self.n_steps

    @property
    def is_real(self) -> bool:
        """Return True when every sample lies on the +/-x axis (phase 0 or 180 degrees)."""
        return bool(np.all(np.abs(self.b1_rad_s.imag) <= 1e-12 * np.abs(self.b1_rad_s).max()))


def _pulse_dir():
    return resources.files("gabaapp").joinpath("data", "pulses")


def available_pulses() -> tuple[str, ...]:
    """Return the names of bundled and analytic pulse shapes."""
    files = [p.name[:-5] for p in _pulse_dir().iterdir() if p.name.endswith(".json")]
    return tuple(sorted(files)) + ANALYTIC_SHAPES


@cache
def _shape_samples(name: str) -> np.ndarray:
    """Return the complex, unnormalised waveform of shape `name` (amplitude x exp(i phase))."""
    if name == "gaussian":
        # exp(-t^2 / (2 s^2)) truncated where it falls to 1 % of the peak.
        t = np.linspace(-1.0, 1.0, 256)
        sigma = 1.0 / np.sqrt(2.0 * np.log(100.0))
        return np.exp(-(t**2) / (2.0 * sigma**2)).astype(complex)
    if name == "sinc":
        t = np.linspace(-1.0, 1.0, 256)
        lobes = 3.0  # zero crossings at t = +/-1/3, +/-2/3 (4 inside the pulse)
        return (np.sinc(lobes * t) * 0.5 * (1.0 + np.cos(np.pi * t))).astype(complex)
    path = _pulse_dir().joinpath(f"{name}.json")
    if not path.is_file():
        raise UsageError(
            f"unknown pulse shape {name!r}; choose from {', '.join(available_pulses())}"
        )
    data = json.loads(path.read_text())
    amp = np.asarray(data["amplitude"], dtype=float)
    phase = np.asarray(data["phase_rad"], dtype=float)
    samples = amp * np.exp(1j * phase)
    # Snap 0/pi phases to the real axis exactly (file phases carry ~1e-7 rad rounding).
    if np.all(np.isclose(np.mod(phase + 1e-6, np.pi), 1e-6, atol=1e-5)):
        samples = np.sign(np.cos(phase)) * amp + 0j
    return samples


def _resample(samples: np.ndarray, n_steps: int) -> np.ndarray:
    """Return `samples` linearly interpolated to `n_steps` points over the same duration."""
    if n_steps == samples.shape[0]:
        return samples.copy()
    src = (np.arange(samples.shape[0]) + 0.5) / samples.shape[0]
    dst = (np.arange(n_steps) + 0.5) / n_steps
    return np.interp(dst, src, samples.real) + 1j * np.interp(dst, src, samples.imag)


@cache
def load_pulse(name: str, duration_s: float, n_steps: int, flip_deg: float = 180.0) -> Pulse:
    """Return pulse `name` resampled to `n_steps` and calibrated to `flip_deg` on resonance.

    Raises UsageError for an unknown name or non-positive duration / step count.
    """
    if not duration_s > 0:
        raise UsageError(f"pulse {name!r}: duration must be > 0 s, got {duration_s}")
    if n_steps < 1:
        raise UsageError(f"pulse {name!r}: n_steps must be >= 1, got {n_steps}")
    samples = _resample(_shape_samples(name), n_steps)
    dt = duration_s / n_steps
    # On resonance every step rotates about an axis in the xy plane; for real shapes the
    # rotations commute and the flip angle is |sum(omega1) dt|. For complex shapes this sets
    # the small-tip-angle area, which the nominal waveforms (all real here) never need.
    area = abs(samples.sum()) * dt
    if area == 0:
        raise UsageError(f"pulse {name!r} has zero area and cannot be calibrated")
    b1 = samples * (np.deg2rad(flip_deg) / area)
    b1.setflags(write=False)
    return Pulse(name=name, b1_rad_s=b1, duration_s=duration_s)


def refocusing_profile(pulse: Pulse, offsets_hz: np.ndarray) -> np.ndarray:
    """Return the refocusing efficiency |beta|^2 of `pulse` for an isolated spin at each offset.

    |beta|^2 = (1 - Mz)/2 for Mz after the pulse starting from Mz = 1, so 1 means perfect
    inversion/refocusing and 0 means none (Cayley-Klein parameters, Pauly et al., IEEE TMI 1991).
    """
    offsets = np.asarray(offsets_hz, dtype=float)
    dt = pulse.dt_s
    # Spinor propagator per step: exp(-i dt (w1x sx + w1y sy + dw sz)), s = Pauli/2.
    wx = pulse.b1_rad_s.real[None, :]
    wy = pulse.b1_rad_s.imag[None, :]
    wz = 2.0 * np.pi * offsets[:, None] * np.ones_like(wx)
    norm = np.sqrt(wx**2 + wy**2 + wz**2)
    half = 0.5 * norm * dt
    with np.errstate(invalid="ignore", divide="ignore"):
        nx, ny, nz = (np.where(norm > 0, w / norm, 0.0) for w in (wx, wy, wz))
    c, s = np.cos(half), np.sin(half)
    alpha = np.ones(offsets.shape, complex)
    beta = np.zeros(offsets.shape, complex)
    for k in range(pulse.n_steps):
        a_k = c[:, k] - 1j * nz[:, k] * s[:, k]
        b_k = -1j * (nx[:, k] + 1j * ny[:, k]) * s[:, k]
        alpha, beta = a_k * alpha - np.conj(b_k) * beta, b_k * alpha + np.conj(a_k) * beta
    return np.abs(beta) ** 2


def refocusing_bandwidth_hz(pulse: Pulse) -> float:
    """Return the full width (Hz) where the refocusing efficiency |beta|^2 exceeds 0.5.

    This is the inversion bandwidth (Mz < 0) that sets the slice-selection gradient.
    """
    span = 20.0 / pulse.duration_s  # wide enough for time-bandwidth products up to ~20
    offsets = np.linspace(-span, span, 8001)
    prof = refocusing_profile(pulse, offsets) - 0.5
    above = np.flatnonzero(prof > 0)
    if above.size == 0:
        raise UsageError(f"pulse {pulse.name!r} never refocuses; check its shape and flip angle")
    lo, hi = above[0], above[-1]

    def crossing(i: int, j: int) -> float:
        return offsets[i] + (offsets[j] - offsets[i]) * prof[i] / (prof[i] - prof[j])

    left = crossing(lo - 1, lo) if lo > 0 else offsets[0]
    right = crossing(hi, hi + 1) if hi + 1 < offsets.size else offsets[-1]
    return float(right - left)


@cache
def pulse_bandwidth_hz(name: str, duration_s: float, n_steps: int) -> float:
    """Return `refocusing_bandwidth_hz` of the 180-degree pulse `name` (cached)."""
    return refocusing_bandwidth_hz(load_pulse(name, duration_s, n_steps))
