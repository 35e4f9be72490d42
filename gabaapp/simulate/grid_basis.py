"""A basis at grid-matched sampling: the simulator's shortcut to the network grid.

The network input is the DTFT of each FID on a fixed ppm grid (1.0-4.5 ppm, 2048 points).
Measured data need a chirp-z transform for that, but the simulator chooses its own sampling:
at the grid-matched sampling of `gabaapp.preproc.features.grid_acquisition` (spectral width =
4096 grid steps, ~863 Hz at 123.2 MHz, -0.75 to 6.25 ppm) the DTFT on the grid is one FFT of
length 4096 and a slice, and every time-domain operation runs on ~1,770 instead of 4,096
points (for a 2.048 s acquisition).

A basis is re-simulated at that sampling by the density-matrix simulator (`gabaapp.physics`),
from the sequence parameters stored in `basis.meta["sequence"]`, through the on-disk basis
cache (the first call costs a basis simulation, a few seconds; later calls load it). The
acquisition time of the given basis is kept, so both samplings truncate the FIDs at the same
time. Resampling the FIDs themselves is not exact (they are truncated sums of undecaying
exponentials), hence the re-simulation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from gabaapp.errors import DataError
from gabaapp.physics.basis import cached_basis
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.preproc.features import GRID_FFT_LEN, grid_acquisition, grid_match
from gabaapp.spectra import Acquisition, Basis

logger = logging.getLogger(__name__)


def grid_sampling_for(acquisition: Acquisition, fft_len: int = GRID_FFT_LEN) -> Acquisition:
    """Return the grid-matched sampling with the field and acquisition time of `acquisition`."""
    return grid_acquisition(
        acquisition.f0_mhz,
        acquisition.n_points * acquisition.dwell_s,
        fft_len=fft_len,
        te_s=acquisition.te_s,
    )


def check_grid_basis(grid_basis: Basis, basis: Basis) -> Basis:
    """Return `grid_basis` restricted to basis.names, or raise DataError: it must hold those
    metabolites, have the same field and a grid-matched sampling."""
    acq = grid_basis.acquisition
    missing = [m for m in basis.names if m not in grid_basis.names]
    if missing:
        raise DataError(
            f"the grid-sampled basis lacks {missing} (synthesis setting sampling='grid'); "
            "build it from the same metabolites"
        )
    if grid_match(acq) is None or abs(acq.f0_mhz - basis.acquisition.f0_mhz) > 1e-9:
        raise DataError(
            f"the basis given for synthesis setting sampling='grid' is sampled at "
            f"{1 / acq.dwell_s:.2f} Hz, centre {acq.centre_ppm} ppm, {acq.f0_mhz} MHz, which is "
            "not grid-matched at the basis' field; make it with "
            "gabaapp.preproc.features.grid_acquisition"
        )
    return grid_basis.subset(list(basis.names))


def grid_matched_basis(
    basis: Basis, fft_len: int = GRID_FFT_LEN, *, oversample: int | None = None
) -> Basis:
    """Return `basis` at the grid-matched sampling of the same field and acquisition time.

    A basis already at a grid-matched sampling is returned as is. Otherwise it is
    re-simulated (gabaapp.physics.basis.cached_basis) from `basis.meta["sequence"]` with the
    spectral width, number of points and receiver centre of `grid_sampling_for`; a basis
    without that record (not made by gabaapp) raises DataError naming the setting.
    `oversample`: simulate at this multiple of the grid-matched bandwidth and keep every
    oversample-th sample (default: the smallest that holds the editing frequencies).
    """
    if grid_match(basis.acquisition) is not None:
        return basis
    target = grid_sampling_for(basis.acquisition, fft_len)
    record = basis.meta.get("sequence") if isinstance(basis.meta, dict) else None
    if not record:
        raise DataError(
            "synthesis setting sampling='grid' re-simulates the basis at the grid-matched "
            "sampling, but this basis has no sequence record (basis.meta['sequence']: it was "
            "not simulated by gabaapp); use sampling='basis' or a gabaapp-simulated basis"
        )
    # The sequence must hold its editing frequencies (e.g. edit-OFF at 7.4 ppm) inside its
    # spectral width, which the 7-ppm grid window may not: simulate at `factor` times the
    # bandwidth and keep every factor-th sample, which is exact (the simulator evaluates the
    # FID at each sample time; t = k factor / (factor SW) = k / SW).
    half_window_ppm = 0.5 / (target.dwell_s * target.f0_mhz)
    edits = [record.get("edit_on_ppm"), record.get("edit_off_ppm")] if record.get("editing") else []
    reach = max([abs(p - target.centre_ppm) for p in edits if p is not None], default=0.0)
    factor = max(1, math.ceil(reach / half_window_ppm - 1e-12))
    if oversample is not None:
        if oversample < factor:
            raise DataError(
                f"oversample={oversample} leaves the editing frequencies outside the simulated "
                f"spectral width; use >= {factor}"
            )
        factor = oversample
    sequence = MegaPressSequence.from_dict(
        dict(
            record,
            spectral_width_hz=factor / target.dwell_s,
            n_points=factor * target.n_points,
            centre_ppm=target.centre_ppm,
        )
    )
    logger.info(
        "basis at grid-matched sampling: %d points at %.3f Hz, centre %.4f ppm (simulated at "
        "%d x that bandwidth)",
        target.n_points,
        1.0 / target.dwell_s,
        target.centre_ppm,
        factor,
    )
    fine = cached_basis(sequence, basis.names)
    return replace(
        fine,
        off=np.ascontiguousarray(fine.off[:, ::factor]),
        on=np.ascontiguousarray(fine.on[:, ::factor]),
        acquisition=replace(target, te_s=fine.acquisition.te_s),
    )
