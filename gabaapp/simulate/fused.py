"""Fused CPU loops of the synthesiser (numba, optional; see gabaapp.preproc.kernels).

On CPU the generator's time-domain work was a chain of torch passes over [n, T] complex arrays
(basis sum by a dense matrix product with mostly zero coefficients when each metabolite picks
one of several pre-broadened basis copies, the separable decay-and-rotation factor as an
outer product, its Gaussian envelope, the products with OFF and ON, a copy before the
nuisances, the noise's max |FID| and the noise sum), and dozens of small torch calls per slice
for the nuisance lines. Here each spectrum's metabolite FIDs are made in one pass that reads
only the basis rows it uses (per-metabolite linewidth levels as basis x decay), with its
decay factors, Gaussian envelope and ON/OFF mismatch; the nuisances (MM, co-edited MM,
baseline, water) in one loop; the noise in one pass per acquisition; and, on the grid path
with nuisances, all of it one spectrum at a time (`grid_fids`) while its rows are in cache.
Small sets of cos/sin/exp values (separable factors, line envelopes) come from float64
recurrences instead of a libm call per point (~20 ns each). Same arithmetic as the torch code
(values equal to float32 rounding: summation order and fused multiply-adds differ);
`AVAILABLE` is False without numba and the generator keeps its torch code.
"""

from __future__ import annotations

import math

import numpy as np

from gabaapp.preproc.kernels import AVAILABLE, jit
from gabaapp.simulate.noise import GAMMA, LN2, MIX1, MIX2, SQRT2, TWO_M32, TWO_PI

# Normal pairs per pass of the noise loops (their four float32 scratch arrays, 8 KB, stay in
# L1; blocks of 128 were 1.5x slower from loop overheads).
NOISE_BLOCK = 512


# exp(-GAUSS_K G^2 t^2) has FWHM G Hz (gabaapp.simulate.lines._GAUSS_K, restated here: numba's
# cache does not see other files); EXP_FLOOR as lines.EXP_FLOOR.
GAUSS_K = math.pi**2 / (4.0 * math.log(2.0))
EXP_FLOOR = -60.0

__all__ = [
    "AVAILABLE",
    "add_lines",
    "add_noise",
    "grid_fids",
    "grid_nuisances",
    "fill_normal_pairs",
    "metabolite_fids",
]


def _metabolite_fids(
    basis,
    decays,
    levels,
    conc,
    lorentz,
    gauss,
    shift,
    phase0_deg,
    onoff_shift,
    onoff_phase_deg,
    onoff_gain,
    t,
    block,
    clean_off,
    clean_on,
    off,
    on,
    flags,
):
    """Write the metabolite FIDs of n spectra (outputs: complex [n, T] as float32 [n, 2T]
    views, real and imaginary parts interleaved):

    clean_off = (sum_m conc[i, m] basis[m, :T] d[levels[i, m]]) x f_a,
    clean_on = (sum_m conc[i, m] basis[m, T:] d[levels[i, m]]) x f_a,
    off = clean_off (flags[0]), on = (ON sum) x f_b x (1 + onoff_gain[i]) (flags[1]),
    where f_a = exp(i phase0 + (-pi lorentz + 2 pi i shift) t) x the Gaussian envelope
    exp(-(pi gauss t)^2 / (4 ln 2)) (`lines.voigt_envelope`), and f_b the same with the ON/OFF
    mismatch added to shift and phase0 (f_b = f_a where both are zero). The exponential of a
    linear function of t is made from its separable parts hi[q] lo[r] at t = q block + r
    (`lines.exp_linear`). `basis` is float32 [n_met, 4T] (OFF then ON of each basis row,
    interleaved), `decays` float32 [K, 4T] the extra per-metabolite Lorentzian decays d[k]
    on the same layout (K = 1: none, levels unused); parameters are float32 [n]; float32 arithmetic as the torch code. Loops run
    over contiguous float32 so that LLVM vectorises them.
    """
    n = conc.shape[0]
    work = metabolite_scratch(t, clean_off.shape[1], block)
    for i in range(n):
        metabolite_row(
            i,
            basis,
            decays,
            levels,
            conc,
            lorentz,
            gauss,
            shift,
            phase0_deg,
            onoff_shift,
            onoff_phase_deg,
            onoff_gain,
            t,
            block,
            work,
            clean_off[i],
            clean_on[i],
            off[i],
            on[i],
            flags[0],
            flags[1],
        )


