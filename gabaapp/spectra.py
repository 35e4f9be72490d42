"""Small frozen types for MRS signals and THE conversion from FIDs to spectra.

Conventions (tested on real and simulated data):
* time is the last axis of every FID array;
* spectrum = fftshift(fft(fid)) along time, so the frequency axis ascends from -SW/2;
* a signal exp(+2j*pi*f*t) appears at +f Hz, and ppm = centre_ppm + f / f0_mhz, so the ppm
  axis ascends with the array index (plots invert the x axis as MRS convention wants).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from gabaapp.constants import DIM_TIME, WATER_PPM


@dataclass(frozen=True)
class Acquisition:
    """Sampling and scanner parameters of one acquisition."""

    f0_mhz: float  # spectrometer (Larmor) frequency
    dwell_s: float  # time between samples
    n_points: int
    te_s: float | None = None
    nucleus: str = "1H"
    centre_ppm: float = WATER_PPM  # chemical shift at 0 Hz offset

    def __post_init__(self) -> None:
        if not (self.f0_mhz > 0 and self.dwell_s > 0 and self.n_points > 1):
            raise ValueError(
                f"Acquisition needs f0_mhz > 0, dwell_s > 0, n_points > 1; got "
                f"{self.f0_mhz}, {self.dwell_s}, {self.n_points}"
            )

    @property
    def spectral_width_hz(self) -> float:
        return 1.0 / self.dwell_s

    def time_axis(self) -> np.ndarray:
        """Return the sample times in seconds, shape [n_points]."""
        return np.arange(self.n_points) * self.dwell_s

    def hz_axis(self) -> np.ndarray:
        """Return the frequency offset of each spectrum point in Hz (ascending)."""
        return frequency_axis_hz(self.n_points, self.dwell_s)

    def ppm_axis(self) -> np.ndarray:
        """Return the chemical shift of each spectrum point in ppm (ascending)."""
        return self.centre_ppm + self.hz_axis() / self.f0_mhz


def frequency_axis_hz(n_points: int, dwell_s: float) -> np.ndarray:
    """Return the fftshift-ed frequency axis in Hz, ascending, matching `fid_to_spectrum`."""
    return np.fft.fftshift(np.fft.fftfreq(n_points, d=dwell_s))


def fid_to_spectrum(fid: np.ndarray) -> np.ndarray:
    """Return the spectrum of `fid` (time on the last axis): fftshift(fft(fid))."""
    return np.fft.fftshift(np.fft.fft(fid, axis=-1), axes=-1)


def spectrum_to_fid(spectrum: np.ndarray) -> np.ndarray:
    """Inverse of `fid_to_spectrum`: return the FID of a spectrum (frequency on the last axis)."""
    return np.fft.ifft(np.fft.ifftshift(spectrum, axes=-1), axis=-1)


def ppm_to_index(ppm: float | np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Return the (fractional) spectrum index of a chemical shift in ppm."""
    hz = (np.asarray(ppm) - acquisition.centre_ppm) * acquisition.f0_mhz
    return hz * acquisition.n_points * acquisition.dwell_s + acquisition.n_points // 2


@dataclass(frozen=True)
class FIDs:
    """Complex time-domain data with named axes.

    `dims` names every axis of `data`, the last one being "time"; the others are NIfTI-MRS
    tags such as DIM_COIL, DIM_DYN, DIM_EDIT. Code looks axes up by tag, never by position.
    """

    data: np.ndarray
    dims: tuple[str, ...]
    acquisition: Acquisition
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.data.ndim != len(self.dims) or self.dims[-1] != DIM_TIME:
            raise ValueError(f"dims {self.dims} must name all {self.data.ndim} axes, time last")
        if self.data.shape[-1] != self.acquisition.n_points:
            raise ValueError("time axis length differs from acquisition.n_points")

    def axis(self, tag: str) -> int:
        """Return the axis number of `tag`; raises KeyError if absent."""
        try:
            return self.dims.index(tag)
        except ValueError:
            raise KeyError(f"no {tag} axis in {self.dims}") from None

    def size(self, tag: str) -> int:
        """Return the length of axis `tag`, or 1 if the data have no such axis."""
        return self.data.shape[self.dims.index(tag)] if tag in self.dims else 1

    def spectrum(self) -> np.ndarray:
        """Return fid_to_spectrum(data)."""
        return fid_to_spectrum(self.data)


@dataclass(frozen=True)
class Basis:
    """Simulated edit-OFF and edit-ON FIDs of metabolites at zero linewidth.

    `off` and `on` have shape [n_metabolites, n_points] (complex128), rows in `names` order.
    `sequence_hash` identifies the sequence parameters and spin systems that made it.
    """

    names: tuple[str, ...]
    off: np.ndarray
    on: np.ndarray
    acquisition: Acquisition
    sequence_hash: str
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        expected = (len(self.names), self.acquisition.n_points)
        if self.off.shape != expected or self.on.shape != expected:
            raise ValueError(f"basis arrays must have shape {expected}")

    @property
    def diff(self) -> np.ndarray:
        """Return ON - OFF, shape [n_metabolites, n_points]."""
        return self.on - self.off

    def subset(self, names: tuple[str, ...] | list[str]) -> Basis:
        """Return a basis holding only `names`, in that order; KeyError names a missing one."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"basis lacks metabolite(s) {missing}; it has {self.names}")
        rows = [self.names.index(n) for n in names]
        return Basis(
            tuple(names),
            self.off[rows],
            self.on[rows],
            self.acquisition,
            self.sequence_hash,
            self.meta,
        )


def stable_hash(*parts: object) -> str:
    """Return a short sha256 hex digest of the repr of `parts` (stable across runs)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
