"""Noise standard deviation of a spectrum from signal-free ppm ranges.

The ranges are cut into short segments (about SEGMENT_PPM wide), each detrended with its own
quadratic, and the segment variances are pooled after dropping outlying segments. Why local
and robust: real spectra carry broad structure in the "signal-free" ranges (residual water
tails, and near the edges of the spectral window the scanner's filter artefacts, e.g. the
Siemens RDA of tests/unit/test_lcm_realdata.py), which one quadratic over a whole range does
not follow: its leftover then counts as noise. On that spectrum the old single-quadratic
estimate over 8.7-9.2 ppm was 977, the segment estimate is 780 (and 560-870 in 0.25 ppm
segments over 5.5-9.2 ppm): the residual / noise ratio had been understated by ~25 %.
"""

from __future__ import annotations

import numpy as np

from gabaapp.spectra import Acquisition, fid_to_spectrum

MIN_NOISE_POINTS = 32
SEGMENT_PPM = 0.25  # detrending length: short next to water tails and baselines
MIN_SEGMENT_POINTS = 12
# A segment whose variance exceeds this multiple of the median holds signal or an artefact. With
# >= 18 degrees of freedom per segment a pure-noise segment exceeds 2.5 x the median with
# probability < 1e-4, so white noise loses (almost) nothing to this rule.
OUTLIER_FACTOR = 2.5
_EDGE_FRACTION = 0.03  # skip spectrum edges, where anti-alias filters attenuate the noise
_TREND_PARAMS = 3  # quadratic


def segment_variances(
    fid: np.ndarray, acq: Acquisition, ppm_ranges: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (centre_ppm, residual sum of squares, degrees of freedom) per noise segment.

    Each range, clipped to the spectral window minus its outer 3 %, is split into equal
    segments about SEGMENT_PPM wide; real and imaginary parts of each are detrended by their
    own quadratic. Segments with fewer than MIN_SEGMENT_POINTS points are skipped.
    """
    spec = fid_to_spectrum(np.asarray(fid))
    ppm = acq.ppm_axis()
    n_edge = int(_EDGE_FRACTION * ppm.size)
    lo_in, hi_in = ppm[n_edge], ppm[ppm.size - n_edge - 1]
    centres, ss, dof = [], [], []
    for lo, hi in ppm_ranges:
        lo, hi = max(lo, lo_in), min(hi, hi_in)
        if hi <= lo:
            continue
        n_seg = max(1, round((hi - lo) / SEGMENT_PPM))
        edges = np.linspace(lo, hi, n_seg + 1)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            sel = (ppm >= a) & (ppm < b) if b < hi else (ppm >= a) & (ppm <= b)
            if sel.sum() < MIN_SEGMENT_POINTS:
                continue
            x = ppm[sel] - ppm[sel].mean()
            total = 0.0
            for part in (spec[sel].real, spec[sel].imag):
                coef = np.polyfit(x, part, _TREND_PARAMS - 1)
                total += float(np.sum((part - np.polyval(coef, x)) ** 2))
            centres.append(0.5 * (a + b))
            ss.append(total)
            dof.append(2 * (sel.sum() - _TREND_PARAMS))
    return np.array(centres), np.array(ss), np.array(dof, dtype=float)


def noise_sd(
    fid: np.ndarray, acq: Acquisition, ppm_ranges: tuple[tuple[float, float], ...]
) -> float | None:
    """Return the SD of the real (= imaginary) part of the spectrum noise, or None.

    Segment variances (see `segment_variances`) above OUTLIER_FACTOR x their median are
    dropped (signal or artefact), the rest pooled by their degrees of freedom. Returns None
    when fewer than MIN_NOISE_POINTS complex points remain.
    """
    _, ss, dof = segment_variances(fid, acq, ppm_ranges)
    if not ss.size:
        return None
    var = ss / dof
    keep = var <= OUTLIER_FACTOR * np.median(var)
    if (dof[keep].sum() + _TREND_PARAMS * 2 * keep.sum()) < 2 * MIN_NOISE_POINTS:
        return None
    return float(np.sqrt(ss[keep].sum() / dof[keep].sum()))
