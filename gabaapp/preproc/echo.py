"""Detection and removal of a spurious (late) echo in a single-voxel FID.

A spurious echo is out-of-voxel signal refocused by imperfectly crushed refocusing pulses
(a known PRESS/STEAM artefact; Kreis, NMR Biomed 17:361, 2004). In the FID it is a signal
that *starts late*: in its frequency band the envelope rises again after the in-voxel lines
have decayed, which a sum of decaying lines never does. The linear-combination model has
no term for it, so it stays in the fit residual (docs/lcm.md, log item 6).

Method, per 0.4 ppm band of the metabolite range (sin^2 weights, bands overlapping by half
so that the weights sum to 1):

1. the band's envelope (the FID band-limited by a Hann window over the band, per 20 ms,
   averaged over 3 bins) is followed until the band's lines have decayed: below
   `DECAYED_POWER` x the noise power, or a minimum after which it rises again;
2. the late segment from there (zero-padded to twice its length, so that the band filter
   does not wrap its abrupt start onto its end) is reduced to its sub-band, a short complex
   series, and tested by singular spectrum analysis: singular values of its Hankel matrix
   above `NOISE_EDGE_FACTOR` x the Marchenko-Pastur edge (the 99.9th percentile of
   pure-noise simulations for these sizes) are signal; the low-rank part they span
   (anti-diagonals averaged) is the candidate;
3. the candidate counts as an echo when its envelope rises again after a minimum
   (`_echo_onset`: twofold from a decayed level, eightfold otherwise) and carries more
   energy than the band's noise over the segment; it is then subtracted from that minimum
   on (half-cosine switch-on over 20 ms). Only those few components go, with the part of
   the noise that lies in their span (about rank / half the series length of the band's
   late noise); the rest of the noise stays (measured: an injected echo removed leaves the
   fit residual 1-3 % below that of the echo-free FID, benchmarks/bench_preproc_echo.py).
   All bands are estimated from the FID as given and subtracted together.

Noise level: given (`spectrum_noise_sd`, e.g. gabaapp.lcm.noise.noise_sd), or from the
spectrum of the FID's third quarter, median |S|^2 / ln 2 (|S|^2 of complex Gaussian noise
is exponential; the few bins of water and echo do not move the median). The FID's end is
trimmed where its power rises above `END_POWER` x the noise (a filter artefact at the end
of some vendors' FIDs, e.g. the Siemens RDA of docs/lcm.md), so that it is not taken for
an echo.

Known limit (tests/unit/test_preproc_echo.py, docs/lcm.md log item 11): strong, narrow,
purely Lorentzian multiplets beat long enough for a beat to pass for an echo; an echo
rising over a beating tail takes some of the lines with it. Hence opt-in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gabaapp.spectra import Acquisition

BAND_PPM = 0.4  # width of the sliding detection bands (51 Hz at 3 T)
# metabolite range: band centres from 0.2 to 4.2 ppm, so bands end by 4.4 ppm and water
# (4.65 ppm, removed by gabaapp.preproc.water) is left alone
DEFAULT_RANGE_PPM = (0.2, 4.2)
BIN_S = 0.02  # envelope resolution
DECAYED_POWER = 2.0  # envelope / noise power below which in-voxel lines count as decayed
MIN_START_S = 0.05
NOISE_EDGE_FACTOR = 1.6  # top singular value / MP edge: 99.9th percentile of white noise
RISE_FACTOR = 2.0  # echo: later envelope peak (3-bin mean) / the envelope minimum before it
ECHO_POWER = 4.0  # ... and above this x the noise power (3-bin means of noise: < 1e-3)
# The estimate's envelope minimum before a rise must be below this x the noise power: lines
# of a multiplet beat (measured: 12 x noise at 0.12 s on the Philips sub-02 3.6-4.0 ppm band)
DECAYED_ENVELOPE = 8.0
# ... unless the rise is this steep: beats of decaying lines rose at most 5.2-fold from a
# node in the synthetic checks (up to 960 x the noise, 2-5 Hz lines), echoes over a strong
# tail 8-23-fold
STRONG_RISE = 8.0
END_POWER = 3.0  # FID power / noise power from which its end counts as an artefact
MIN_SEGMENT_POINTS = 12
# An echo estimate must carry more energy than the band's noise over the segment. Beating
# lines of a strong multiplet that decay through the noise can mimic a small late rise
# (synthetic doublet of tests/unit/test_preproc_echo.py: 0.6-0.9); the real Philips echo
# carries 1.4-8 per band.
MIN_REMOVED_ENERGY = 1.0


@dataclass(frozen=True)
class EchoBand:
    """One frequency range where a late echo was found and removed."""

    ppm: tuple[float, float]
    start_s: float  # where the removal starts (the envelope minimum before the echo)
    end_s: float
    rank: int  # components removed
    top_singular_to_edge: float  # top singular value / noise edge (noise: < ~1.5)
    peak_s: float  # time of the echo estimate's envelope peak
    removed_power: float  # energy removed / noise energy of the band over the segment


@dataclass(frozen=True)
class EchoReport:
    """What `remove_late_echo` found: the bands with an echo (empty: nothing removed)."""

    bands: tuple[EchoBand, ...]
    noise_sd: float  # per real part, time domain
    end_s: float  # where the FID was trimmed for the analysis

    @property
    def detected(self) -> bool:
        """Return True when an echo was found (and removed) in at least one band."""
        return bool(self.bands)


def remove_late_echo(
    fid: np.ndarray,
    acq: Acquisition,
    spectrum_noise_sd: float | None = None,
    ppm_range: tuple[float, float] = DEFAULT_RANGE_PPM,
) -> tuple[np.ndarray, EchoReport]:
    """Return (FID with late echoes removed, EchoReport) for one averaged FID [N].

    `spectrum_noise_sd`: noise SD of the real part of fid_to_spectrum(fid), measured in
    signal-free ranges (e.g. gabaapp.lcm.noise.noise_sd); None estimates it from the FID's
    third quarter (`time_noise_sd`). The FID is returned unchanged (a copy) when no band
    holds a rising late signal.
    """
    x = np.asarray(fid, dtype=complex).copy()
    sd = time_noise_sd(x) if spectrum_noise_sd is None else spectrum_noise_sd / math.sqrt(x.size)
    n_end = _usable_end(x, sd, acq.dwell_s)
    removal = np.zeros_like(x)
    found = []
    for lo in np.arange(ppm_range[0] - BAND_PPM / 2, ppm_range[1], BAND_PPM / 2):
        band = (float(lo), float(lo + BAND_PPM))
        n_start = _decay_index(x, acq, band, sd, n_end)
        if n_start is None:
            continue
        res = _band_ssa(x[n_start:n_end], acq, band, sd)
        if res is None or res[2] == 0:
            continue
        low, ratio, rank, noise_power = res
        onset = _echo_onset(low, acq.dwell_s, noise_power)
        if onset is None:
            continue  # a decaying tail of the band's lines: signal, not an echo
        k = int(round(BIN_S / acq.dwell_s))
        # from the envelope minimum on, switched on by a half-cosine over one bin (a step
        # would ring across the spectrum)
        ramp = np.clip((np.arange(low.size) - onset * k) / k, 0.0, 1.0)
        echo = low * 0.5 * (1.0 - np.cos(np.pi * ramp))
        removed = float(np.sum(np.abs(echo) ** 2) / (noise_power * echo.size))
        if removed < MIN_REMOVED_ENERGY:
            continue  # weaker than the band's noise over the segment: not worth a removal
        # estimated from the FID as given (bands overlap), subtracted together below
        removal[n_start:n_end] += echo
        env = _envelope(echo, acq.dwell_s)
        found.append(
            EchoBand(
                ppm=band,
                start_s=(n_start + onset * k) * acq.dwell_s,
                end_s=n_end * acq.dwell_s,
                rank=rank,
                top_singular_to_edge=ratio,
                peak_s=(n_start + k * (int(np.argmax(env)) + 0.5)) * acq.dwell_s,
                removed_power=removed,
            )
        )
    return x - removal, EchoReport(tuple(found), sd, n_end * acq.dwell_s)


def time_noise_sd(fid: np.ndarray) -> float:
    """Return the noise SD per real part of the FID's points, from its third quarter.

    |S|^2 of complex white noise in one DFT bin is exponential with mean 2 sd^2 n, so its
    median / (ln 2 * 2 n) is sd^2; lines, water and an echo occupy few bins. The last
    quarter is left out: some FIDs end in a filter artefact (docs/lcm.md, Siemens RDA).
    """
    late = np.asarray(fid)[fid.size // 2 : 3 * fid.size // 4]
    power = np.abs(np.fft.fft(late)) ** 2
    return float(math.sqrt(np.median(power) / (math.log(2.0) * 2.0 * late.size)))


def _usable_end(fid: np.ndarray, sd: float, dwell_s: float) -> int:
    """Return the index where the FID's end artefact begins (len(fid) when there is none).

    Walking back from the end, bins of BIN_S whose mean power exceeds END_POWER x the
    noise power are dropped.
    """
    k = max(1, int(round(BIN_S / dwell_s)))
    n = fid.size
    while n - k > fid.size // 2:
        if np.mean(np.abs(fid[n - k : n]) ** 2) / (2 * sd**2) <= END_POWER:
            break
        n -= k
    return n


def _band_weights(ppm: np.ndarray, band) -> np.ndarray:
    """Return sin^2 weights over `band` (0 outside): bands overlapping by half sum to 1."""
    phase = (ppm - band[0]) / (band[1] - band[0])
    return np.where((phase > 0) & (phase < 1), np.sin(np.pi * phase) ** 2, 0.0)


def _band_ssa(seg, acq, band, sd):
    """Return (low-rank estimate [len(seg)], top singular value / noise edge, rank, noise
    power per point of the band-filtered segment) of the segment's sub-band, or None when
    it is too short.

    The sub-band is the DFT of the segment zero-padded to twice its length (so that the
    filter does not wrap the segment's abrupt start onto its end), weighted by
    `_band_weights` (smooth, so that the start rings for only ~2 / band width), as a short
    complex series (the inverse DFT of the band's bins; its first half covers the segment).
    The estimate keeps the components of that half's Hankel matrix above
    NOISE_EDGE_FACTOR x the noise edge, anti-diagonals averaged.
    """
    m2 = 2 * seg.size
    ppm = np.fft.fftfreq(m2, acq.dwell_s) / acq.f0_mhz + acq.centre_ppm
    w = _band_weights(ppm, band)
    bins = np.flatnonzero(w > 0)
    n = bins.size // 2
    if n < MIN_SEGMENT_POINTS:
        return None
    s = np.fft.ifft(np.fft.fft(seg, m2)[bins] * w[bins])[:n]
    # noise: the filtered segment has per-point variance 2 sd^2 sum(w^2) / m2 (Parseval on
    # the filter kernel); the series samples it at bins.size points over m2, scaled by
    # m2 / bins.size
    w2 = float(np.sum(w[bins] ** 2))
    noise_power = 2 * sd**2 * w2 / m2
    sd_series = sd * math.sqrt(m2 * w2) / bins.size
    rows = n // 2
    cols = n - rows + 1
    hankel = np.lib.stride_tricks.sliding_window_view(s, rows)  # [cols, rows]
    u, sv, vh = np.linalg.svd(hankel, full_matrices=False)
    edge = math.sqrt(2.0) * sd_series * (math.sqrt(rows) + math.sqrt(cols))
    ratio = float(sv[0] / edge)
    rank = int(np.sum(sv > NOISE_EDGE_FACTOR * edge))
    low = (u[:, :rank] * sv[:rank]) @ vh[:rank]
    est = np.zeros(bins.size, complex)
    count = np.ones(bins.size)
    count[:n] = 0
    for i in range(cols):  # anti-diagonal averaging back to a series
        est[i : i + rows] += low[i]
        count[i : i + rows] += 1
    est /= count
    spec = np.zeros(m2, complex)
    spec[bins] = np.fft.fft(est)
    return np.fft.ifft(spec)[: seg.size], ratio, rank, noise_power


def _envelope(x: np.ndarray, dwell_s: float) -> np.ndarray:
    """Return the mean power of x per BIN_S."""
    k = max(1, int(round(BIN_S / dwell_s)))
    n = x.size // k
    return np.mean(np.abs(x[: n * k].reshape(n, k)) ** 2, axis=1)


def _echo_onset(estimate: np.ndarray, dwell_s: float, noise_power: float) -> int | None:
    """Return the BIN_S bin where the estimate's envelope starts to rise to an echo, or None.

    That bin is the first local minimum of the envelope (in units of `noise_power`, the
    band's noise power per point) after which the envelope, averaged over 3 bins, rises to
    >= ECHO_POWER and to >= RISE_FACTOR x that minimum when the minimum is below
    DECAYED_ENVELOPE (the lines have decayed; minima above it are mostly beats between
    the lines of a multiplet), else to >= STRONG_RISE x it. A decaying tail of the band's
    lines, beating or not, does not.
    """
    env = _envelope(estimate, dwell_s) / noise_power
    for low in np.flatnonzero(np.diff(env) > 0):
        if low > 0 and env[low] > env[low - 1]:
            continue  # not a minimum
        after = env[low + 1 :]
        if after.size < 3:
            break
        # sustained: an echo rises over tens of ms; ripple of a huge water tail does not
        peak = np.convolve(after, np.ones(3) / 3, mode="valid").max()
        rise = peak / max(env[low], 1e-300)
        decayed = env[low] <= DECAYED_ENVELOPE
        if peak >= ECHO_POWER and (rise >= STRONG_RISE or (decayed and rise >= RISE_FACTOR)):
            return int(low)
    return None


def _decay_index(fid, acq: Acquisition, band, sd: float, n_end: int) -> int | None:
    """Return the index where the band's lines have decayed, or None (never before n_end).

    The band's envelope (Hann-windowed band, mean power per BIN_S, averaged over 3 bins, /
    noise power) is followed from MIN_START_S to the first bin that is either below
    DECAYED_POWER or a local minimum after which the envelope rises RISE_FACTOR-fold to
    above ECHO_POWER (an echo overlapping the lines' decay keeps the envelope up).
    """
    spec = np.fft.fft(fid)
    ppm = np.fft.fftfreq(fid.size, acq.dwell_s) / acq.f0_mhz + acq.centre_ppm
    idx = np.flatnonzero((ppm >= band[0]) & (ppm < band[1]))
    w = np.zeros(fid.size)
    w[idx[np.argsort(ppm[idx])]] = np.hanning(idx.size)
    xb = np.fft.ifft(spec * w)
    noise_power = 2 * sd**2 * np.sum(w**2) / fid.size
    env = _envelope(xb[:n_end], acq.dwell_s) / noise_power
    smooth = np.convolve(env, np.ones(3) / 3, mode="valid")
    k = max(1, int(round(BIN_S / acq.dwell_s)))
    for i in range(int(math.ceil(MIN_START_S / BIN_S)), smooth.size):
        later = smooth[i + 1 :].max(initial=0.0)
        if smooth[i] < DECAYED_POWER or (
            later >= RISE_FACTOR * smooth[i]
            and later >= ECHO_POWER
            and smooth[i] <= smooth[i - 1]
            and smooth[i] <= smooth[i + 1 : i + 2].min(initial=np.inf)
        ):
            n_start = i * k
            return n_start if n_end - n_start > MIN_SEGMENT_POINTS else None
    return None
