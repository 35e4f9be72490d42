"""Eddy-current correction with the unsuppressed water reference (Klose 1990, MRM 14:26).

The water FID's phase phi_w(t) carries the time-varying phase of eddy currents (plus the
receiver's zero-order phase); multiplying the metabolite FIDs by exp(-i phi_w(t)) removes both.
Unlike a plain division by the water phase, the water's own frequency offset (the linear part
2 pi f_w t, fitted with weights |water| on the later half of the reliable span, where eddy
currents have decayed) is kept, so corrected metabolites do not move on the frequency axis; where the water signal has decayed into noise (|water| < 5 noise SD) the phase
is held at its last reliable value instead of following noise.
"""

from __future__ import annotations

import numpy as np

from gabaapp.spectra import Acquisition

RELIABLE_SNR = 5.0  # |water| / noise SD above which its phase is trusted


def eddy_current_phase(water: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Return the phase (rad, [n_points]) to remove from metabolite FIDs: water phase minus its
    fitted linear frequency term, held constant once the water signal falls below 5 noise SD."""
    n = water.shape[-1]
    t = acquisition.time_axis()[:n]
    tail = water[-max(8, n // 5) :]
    noise_sd = np.std(tail - tail.mean())
    reliable = np.abs(water) > RELIABLE_SNR * max(noise_sd, np.finfo(float).tiny)
    # Use the leading run of reliable points only: the unwrapped phase is continuous there.
    stop = n if reliable.all() else int(np.argmin(reliable))
    stop = max(stop, 2)
    phase = np.unwrap(np.angle(water[:stop]))
    # The water frequency b comes from the later half of the reliable span, where eddy
    # currents have decayed (weighted least squares for phase ~ a + b t); it stays in the data.
    late = slice(stop // 2, stop)
    w = np.sqrt(np.abs(water[late]) ** 2)
    design = np.stack([np.ones(stop - stop // 2), t[late]], axis=1) * w[:, None]
    _, b = np.linalg.lstsq(design, phase[late] * w, rcond=None)[0]
    ecc = phase - b * t[:stop]
    return np.concatenate([ecc, np.full(n - stop, ecc[-1])])


def correct_eddy_currents(fids: np.ndarray, water: np.ndarray, acquisition: Acquisition):
    """Return fids [..., n] * exp(-i eddy_current_phase(water)); `water` [n] is combined and
    averaged, with the same sampling as `fids` (same dwell, at least as many points)."""
    phase = eddy_current_phase(water[: fids.shape[-1]], acquisition)
    return fids * np.exp(-1j * phase)
