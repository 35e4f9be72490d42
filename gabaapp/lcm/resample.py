"""Bring basis FIDs onto the sampling of the data (dwell time, length, ppm centre).

A basis FID sampled at dwell dt_b over N_b points is band-limited to its spectral width; its
band-limited (trigonometric) interpolant f(t) = 1/N_b * sum_j S_j exp(2 pi i nu_j t), with S
the DFT and nu_j the centred frequencies, reproduces the samples exactly and evaluates the FID at
any time 0 <= t < N_b dt_b. Components outside the data's spectral width are dropped instead of
letting them alias, and the ppm centre is moved by a frequency offset. This is exact for the
basis's own band, unlike decimation or spline interpolation of the FID.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from gabaapp.errors import DataError
from gabaapp.spectra import Acquisition, Basis, frequency_axis_hz

log = logging.getLogger(__name__)

_CHUNK = 256  # time points per block of the non-uniform DFT (bounds memory to ~N_b * 4 kB)


def same_sampling(a: Acquisition, b: Acquisition, rtol: float = 1e-9) -> bool:
    """Return True when `a` and `b` have the same dwell, length, centre and f0."""
    return (
        a.n_points == b.n_points
        and abs(a.dwell_s - b.dwell_s) <= rtol * a.dwell_s
        and abs(a.centre_ppm - b.centre_ppm) <= 1e-9
        and abs(a.f0_mhz - b.f0_mhz) <= rtol * a.f0_mhz
    )


def check_compatible(
    basis_acq: Acquisition, data_acq: Acquisition, max_f0_mismatch: float = 0.005
) -> None:
    """Raise DataError when the basis cannot be resampled to the data without inventing signal.

    Resampling cannot change the field strength (J-coupling patterns scale with B0), nor extend
    a basis FID beyond its own acquisition time.
    """
    rel = abs(basis_acq.f0_mhz - data_acq.f0_mhz) / data_acq.f0_mhz
    if rel > max_f0_mismatch:
        raise DataError(
            f"basis was simulated at {basis_acq.f0_mhz:.3f} MHz but the data were acquired at "
            f"{data_acq.f0_mhz:.3f} MHz ({100 * rel:.2f} % apart, tolerance "
            f"{100 * max_f0_mismatch:.2f} %): simulate a basis at the data's field strength"
        )
    t_basis = basis_acq.n_points * basis_acq.dwell_s
    t_data = (data_acq.n_points - 1) * data_acq.dwell_s
    if t_data >= t_basis:
        raise DataError(
            f"data acquisition time {t_data * 1e3:.1f} ms ({data_acq.n_points} points x "
            f"{data_acq.dwell_s * 1e3:.4g} ms) exceeds the basis's {t_basis * 1e3:.1f} ms "
            f"({basis_acq.n_points} x {basis_acq.dwell_s * 1e3:.4g} ms): simulate a longer "
            f"basis or truncate the data"
        )


def resample_fids(
    fids: np.ndarray,
    basis_acq: Acquisition,
    data_acq: Acquisition,
    max_f0_mismatch: float = 0.005,
) -> np.ndarray:
    """Return basis `fids` [..., N_b] evaluated on the data's time grid, shape [..., N_d].

    The result has the data's dwell time, number of points and ppm centre; frequencies are kept
    in ppm (using the data's f0 for the centre shift). Frequency components outside the data's
    spectral width are removed (they would alias). Returns the input unchanged when the
    sampling already matches. Raises DataError when `check_compatible` fails.
    """
    fids = np.asarray(fids, dtype=complex)
    if same_sampling(basis_acq, data_acq):
        return fids
    check_compatible(basis_acq, data_acq, max_f0_mismatch)
    if same_sampling(basis_acq, replace(data_acq, n_points=basis_acq.n_points)):
        # same grid, only longer: the first N_d samples are exactly the data's time points
        return fids[..., : data_acq.n_points].copy()
    n_b = basis_acq.n_points
    spec = np.fft.fftshift(np.fft.fft(fids, axis=-1), axes=-1) / n_b
    # Frequencies relative to the data centre at the data's f0, keeping every line's ppm:
    # ppm = centre_b + nu_b / f0_b  ->  nu_d = (ppm - centre_d) * f0_d.
    nu_hz = (
        frequency_axis_hz(n_b, basis_acq.dwell_s) * (data_acq.f0_mhz / basis_acq.f0_mhz)
        + (basis_acq.centre_ppm - data_acq.centre_ppm) * data_acq.f0_mhz
    )
    half_sw = 0.5 / data_acq.dwell_s
    keep = np.abs(nu_hz) < half_sw
    if not keep.any():
        raise DataError("basis and data spectral windows do not overlap")
    dropped = np.abs(spec[..., ~keep]).sum() / max(np.abs(spec).sum(), 1e-300)
    if dropped > 1e-3:
        log.info(
            "resampling drops %.2g of the basis spectral magnitude outside the data SW", dropped
        )
    nu_hz, spec = nu_hz[keep], spec[..., keep]
    t_s = data_acq.time_axis()
    out = np.empty(fids.shape[:-1] + (data_acq.n_points,), dtype=complex)
    # exp(2 pi i nu t) block by block; the next block is this one times exp(2 pi i nu T_blk)
    # (a multiplication is far cheaper than a complex exponential)
    kernel = np.exp(2j * np.pi * np.outer(nu_hz, t_s[:_CHUNK]))
    step = np.exp(2j * np.pi * nu_hz * _CHUNK * data_acq.dwell_s)[:, None]
    for start in range(0, t_s.size, _CHUNK):
        width = min(_CHUNK, t_s.size - start)
        out[..., start : start + width] = spec @ kernel[:, :width]
        kernel *= step
    return out


def resample_basis(basis: Basis, data_acq: Acquisition, max_f0_mismatch: float = 0.005) -> Basis:
    """Return `basis` on the data's sampling (see `resample_fids`); itself when it matches.

    Resample once per acquisition protocol and pass the result to every fit: the fits then
    skip their own resampling (a non-uniform DFT, ~0.1-1 s for 4096-point bases).
    """
    if same_sampling(basis.acquisition, data_acq):
        return basis
    both = resample_fids(
        np.stack([basis.off, basis.on]), basis.acquisition, data_acq, max_f0_mismatch
    )
    return Basis(basis.names, both[0], both[1], data_acq, basis.sequence_hash, basis.meta)
