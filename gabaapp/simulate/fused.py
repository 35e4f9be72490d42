"""Fused CPU loops of the synthesiser (numba, optional; see gabaapp.preproc.kernels).

On CPU the generator's time-domain work was a chain of torch passes over [n, T] complex arrays
(basis sum by a dense matrix product with mostly zero coefficients when each metabolite picks
one of several pre-broadened basis copies, the separable decay-and-rotation factor as an
outer product, its Gaussian envelope, the products with OFF and ON, a copy before the
nuisances, the noise's max |FID| and the noise sum). Here each spectrum's metabolite FIDs are
made in one pass that reads only the basis rows it uses, and the noise in one pass per
acquisition. Same arithmetic as the torch code (values equal to float32 rounding: summation
order and fused multiply-adds differ); `AVAILABLE` is False without numba and the generator
keeps its torch code.
"""

from __future__ import annotations

import math

import numpy as np

from gabaapp.preproc.kernels import AVAILABLE, jit

__all__ = ["AVAILABLE", "add_lines", "add_noise", "decay_parts", "metabolite_fids"]


def _metabolite_fids(
    basis, rows, conc, hi_a, lo_a, hi_b, lo_b, env, gain, clean_off, clean_on, off, on, flags
):
    """Write the metabolite FIDs of n spectra (outputs: complex [n, T] as float32 [n, 2T]
    views, real and imaginary parts interleaved):

    clean_off = (sum_m conc[i, m] basis[rows[i, m], :T]) x f_a,
    clean_on = (sum_m conc[i, m] basis[rows[i, m], T:]) x f_a,
    off = clean_off (flags[0]), on = (ON sum) x f_b x gain[i] (flags[1]),
    where f_x[q B + r] = hi_x[i, q] lo_x[i, r] (x env[i, q B + r] when env has T columns) is the
    separable decay-and-rotation factor (`lines.exp_linear`); f_b = f_a unless flags[2].
    `basis` is float32 [rows, 4T] (OFF then ON of each basis row, interleaved), hi_x / lo_x
    are float32 views [n, 2 n_blocks] / [n, 2 B] of complex arrays. Loops run over contiguous
    float32 so that LLVM vectorises them.
    """
    n, m = conc.shape
    t2 = clean_off.shape[1]
    t = t2 // 2
    n_blocks, block = hi_a.shape[1] // 2, lo_a.shape[1] // 2
    has_env = env.shape[1] == t
    write_off, write_on, own_b = flags[0], flags[1], flags[2]
    acc = np.empty(2 * t2, dtype=np.float32)  # OFF then ON basis sums of one spectrum
    fac = np.empty(t2, dtype=np.float32)
    for i in range(n):
        row, c = rows[i, 0], conc[i, 0]
        for j in range(2 * t2):
            acc[j] = c * basis[row, j]
        for k in range(1, m):
            row, c = rows[i, k], conc[i, k]
            for j in range(2 * t2):
                acc[j] += c * basis[row, j]
        _factor(hi_a, lo_a, env, i, n_blocks, block, has_env, fac)
        for j in range(t):
            fr, fi = fac[2 * j], fac[2 * j + 1]
            ar, ai = acc[2 * j], acc[2 * j + 1]
            clean_off[i, 2 * j] = ar * fr - ai * fi
            clean_off[i, 2 * j + 1] = ar * fi + ai * fr
            br, bi = acc[t2 + 2 * j], acc[t2 + 2 * j + 1]
            clean_on[i, 2 * j] = br * fr - bi * fi
            clean_on[i, 2 * j + 1] = br * fi + bi * fr
        if write_off:
            for j in range(t2):
                off[i, j] = clean_off[i, j]
        if write_on:
            g = gain[i]
            if own_b:
                _factor(hi_b, lo_b, env, i, n_blocks, block, has_env, fac)
                for j in range(t):
                    fr, fi = fac[2 * j], fac[2 * j + 1]
                    br, bi = acc[t2 + 2 * j], acc[t2 + 2 * j + 1]
                    on[i, 2 * j] = (br * fr - bi * fi) * g
                    on[i, 2 * j + 1] = (br * fi + bi * fr) * g
            else:
                for j in range(t2):
                    on[i, j] = clean_on[i, j] * g


