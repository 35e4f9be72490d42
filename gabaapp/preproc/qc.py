"""Quality-control metrics of pre-processed MRS data (definitions: docs/preprocessing.md).

All functions take FIDs (time last) and the Acquisition and return plain floats.
"""

from __future__ import annotations

import numpy as np

from gabaapp.constants import CR_PPM, NAA_PPM
from gabaapp.preproc.phase import zero_filled_spectrum
from gabaapp.spectra import Acquisition, fid_to_spectrum

# Signal-free regions searched for noise (ppm); the parts inside the spectral width are used.
NOISE_REGIONS_PPM = ((-2.0, 0.5), (8.5, 11.0))
# Outer fraction of the spectral width ignored (anti-alias filter roll-off).
EDGE_FRACTION = 0.05
MIN_NOISE_POINTS = 16
NAA_WINDOW_PPM = (1.9, 2.1)
WATER_WINDOW_PPM = (4.2, 5.2)


def noise_sd(fid: np.ndarray, acquisition: Acquisition) -> float:
    """Return the SD of the real spectrum in signal-free regions after removing a quadratic
    baseline from each region (fid_to_spectrum scaling, no zero-filling). NaN if none fits."""
    spec = fid_to_spectrum(fid).real
    ppm = acquisition.ppm_axis()
    n = len(ppm)
    inner = np.zeros(n, bool)
    edge = int(EDGE_FRACTION * n)
    inner[edge : n - edge] = True
    residuals = []
    for lo, hi in NOISE_REGIONS_PPM:
        sel = inner & (ppm >= lo) & (ppm <= hi)
        if sel.sum() >= MIN_NOISE_POINTS:
            x = ppm[sel]
            coef = np.polyfit(x, spec[sel], 2)
            residuals.append(spec[sel] - np.polyval(coef, x))
    if not residuals:
        return float("nan")
    r = np.concatenate(residuals)
    return float(np.sqrt(np.sum(r**2) / (len(r) - 3 * len(residuals))))


def _phased_peak(fid, acquisition, window_ppm):
    """Return (ppm, real spectrum phased at the peak, zero-filled) and the peak index."""
    ppm, spec = zero_filled_spectrum(fid, acquisition)
    band = np.nonzero((ppm >= window_ppm[0]) & (ppm <= window_ppm[1]))[0]
    k = band[np.argmax(np.abs(spec[band]))]
    real = (spec * np.exp(-1j * np.angle(spec[k]))).real
    return ppm, real, k


def peak_height(fid: np.ndarray, acquisition: Acquisition, window_ppm) -> float:
    """Return the height of the largest peak in window_ppm (real part, phased at its maximum),
    on the fid_to_spectrum scale (zero-filling does not change peak heights)."""
    _, real, k = _phased_peak(fid, acquisition, window_ppm)
    return float(real[k])


def snr(fid: np.ndarray, acquisition: Acquisition, window_ppm=NAA_WINDOW_PPM) -> float:
    """Return the NAA SNR: peak height in window_ppm over `noise_sd` (NaN if no noise region)."""
    return peak_height(fid, acquisition, window_ppm) / noise_sd(fid, acquisition)


def fwhm_hz(fid: np.ndarray, acquisition: Acquisition, window_ppm) -> float:
    """Return the full width at half maximum (Hz) of the largest peak in window_ppm.

    Measured on the real part phased at the peak (absorption mode), zero-filled 4x, with
    linear interpolation of the half-height crossings; NaN if a crossing is missing.
    """
    ppm, real, k = _phased_peak(fid, acquisition, window_ppm)
    half = real[k] / 2
    lo = k
    while lo > 0 and real[lo] > half:
        lo -= 1
    hi = k
    while hi < len(real) - 1 and real[hi] > half:
        hi += 1
    if real[lo] > half or real[hi] > half:
        return float("nan")
    p_lo = ppm[lo] + (half - real[lo]) * (ppm[lo + 1] - ppm[lo]) / (real[lo + 1] - real[lo])
    p_hi = ppm[hi - 1] + (half - real[hi - 1]) * (ppm[hi] - ppm[hi - 1]) / (real[hi] - real[hi - 1])
    return float((p_hi - p_lo) * acquisition.f0_mhz)


def peak_ppm(fid: np.ndarray, acquisition: Acquisition, window_ppm) -> float:
    """Return the position (ppm) of the largest |S| peak in window_ppm (4x zero-filled, parabolic)."""
    ppm, spec = zero_filled_spectrum(fid, acquisition)
    mag = np.abs(spec)
    band = np.nonzero((ppm >= window_ppm[0]) & (ppm <= window_ppm[1]))[0]
    k = band[np.argmax(mag[band])]
    y0, y1, y2 = mag[k - 1], mag[k], mag[k + 1]
    denom = y0 - 2 * y1 + y2
    delta = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return float(ppm[k] + delta * (ppm[1] - ppm[0]))


def drift_metrics(freq_hz: np.ndarray) -> dict[str, float]:
    """Return drift_range_hz (max - min) and drift_sd_hz of the finite frequency offsets."""
    f = np.asarray(freq_hz, float)
    f = f[np.isfinite(f)]
    if len(f) == 0:
        return {"drift_range_hz": float("nan"), "drift_sd_hz": float("nan")}
    return {"drift_range_hz": float(np.ptp(f)), "drift_sd_hz": float(np.std(f))}


def diff_residual(
    off: np.ndarray, diff: np.ndarray, acquisition: Acquisition, centre_ppm: float
) -> float:
    """Return the subtraction artefact at a Cr singlet: peak-to-peak of Re(DIFF) within
    +-0.05 ppm of centre_ppm over the OFF peak height there (phased at the OFF peak).

    At 3.0 ppm the edited GABA+ signal adds to it, so it is an upper bound there."""
    ppm, s_off = zero_filled_spectrum(off, acquisition)
    _, s_diff = zero_filled_spectrum(diff, acquisition)
    band = np.nonzero(np.abs(ppm - centre_ppm) <= 0.05)[0]
    k = band[np.argmax(np.abs(s_off[band]))]
    rot = np.exp(-1j * np.angle(s_off[k]))
    height = (s_off[k] * rot).real
    d = (s_diff[band] * rot).real
    return float(np.ptp(d) / height) if height > 0 else float("nan")


def spectrum_qc(off: np.ndarray, acquisition: Acquisition) -> dict[str, float]:
    """Return SNR and NAA/Cr FWHM (Hz and ppm) and the NAA position of an averaged spectrum."""
    naa_fwhm = fwhm_hz(off, acquisition, NAA_WINDOW_PPM)
    cr_fwhm = fwhm_hz(off, acquisition, (CR_PPM - 0.1, CR_PPM + 0.1))
    return {
        "snr": snr(off, acquisition),
        "naa_fwhm_hz": naa_fwhm,
        "naa_fwhm_ppm": naa_fwhm / acquisition.f0_mhz,
        "cr_fwhm_hz": cr_fwhm,
        "cr_fwhm_ppm": cr_fwhm / acquisition.f0_mhz,
        "naa_ppm": peak_ppm(off, acquisition, (NAA_PPM - 0.15, NAA_PPM + 0.15)),
    }


def water_qc(water: np.ndarray, acquisition: Acquisition) -> dict[str, float]:
    """Return the water FWHM (Hz) of a combined, averaged water reference."""
    return {"water_fwhm_hz": fwhm_hz(water, acquisition, WATER_WINDOW_PPM)}