def _metabolite_scratch(t, t2, block):
    """Return the work arrays of metabolite_row (float32): OFF then ON basis sums [2 t2], the
    factor [t2], Gaussian envelope and exp scratch [T], t^2 [T], hi and lo parts."""
    tt = t2 // 2
    t_sq = np.empty(tt, dtype=np.float32)
    for j in range(tt):
        t_sq[j] = t[j] * t[j]
    return (
        np.empty(2 * t2, dtype=np.float32),
        np.empty(t2, dtype=np.float32),
        np.empty(tt, dtype=np.float32),
        np.empty(tt, dtype=np.float32),
        t_sq,
        np.empty(2 * (tt // block), dtype=np.float32),
        np.empty(2 * block, dtype=np.float32),
    )


def _metabolite_row(
    i,
    basis,
    decays,
    levels,
    conc,
    lorentz,
    gauss,
    shift,
    phase0_deg,
    onoff_shift,
    onoff_phase_deg,
    onoff_gain,
    t,
    block,
    work,
    clean_off,
    clean_on,
    off,
    on,
    write_off,
    write_on,
):
    """Write spectrum i's FIDs of metabolite_fids into the rows clean_off, clean_on, off, on
    (float32 [2T] each; off / on only where write_off / write_on); `work` from
    metabolite_scratch."""
    m = conc.shape[1]
    t2 = clean_off.shape[0]
    tt = t2 // 2
    n_blocks = tt // block
    acc, fac, env, scratch, t_sq, hi, lo = work
    f = np.float32
    deg = f(math.pi / 180.0)
    if decays.shape[0] == 1:  # one linewidth level: the basis as it is
        c = conc[i, 0]
        for j in range(2 * t2):
            acc[j] = c * basis[0, j]
        for k in range(1, m):
            c = conc[i, k]
            for j in range(2 * t2):
                acc[j] += c * basis[k, j]
    else:
        # metabolite k broadened by level levels[i, k]: basis x decay, the same float32
        # products as a stored pre-broadened copy, without 5x the basis in the cache
        lv, c = levels[i, 0], conc[i, 0]
        for j in range(2 * t2):
            acc[j] = c * (basis[0, j] * decays[lv, j])
        for k in range(1, m):
            lv, c = levels[i, k], conc[i, k]
            for j in range(2 * t2):
                acc[j] += c * (basis[k, j] * decays[lv, j])
    g = gauss[i]
    has_env = g != f(0.0)
    if has_env:
        gauss_exp(f(-GAUSS_K) * (g * g), t_sq, env, scratch)
    phase_a = phase0_deg[i] * deg
    decay_row(lorentz[i], shift[i], phase_a, t, hi, lo)
    factor_row(hi, lo, env, has_env, n_blocks, block, fac)
    for j in range(tt):
        fr, fi = fac[2 * j], fac[2 * j + 1]
        ar, ai = acc[2 * j], acc[2 * j + 1]
        clean_off[2 * j] = ar * fr - ai * fi
        clean_off[2 * j + 1] = ar * fi + ai * fr
        br, bi = acc[t2 + 2 * j], acc[t2 + 2 * j + 1]
        clean_on[2 * j] = br * fr - bi * fi
        clean_on[2 * j + 1] = br * fi + bi * fr
    if write_off:
        for j in range(t2):
            off[j] = clean_off[j]
    if write_on:
        gain = f(1.0) + onoff_gain[i]
        if onoff_shift[i] != f(0.0) or onoff_phase_deg[i] != f(0.0):
            phase_b = phase_a + onoff_phase_deg[i] * deg
            decay_row(lorentz[i], shift[i] + onoff_shift[i], phase_b, t, hi, lo)
            factor_row(hi, lo, env, has_env, n_blocks, block, fac)
            for j in range(tt):
                fr, fi = fac[2 * j], fac[2 * j + 1]
                br, bi = acc[t2 + 2 * j], acc[t2 + 2 * j + 1]
                on[2 * j] = (br * fr - bi * fi) * gain
                on[2 * j + 1] = (br * fi + bi * fr) * gain
        else:
            for j in range(t2):
                on[j] = clean_on[j] * gain


def _gauss_exp(coef, t_sq, env, scratch):
    """Write env[j] = exp(max(coef t_sq[j], EXP_FLOOR)) (float32; coef <= 0) by a
    vectorisable float32 exp: x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, exact
    products), exp(r) by its Taylor series to r^7 (truncation < 4e-9 relative) and 2^k written
    as a float's exponent bits; within 2 ulp of libm's expf."""
    f = np.float32
    tt = t_sq.shape[0]
    bits = scratch.view(np.int32)
    for j in range(tt):
        x = max(coef * t_sq[j], f(EXP_FLOOR))
        k = f(math.floor(x * f(1.4426950408889634) + f(0.5)))
        r = (x - k * f(0.693145751953125)) - k * f(1.428606765330187e-06)
        p = f(1.0 / 5040) * r + f(1.0 / 720)
        p = p * r + f(1.0 / 120)
        p = p * r + f(1.0 / 24)
        p = p * r + f(1.0 / 6)
        p = p * r + f(0.5)
        p = p * r + f(1.0)
        env[j] = p * r + f(1.0)
        bits[j] = (np.int32(k) + np.int32(127)) << 23
    for j in range(tt):
        env[j] *= scratch[j]


def _decay_row(lorentz, shift, phase, t, hi, lo):
    """Write the two parts of exp(i phase + (-pi L + 2 pi i shift) t) (`lines.exp_linear_parts`)
    of one spectrum: hi[q] at t = q B dt (no phase) and lo[r] at t = r dt (with the phase),
    B = lo.shape[0] // 2, dt = t[1]; hi, lo are float32 [2 n_blocks], [2 B] (complex,
    interleaved). Each part by a float64 recurrence z_{k+1} = z_k w (~1e-15 relative after
    <= 64 steps; libm's exp, cos and sin per point cost ~3 us per spectrum): the torch code's
    values to float32 rounding (its float32 angles, up to ~100 rad, are the larger error)."""
    n_blocks, block = hi.shape[0] // 2, lo.shape[0] // 2
    dt = np.float64(t[1]) if t.shape[0] > 1 else 1.0
    decay = -math.pi * np.float64(lorentz) * dt
    turn = 2.0 * math.pi * np.float64(shift) * dt
    mag = math.exp(decay)
    wr, wi = mag * math.cos(turn), mag * math.sin(turn)
    zr, zi = math.cos(np.float64(phase)), math.sin(np.float64(phase))
    for r in range(block):
        lo[2 * r] = zr
        lo[2 * r + 1] = zi
        zr, zi = zr * wr - zi * wi, zr * wi + zi * wr
    mag = math.exp(decay * block)
    wr, wi = mag * math.cos(turn * block), mag * math.sin(turn * block)
    zr, zi = 1.0, 0.0
    for q in range(n_blocks):
        hi[2 * q] = zr
        hi[2 * q + 1] = zi
        zr, zi = zr * wr - zi * wi, zr * wi + zi * wr


def _factor_row(hi, lo, env, has_env, n_blocks, block, fac):
    """Write fac (float32 [2T], interleaved) = hi[q] lo[r] at t = q B + r, x env[t] (in the
    same pass: the float32 product is rounded before the envelope multiplies it, as in two)."""
    for q in range(n_blocks):
        hr, hm = hi[2 * q], hi[2 * q + 1]
        base = 2 * q * block
        if has_env:
            for r in range(block):
                lr, lm = lo[2 * r], lo[2 * r + 1]
                e = env[q * block + r]
                fac[base + 2 * r] = (hr * lr - hm * lm) * e
                fac[base + 2 * r + 1] = (hr * lm + hm * lr) * e
        else:
            for r in range(block):
                lr, lm = lo[2 * r], lo[2 * r + 1]
                fac[base + 2 * r] = hr * lr - hm * lm
                fac[base + 2 * r + 1] = hr * lm + hm * lr


def _add_noise(fid, seed, sigma_rel, first_weight, noise_scale, out):
    """Write out = fid + s z (fid, out: float32 [n, 2T] views of complex FIDs; z: real and
    imaginary N(0, 1) draws interleaved, spectrum i taking pairs i T ... (i + 1) T - 1 of the
    stream `seed` of gabaapp.simulate.noise) with the paper's s = sigma_rel[i] x max|fid[i]|
    (first sample divided by first_weight: the unweighted FID's maximum) x noise_scale.
    `out` may be `fid` itself."""
    n, t2 = fid.shape
    z = np.empty(t2, dtype=np.float32)
    power = np.empty(t2 // 2, dtype=np.float32)
    for i in range(n):
        noise_row(
            fid[i], seed, i * (t2 // 2), sigma_rel[i], first_weight, noise_scale, z, power, out[i]
        )


def _noise_row(fid, seed, start, sigma_rel, first_weight, noise_scale, z, power, out):
    """Write out = fid + s z for one FID row (float32 [2T]; add_noise), z from pairs start ...
    of stream `seed`; z [2T] and power [T] are work arrays. `out` may be `fid`."""
    t2 = fid.shape[0]
    w2 = np.float32(first_weight) * np.float32(first_weight)
    scale = np.float32(noise_scale)
    bits = power.view(np.int32)
    for j in range(t2 // 2):
        re, im = fid[2 * j], fid[2 * j + 1]
        power[j] = re * re + im * im
    power[0] = power[0] / w2
    # max of non-negative floats as the max of their int32 patterns (vectorises; see
    # gabaapp.preproc.kernels.grid_rows)
    top = np.int32(0)
    for j in range(t2 // 2):
        top = max(top, bits[j])
    bits[0] = top
    s = sigma_rel * np.float32(math.sqrt(power[0]))
    if scale != np.float32(1.0):
        s = s * scale
    fill_normal_pairs(seed, start, z)
    for j in range(t2):
        out[j] = fid[j] + z[j] * s


def _add_lines(hi, lo, live, keep, first_weight, out):
    """Add to out[i, :keep] (float32 [n, 2T] view of complex FIDs) the lines k with live[i, k]:
    hi[i, k, q] lo[i, k, r] at sample q B + r (`lines.exp_linear_parts`; hi, lo float32
    [n, K, 2 n_blocks], [n, K, 2 B]), the first sample weighted by first_weight."""
    n, k_lines = live.shape
    n_blocks, block = hi.shape[2] // 2, lo.shape[2] // 2
    w = np.float32(first_weight) - np.float32(1.0)
    for i in range(n):
        for k in range(k_lines):
            if not live[i, k]:
                continue
            for q in range(n_blocks):
                hr, hm = hi[i, k, 2 * q], hi[i, k, 2 * q + 1]
                base = 2 * q * block
                for r in range(min(block, keep - q * block)):
                    lr, lm = lo[i, k, 2 * r], lo[i, k, 2 * r + 1]
                    out[i, base + 2 * r] += hr * lr - hm * lm
                    out[i, base + 2 * r + 1] += hr * lm + hm * lr
            # first-point weight: the line's sample 0 (hi[0] lo[0]) counts first_weight times
            re = hi[i, k, 0] * lo[i, k, 0] - hi[i, k, 1] * lo[i, k, 1]
            im = hi[i, k, 0] * lo[i, k, 1] + hi[i, k, 1] * lo[i, k, 0]
            out[i, 0] += w * re
            out[i, 1] += w * im


def _uniform_pairs(seed, start, nb, u1, u2):
    """Write the two uniforms (float32) of SplitMix64 outputs start ... start + nb - 1 of
    `seed`: u1 = (high 32 bits + 1/2) / 2^32, u2 = low 32 bits / 2^32."""
    for k in range(nb):
        z = np.uint64(seed) + (np.uint64(start + k) + np.uint64(1)) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
        u1[k] = np.float32((np.float64(z >> np.uint64(32)) + 0.5) * TWO_M32)
        u2[k] = np.float32(np.float64(z & np.uint64(0xFFFFFFFF)) * TWO_M32)


def _radii(nb, u1, expo, radius):
    """Write radius = sqrt(-2 ln u1) for u1 in (0, 1] (float32): u1 = m 2^e (bits split in
    place, u1 is overwritten by m), ln u1 = e ln 2 + 2 atanh((m - 1) / (m + 1)) with m in
    [1/sqrt 2, sqrt 2], the atanh series to s^9 (truncation < 1e-9 relative)."""
    f = np.float32
    bits = u1.view(np.int32)
    for k in range(nb):
        b = bits[k]
        expo[k] = f((b >> 23) - 127)
        bits[k] = (b & 0x7FFFFF) | 0x3F800000
    for k in range(nb):
        m = u1[k]
        e = expo[k]
        big = m > f(SQRT2)
        m = m * f(0.5) if big else m
        e = e + f(1.0) if big else e
        s = (m - f(1.0)) / (m + f(1.0))
        s2 = s * s
        series = f(1.0 / 5) + s2 * (f(1.0 / 7) + s2 * f(1.0 / 9))
        ln_m = f(2.0) * s * (f(1.0) + s2 * (f(1.0 / 3) + s2 * series))
        radius[k] = math.sqrt(f(-2.0) * (e * f(LN2) + ln_m))


def _pairs(nb, u2, radius, out):
    """Write out[2k], out[2k + 1] = radius (cos, sin)(2 pi u2[k]) (float32), the angle reduced
    to phi in [-pi/4, pi/4] plus q quarter turns, Taylor series to phi^9 / phi^10 (truncation
    < 2e-9). (Indices without an offset: with one, LLVM did not vectorise the loop.)"""
    f = np.float32
    for k in range(nb):
        u = u2[k]
        q = math.floor(f(4.0) * u + f(0.5))
        phi = f(TWO_PI) * (u - f(0.25) * q)
        p = phi * phi
        sn = f(1.0 / 120) - p * (f(1.0 / 5040) - p * f(1.0 / 362880))
        sn = phi * (f(1.0) - p * (f(1.0 / 6) - p * sn))
        cs = f(1.0 / 720) - p * (f(1.0 / 40320) - p * f(1.0 / 3628800))
        cs = f(1.0) - p * (f(0.5) - p * (f(1.0 / 24) - p * cs))
        quarter = np.int32(q) & 3
        swap = (quarter & 1) == 1
        a = sn if swap else cs
        b = cs if swap else sn
        a = -a if (quarter == 1 or quarter == 2) else a
        b = -b if quarter >= 2 else b
        r = radius[k]
        out[2 * k] = r * a
        out[2 * k + 1] = r * b


def _fill_normal_pairs(seed, start, out):
    """Write normals 2 start ... of stream `seed` (gabaapp.simulate.noise) into out (float32
    [2 n_pairs]); the values of noise.normal_pairs(seed, start, n_pairs) to float32 rounding
    (float32 arithmetic here, 16 lanes per vector: < 1e-6 apart)."""
    n_pairs = out.shape[0] // 2
    u1 = np.empty(NOISE_BLOCK, dtype=np.float32)
    u2 = np.empty(NOISE_BLOCK, dtype=np.float32)
    expo = np.empty(NOISE_BLOCK, dtype=np.float32)
    radius = np.empty(NOISE_BLOCK, dtype=np.float32)
    for b0 in range(0, n_pairs, NOISE_BLOCK):
        nb = min(NOISE_BLOCK, n_pairs - b0)
        uniform_pairs(seed, start + b0, nb, u1, u2)
        radii(nb, u1, expo, radius)
        pairs(nb, u2, radius, out[2 * b0 : 2 * (b0 + nb)])


gauss_exp = jit(_gauss_exp)
decay_row = jit(_decay_row)
factor_row = jit(_factor_row)
add_lines = jit(_add_lines)


metabolite_scratch = jit(_metabolite_scratch)
metabolite_row = jit(_metabolite_row)
metabolite_fids = jit(_metabolite_fids)
noise_row = jit(_noise_row)
add_noise = jit(_add_noise)
uniform_pairs = jit(_uniform_pairs)
radii = jit(_radii)
pairs = jit(_pairs)
fill_normal_pairs = jit(_fill_normal_pairs)


def _rotate_into(re, im, count, phase, step, out_re, out_im):
    """Write out = (re + i im) exp(i (phase + step j)) for j < count (float64 scalars in, float64
    arrays out) by the recurrence z_{j+1} = z_j w, w = exp(i step): ~1e-15 relative after the
    few hundred steps used here, without a cos and sin per sample."""
    zr, zi = (
        re * math.cos(phase) - im * math.sin(phase),
        re * math.sin(phase) + im * math.cos(phase),
    )
    wr, wi = math.cos(step), math.sin(step)
    for j in range(count):
        out_re[j] = zr
        out_im[j] = zi
        zr, zi = zr * wr - zi * wi, zr * wi + zi * wr


def _grid_nuisances(
    conc,
    shift,
    phase0_deg,
    onoff_shift,
    onoff_phase_deg,
    onoff_gain,
    mm_amplitude,
    coedited_fraction,
    baseline_amplitude,
    base_ppm,
    base_gauss,
    base_phase,
    base_height,
    water_amplitude,
    water_ppm,
    water_lorentz,
    water_phase,
    water_ratio,
    mm_t,
    co_t,
    consts,
    sizes,
    off,
    on,
):
    """Add the grid path's nuisances to the FIDs off / on (float32 [n, 2T] views, in place):
    MM (template mm_t x mm_amplitude x scale), baseline lines (Gaussian, random: base_* [n, K],
    K = 0 for none) and, on ON, the co-edited MM (co_t x its height), all rotated by each
    acquisition's shift and zero-order phase (ON: + ON/OFF mismatch, x (1 + onoff_gain)); and
    the residual water line (Lorentzian) in each acquisition's frame, ON x water_ratio x
    (1 + onoff_gain). The same lines as SpectrumGenerator._add_broad_grid and _add_lines
    (values equal to float32 rounding).

    consts (float64): centre_ppm, f0_mhz, dwell_s, first_weight, reference height, co-edited
    height per (fraction / (1 - fraction)) x mm_amplitude x conc_scale (no MM, no co-edited
    MM); sizes (int64): broad keep, baseline keep, water keep, water block. mm_t, co_t: float32 [2 keep] interleaved templates.
    """
    work = nuisance_scratch(sizes)
    for i in range(conc.shape[0]):
        nuisance_row(
            i,
            conc,
            shift,
            phase0_deg,
            onoff_shift,
            onoff_phase_deg,
            onoff_gain,
            mm_amplitude,
            coedited_fraction,
            baseline_amplitude,
            base_ppm,
            base_gauss,
            base_phase,
            base_height,
            water_amplitude,
            water_ppm,
            water_lorentz,
            water_phase,
            water_ratio,
            mm_t,
            co_t,
            consts,
            sizes,
            work,
            off[i],
            on[i],
        )


def _nuisance_scratch(sizes):
    """Return the work arrays of nuisance_row: float64 (broad sum re, im, rotation re, im
    [keep], baseline envelope [baseline keep]) and the water line's lo part (float32)."""
    keep, kb, block_w = sizes[0], sizes[1], sizes[3]
    f64 = (np.empty(keep), np.empty(keep), np.empty(keep), np.empty(keep), np.empty(kb))
    return f64, np.empty(2 * block_w, dtype=np.float32)


def _nuisance_row(
    i,
    conc,
    shift,
    phase0_deg,
    onoff_shift,
    onoff_phase_deg,
    onoff_gain,
    mm_amplitude,
    coedited_fraction,
    baseline_amplitude,
    base_ppm,
    base_gauss,
    base_phase,
    base_height,
    water_amplitude,
    water_ppm,
    water_lorentz,
    water_phase,
    water_ratio,
    mm_t,
    co_t,
    consts,
    sizes,
    work,
    off,
    on,
):
    """Add spectrum i's nuisances of grid_nuisances to the FID rows off / on (float32 [2T],
    in place); `work` from nuisance_scratch."""
    m = conc.shape[1]
    centre, f0, dwell, fw, ref_height, co_unit = (
        consts[0],
        consts[1],
        consts[2],
        consts[3],
        consts[4],
        consts[5],
    )
    keep, kb, keep_w, block_w = sizes[0], sizes[1], sizes[2], sizes[3]
    n_lines = base_ppm.shape[1]
    two_pi = 2.0 * math.pi
    deg = math.pi / 180.0
    n_hi = (keep_w + block_w - 1) // block_w
    (bo_re, bo_im, rot_re, rot_im, env), lo_w = work
    conc_scale = conc[i, 0]
    for k in range(1, m):
        conc_scale = max(conc_scale, conc[i, k])
    scale = np.float64(np.float32(conc_scale * np.float32(ref_height)))
    mm = np.float64(mm_amplitude[i]) * scale
    for j in range(keep):
        bo_re[j] = mm * mm_t[2 * j]
        bo_im[j] = mm * mm_t[2 * j + 1]
    height_b = np.float64(baseline_amplitude[i]) * scale
    for k in range(n_lines):
        g = np.float64(base_gauss[i, k])
        gk = -GAUSS_K * g * g
        # exp(max(gk t_j^2, EXP_FLOOR)) with t_j = j dt by the recurrence e_{j+1} = e_j r_j,
        # r_{j+1} = r_j exp(2 gk dt^2) (float64, a few dozen steps: ~1e-14 relative; libm's
        # exp per sample cost ~2 us per spectrum); the floor as a floor on the value
        a = gk * dwell * dwell
        e, ratio, ratio_step = 1.0, math.exp(a), math.exp(2.0 * a)
        floor = math.exp(EXP_FLOOR)
        total = 0.0
        for j in range(kb):
            env[j] = max(e, floor)
            total += env[j]
            e *= ratio
            ratio *= ratio_step
        total += (fw - 1.0) * env[0]
        env[0] *= fw
        amp = np.float64(base_height[i, k]) * height_b / max(total, 1e-12)
        offset = (np.float64(base_ppm[i, k]) - centre) * f0
        step = two_pi * offset * dwell
        rotate_into(amp, 0.0, kb, np.float64(base_phase[i, k]), step, rot_re, rot_im)
        for j in range(kb):
            bo_re[j] += env[j] * rot_re[j]
            bo_im[j] += env[j] * rot_im[j]
    co = 0.0
    frac = np.float64(coedited_fraction[i])
    if frac > 0.0:
        # co_unit is per unit MM amplitude: the co-edited MM scales with the MM pool
        co = frac / (1.0 - frac) * co_unit * np.float64(mm_amplitude[i]) * conc_scale
    sh_off = np.float64(shift[i])
    ph_off = np.float64(phase0_deg[i]) * deg
    sh_on = sh_off + np.float64(onoff_shift[i])
    ph_on = (np.float64(phase0_deg[i]) + np.float64(onoff_phase_deg[i])) * deg
    gain = 1.0 + np.float64(onoff_gain[i])
    # OFF: (MM + baseline) rotated; ON: + co-edited MM, rotated and x gain
    rotate_into(1.0, 0.0, keep, ph_off, two_pi * sh_off * dwell, rot_re, rot_im)
    for j in range(keep):
        off[2 * j] += np.float32(bo_re[j] * rot_re[j] - bo_im[j] * rot_im[j])
        off[2 * j + 1] += np.float32(bo_re[j] * rot_im[j] + bo_im[j] * rot_re[j])
    rotate_into(gain, 0.0, keep, ph_on, two_pi * sh_on * dwell, rot_re, rot_im)
    for j in range(keep):
        br = bo_re[j] + co * co_t[2 * j]
        bi = bo_im[j] + co * co_t[2 * j + 1]
        on[2 * j] += np.float32(br * rot_re[j] - bi * rot_im[j])
        on[2 * j + 1] += np.float32(br * rot_im[j] + bi * rot_re[j])
    # residual water: a Lorentzian line, peak height x scale, in each frame
    height_w = np.float64(water_amplitude[i]) * scale
    if height_w == 0.0:
        return
    lw = np.float64(water_lorentz[i])
    decay = -math.pi * dwell * lw
    if decay < 0.0:
        env_sum = math.expm1(decay * keep_w) / min(math.expm1(decay), -1e-300)
    else:
        env_sum = np.float64(keep_w)
    env_sum = max(env_sum - (1.0 - fw), 1e-12)
    base_w = (np.float64(water_ppm[i]) - centre) * f0
    for acq in range(2):
        if acq == 0:
            h, sh, ph, out = height_w, sh_off, ph_off, off
        else:
            h = height_w * np.float64(water_ratio[i]) * gain
            sh, ph, out = sh_on, ph_on, on
        amp = h / env_sum
        turn = two_pi * (base_w + sh) * dwell
        mag = math.exp(decay)
        # lo[r] = amp exp(i ph) w^r, hi[q] = w^(q B); w = exp(decay + i turn) per sample
        lr = amp * math.cos(np.float64(water_phase[i]) + ph)
        li = amp * math.sin(np.float64(water_phase[i]) + ph)
        wr, wi = mag * math.cos(turn), mag * math.sin(turn)
        for r in range(block_w):
            lo_w[2 * r] = np.float32(lr)
            lo_w[2 * r + 1] = np.float32(li)
            lr, li = lr * wr - li * wi, lr * wi + li * wr
        big_mag = math.exp(decay * block_w)
        big_r, big_i = big_mag * math.cos(turn * block_w), big_mag * math.sin(turn * block_w)
        hr, hm = 1.0, 0.0
        for q in range(n_hi):
            fr, fm = np.float32(hr), np.float32(hm)
            base = 2 * q * block_w
            for r in range(min(block_w, keep_w - q * block_w)):
                a, b = lo_w[2 * r], lo_w[2 * r + 1]
                out[base + 2 * r] += fr * a - fm * b
                out[base + 2 * r + 1] += fr * b + fm * a
            hr, hm = hr * big_r - hm * big_i, hr * big_i + hm * big_r
        # first-point weight: the line's sample 0 counts first_weight times
        out[0] += np.float32((fw - 1.0) * np.float64(lo_w[0]))
        out[1] += np.float32((fw - 1.0) * np.float64(lo_w[1]))


rotate_into = jit(_rotate_into)
nuisance_scratch = jit(_nuisance_scratch)
nuisance_row = jit(_nuisance_row)
grid_nuisances = jit(_grid_nuisances)


def _first_order_rows(rows_a, rows_b, deg_per_ppm, moved_ppm, pivot_ppm, ppm_low, step_ppm, block):
    """Rotate network-input rows [n, 4, W] (Im, Re of OFF, then of ON) of rows_a and, when it
    has W columns, rows_b in place by the first-order phase at grid ppm_low + step_ppm j:
    angle_j = rate (ppm_j - moved_ppm[i] - pivot_ppm), rate = deg_per_ppm[i] in rad/ppm
    (`generator.rotate_first_order`; Re' = Re c - Im s, Im' = Im c + Re s). The factor is
    made from separable parts exp(i rate step q B) exp(i (rate step r + angle_0)),
    j = q B + r (float64 recurrences, products in float32)."""
    n, width = rows_a.shape[0], rows_a.shape[2]
    both = rows_b.shape[2] == width
    n_blocks = width // block
    hi = np.empty(2 * n_blocks, dtype=np.float32)
    lo = np.empty(2 * block, dtype=np.float32)
    fac = np.empty(2 * width, dtype=np.float32)
    unit_t = np.arange(2, dtype=np.float32)  # a time axis of step 1: angles per grid column
    for i in range(n):
        rate = np.float64(deg_per_ppm[i]) * (math.pi / 180.0)
        start = np.float64(moved_ppm[i]) + pivot_ppm
        step = rate * step_ppm
        first = rate * (ppm_low - start)
        # exp(i step q B) and exp(i (first + step r)) by recurrences (as decay_row)
        decay_row(0.0, step / (2.0 * math.pi), first, unit_t, hi, lo)
        for q in range(n_blocks):
            hr, hm = hi[2 * q], hi[2 * q + 1]
            base = 2 * q * block
            for r in range(block):
                lr, lm = lo[2 * r], lo[2 * r + 1]
                fac[base + 2 * r] = hr * lr - hm * lm
                fac[base + 2 * r + 1] = hr * lm + hm * lr
        for pair in range(0, 4, 2):
            for j in range(width):
                c, s = fac[2 * j], fac[2 * j + 1]
                im, re = rows_a[i, pair, j], rows_a[i, pair + 1, j]
                rows_a[i, pair + 1, j] = re * c - im * s
                rows_a[i, pair, j] = im * c + re * s
            if both:
                for j in range(width):
                    c, s = fac[2 * j], fac[2 * j + 1]
                    im, re = rows_b[i, pair, j], rows_b[i, pair + 1, j]
                    rows_b[i, pair + 1, j] = re * c - im * s
                    rows_b[i, pair, j] = im * c + re * s


first_order_rows = jit(_first_order_rows)


def _grid_fids(
    basis,
    decays,
    levels,
    conc,
    lorentz,
    gauss,
    shift,
    phase0_deg,
    onoff_shift,
    onoff_phase_deg,
    onoff_gain,
    t,
    block,
    mm_amplitude,
    coedited_fraction,
    baseline_amplitude,
    base_ppm,
    base_gauss,
    base_phase,
    base_height,
    water_amplitude,
    water_ppm,
    water_lorentz,
    water_phase,
    water_ratio,
    mm_t,
    co_t,
    consts,
    sizes,
    seeds,
    noise_off,
    noise_on,
    noise_scale,
    clean_off,
    clean_on,
    off,
    on,
):
    """Write all four FIDs of the grid path's augmented spectra, one spectrum at a time while
    its rows are in cache: metabolite_fids (clean_off, clean_on), then, in work rows, the
    same metabolites with grid_nuisances' lines added, and add_noise's noise into off / on
    (streams seeds[0] for OFF and seeds[1] for ON, spectrum i at pairs i T ...). The same
    arithmetic in the same order as those three calls in turn (same values)."""
    n = conc.shape[0]
    t2 = clean_off.shape[1]
    work = metabolite_scratch(t, t2, block)
    work_n = nuisance_scratch(sizes)
    row_off = np.empty(t2, dtype=np.float32)
    row_on = np.empty(t2, dtype=np.float32)
    z = np.empty(t2, dtype=np.float32)
    power = np.empty(t2 // 2, dtype=np.float32)
    fw = consts[3]
    for i in range(n):
        metabolite_row(
            i,
            basis,
            decays,
            levels,
            conc,
            lorentz,
            gauss,
            shift,
            phase0_deg,
            onoff_shift,
            onoff_phase_deg,
            onoff_gain,
            t,
            block,
            work,
            clean_off[i],
            clean_on[i],
            row_off,
            row_on,
            True,
            True,
        )
        nuisance_row(
            i,
            conc,
            shift,
            phase0_deg,
            onoff_shift,
            onoff_phase_deg,
            onoff_gain,
            mm_amplitude,
            coedited_fraction,
            baseline_amplitude,
            base_ppm,
            base_gauss,
            base_phase,
            base_height,
            water_amplitude,
            water_ppm,
            water_lorentz,
            water_phase,
            water_ratio,
            mm_t,
            co_t,
            consts,
            sizes,
            work_n,
            row_off,
            row_on,
        )
        start = i * (t2 // 2)
        noise_row(row_off, seeds[0], start, noise_off[i], fw, noise_scale, z, power, off[i])
        noise_row(row_on, seeds[1], start, noise_on[i], fw, noise_scale, z, power, on[i])


grid_fids = jit(_grid_fids)