def _factor_loop(hi, lo, env, i, n_blocks, block, has_env, fac):
    """Write fac (float32 [2T], interleaved) = hi[i, q] lo[i, r] at t = q B + r, x env[i, t]."""
    for q in range(n_blocks):
        hr, hm = hi[i, 2 * q], hi[i, 2 * q + 1]
        base = 2 * q * block
        for r in range(block):
            lr, lm = lo[i, 2 * r], lo[i, 2 * r + 1]
            fac[base + 2 * r] = hr * lr - hm * lm
            fac[base + 2 * r + 1] = hr * lm + hm * lr
    if has_env:
        for j in range(n_blocks * block):
            e = env[i, j]
            fac[2 * j] *= e
            fac[2 * j + 1] *= e


def _add_noise(fid, z, sigma_rel, first_weight, noise_scale, out):
    """Write out = fid + s z (fid, out: float32 [n, 2T] views of complex FIDs; z: float32
    [n, 2T], real and imaginary N(0, 1) draws interleaved) with the paper's
    s = sigma_rel[i] x max|fid[i]| (first sample divided by first_weight: the unweighted FID's
    maximum) x noise_scale. `out` may be `fid` itself."""
    n, t2 = fid.shape
    w2 = np.float32(first_weight) * np.float32(first_weight)
    scale = np.float32(noise_scale)
    power = np.empty(t2 // 2, dtype=np.float32)
    bits = power.view(np.int32)
    for i in range(n):
        for j in range(t2 // 2):
            re, im = fid[i, 2 * j], fid[i, 2 * j + 1]
            power[j] = re * re + im * im
        power[0] = power[0] / w2
        # max of non-negative floats as the max of their int32 patterns (vectorises; see
        # gabaapp.preproc.kernels.grid_rows)
        top = np.int32(0)
        for j in range(t2 // 2):
            top = max(top, bits[j])
        bits[0] = top
        s = sigma_rel[i] * np.float32(math.sqrt(power[0]))
        if scale != np.float32(1.0):
            s = s * scale
        for j in range(t2):
            out[i, j] = fid[i, j] + z[i, j] * s


def _decay_parts(lorentz, shift, phase, t, hi, lo):
    """Write the two parts of exp(i phase + (-pi L + 2 pi i shift) t) (`lines.exp_linear_parts`)
    for each spectrum i: hi[i, q] at t[q B] (no phase) and lo[i, r] at t[r] (with the phase),
    B = lo.shape[1] // 2; hi, lo are float32 views [n, 2 n_blocks], [n, 2 B] of complex
    arrays. float32 arithmetic as the torch code (values equal to float32 rounding)."""
    n = lorentz.shape[0]
    n_blocks, block = hi.shape[1] // 2, lo.shape[1] // 2
    two_pi = np.float32(2.0 * math.pi)
    minus_pi = np.float32(-math.pi)
    for i in range(n):
        decay = minus_pi * lorentz[i]
        turn = two_pi * shift[i]
        for q in range(n_blocks):
            tq = t[q * block]
            mag = math.exp(decay * tq)
            angle = turn * tq
            hi[i, 2 * q] = mag * math.cos(angle)
            hi[i, 2 * q + 1] = mag * math.sin(angle)
        for r in range(block):
            tr = t[r]
            mag = math.exp(decay * tr)
            angle = turn * tr + phase[i]
            lo[i, 2 * r] = mag * math.cos(angle)
            lo[i, 2 * r + 1] = mag * math.sin(angle)


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


_factor = jit(_factor_loop)
add_lines = jit(_add_lines)
decay_parts = jit(_decay_parts)


metabolite_fids = jit(_metabolite_fids)
add_noise = jit(_add_noise)
