"""Synthetic multi-coil MEGA-PRESS transients with KNOWN drift, phase, corruption (test helper).

Other preproc tests and benchmarks/bench_preproc_*.py import `make_scan`; the tests at the
bottom check the generator itself against its own definitions.

Lines: Lorentzians (ppm, amplitude, FWHM Hz) for NAA 2.01, Cr 3.03 / 3.93, Cho 3.20 in both
conditions; edit-ON adds a GABA-like doublet at 2.96/3.06 ppm and Glx at 3.75 ppm (the edited
signals of MEGA-PRESS) and lowers NAA by 10 % (partial saturation by the 1.9 ppm pulse).
Per-transient SNR: NAA peak height / noise SD of the spectrum (fid_to_spectrum scale) of ONE
coil-combined transient with unit-norm sensitivities, the definition gabaapp.preproc.qc uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME
from gabaapp.spectra import Acquisition, FIDs, fid_to_spectrum

ACQ = Acquisition(f0_mhz=123.23, dwell_s=0.5e-3, n_points=2048, te_s=0.068)
COMMON = ((2.01, 1.0, 6.0), (3.03, 0.8, 6.0), (3.20, 0.6, 6.0), (3.93, 0.5, 8.0))
EDITED = ((2.96, 0.08, 8.0), (3.06, 0.08, 8.0), (3.75, 0.08, 12.0))


def lines_fid(acq: Acquisition, lines, scale: float = 1.0) -> np.ndarray:
    """Return the FID [n_points] of Lorentzian lines (ppm, amplitude, FWHM Hz)."""
    t = acq.time_axis()
    out = np.zeros(acq.n_points, complex)
    for ppm, amp, lw in lines:
        out += (
            scale
            * amp
            * np.exp(2j * np.pi * (ppm - acq.centre_ppm) * acq.f0_mhz * t - np.pi * lw * t)
        )
    return out


def clean_off_on(acq: Acquisition = ACQ) -> tuple[np.ndarray, np.ndarray]:
    """Return noise-free (off, on) FIDs."""
    off = lines_fid(acq, COMMON)
    on = lines_fid(acq, ((2.01, 0.9, 6.0),) + COMMON[1:] + EDITED)
    return off, on


@dataclass
class Scan:
    metab: FIDs  # [coil, dyn, edit, time]
    water: FIDs  # [coil, dyn_w, time]
    drift_hz: np.ndarray  # [dyn, edit] injected frequency offset
    phase_rad: np.ndarray  # [dyn, edit] injected phase
    corrupted: np.ndarray  # [dyn, edit] bool
    sensitivities: np.ndarray  # [coil]
    noise_sd_time: float  # per-coil time-domain noise SD (before correlation)


def make_scan(
    rng: np.random.Generator,
    *,
    n_coils: int = 8,
    n_dyn: int = 64,
    acq: Acquisition = ACQ,
    snr: float = 30.0,
    drift_step_hz: float = 0.4,
    phase_sd_deg: float = 10.0,
    n_corrupted: int = 0,
    water_amplitude: float = 5.0,
    coil_correlation: float = 0.3,
    off_on: tuple[np.ndarray, np.ndarray] | None = None,
    n_water: int = 2,
) -> Scan:
    """Return a synthetic MEGA-PRESS scan with a random-walk drift of `drift_step_hz` per
    transient, Gaussian phase jitter, correlated coil noise and `n_corrupted` corrupted
    transients (signal loss + broadening, or a spurious broad line in 1.8-4.2 ppm)."""
    off, on = clean_off_on(acq) if off_on is None else off_on
    t = acq.time_axis()
    resid = water_amplitude * np.exp(
        2j * np.pi * (4.68 - acq.centre_ppm) * acq.f0_mhz * t - np.pi * 15 * t
    )
    base = np.stack([off + resid, on + resid])  # [edit, time]
    n_tr = n_dyn * 2
    drift = np.cumsum(rng.normal(0, drift_step_hz, n_tr)).reshape(n_dyn, 2)
    drift -= drift.mean()
    phase = np.radians(rng.normal(0, phase_sd_deg, (n_dyn, 2)))
    signal = base[None] * np.exp(1j * (2 * np.pi * drift[..., None] * t + phase[..., None]))
    corrupted = np.zeros((n_dyn, 2), bool)
    if n_corrupted:
        flat = rng.choice(n_tr, n_corrupted, replace=False)
        corrupted.reshape(-1)[flat] = True
        for k, (d, e) in enumerate(zip(*np.nonzero(corrupted), strict=True)):
            if k % 2 == 0:  # motion: signal loss and line broadening
                signal[d, e] = signal[d, e] * 0.6 * np.exp(-np.pi * 8 * t)
            else:  # spurious broad signal (e.g. lipid/out-of-voxel echo) in the band
                ppm = rng.uniform(2.2, 3.8)
                signal[d, e] += 0.8 * np.exp(
                    2j * np.pi * (ppm - acq.centre_ppm) * acq.f0_mhz * t - np.pi * 25 * t
                )
    sens = rng.normal(size=n_coils) + 1j * rng.normal(size=n_coils)
    sens *= rng.uniform(0.2, 1.0, n_coils)  # some coils much weaker
    sens /= np.linalg.norm(sens)
    # Real-part spectral noise SD of the combined transient (unit-norm sensitivities) is
    # noise_sd_time * sqrt(n_points / 2); the NAA height includes the other lines' tails.
    naa_height = fid_to_spectrum(off)[np.argmin(np.abs(acq.ppm_axis() - 2.01))].real
    noise_sd_time = naa_height / snr / np.sqrt(acq.n_points / 2)
    mix = np.eye(n_coils) * (1 - coil_correlation) + coil_correlation
    chol = np.linalg.cholesky(mix)

    def noise(shape):
        z = (
            rng.normal(size=(n_coils, *shape)) + 1j * rng.normal(size=(n_coils, *shape))
        ) / np.sqrt(2)
        return noise_sd_time * np.tensordot(chol, z, axes=1)

    data = sens[:, None, None, None] * signal[None] + noise((n_dyn, 2, acq.n_points))
    wfid = 200.0 * np.exp(2j * np.pi * (4.68 - acq.centre_ppm) * acq.f0_mhz * t - np.pi * 7 * t)
    wdata = sens[:, None, None] * wfid[None, None] + noise((n_water, acq.n_points))
    metab = FIDs(data, (DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME), acq)
    water = FIDs(wdata, (DIM_COIL, DIM_DYN, DIM_TIME), acq)
    return Scan(metab, water, drift, phase, corrupted, sens, noise_sd_time)


def test_generator_has_the_requested_snr():
    rng = np.random.default_rng(0)
    scan = make_scan(
        rng, n_coils=1, n_dyn=2, snr=25.0, phase_sd_deg=0, drift_step_hz=0, water_amplitude=0
    )
    x = scan.metab.data[0, :, 0] * np.conj(scan.sensitivities[0]) / abs(scan.sensitivities[0])
    spec = fid_to_spectrum(x)
    ppm = ACQ.ppm_axis()
    noise_sd = np.std(spec[:, (ppm > -2) & (ppm < 0)].real)
    assert spec[0, np.argmin(np.abs(ppm - 2.01))].real / noise_sd == pytest.approx(25.0, rel=0.1)


def test_generator_drift_is_a_random_walk_with_zero_mean():
    scan = make_scan(np.random.default_rng(1), n_dyn=32, drift_step_hz=0.5)
    steps = np.diff(scan.drift_hz.reshape(-1))
    assert abs(scan.drift_hz.mean()) < 1e-12
    assert 0.3 < steps.std() < 0.7
