"""Torch building blocks for synthetic FIDs: Voigt decay envelopes and sums of model lines.

A line at offset f Hz with Lorentzian FWHM L and Gaussian FWHM G has the FID
    exp(2j*pi*f*t) * exp(-pi*L*t) * exp(-(pi*G*t)^2 / (4 ln 2)),
whose spectrum is a Voigt profile of those FWHMs (de Graaf, In Vivo NMR Spectroscopy, 3rd ed.,
2019, ch. 1). Signals follow gabaapp.spectra: exp(+2j*pi*f*t) sits at +f Hz.
"""

from __future__ import annotations

import math

import torch

_GAUSS_K = math.pi**2 / (4.0 * math.log(2.0))  # exp(-_GAUSS_K * G^2 t^2) has FWHM G Hz
# Floor of decay exponents: exp(-60) ~ 1e-26 of the line's start is zero for any float32 sum,
# but keeps products clear of subnormal numbers, which made exp/mul ~40x slower on CPU.
EXP_FLOOR = -60.0


def polar(magnitude: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    """Return magnitude * exp(1j * angle_rad) (complex; float32 in, complex64 out).

    Same values as torch.polar, built from real cos/sin written into the real and imaginary
    parts: on CPU torch.polar and complex torch.exp are not vectorised and were 10-40x slower.
    """
    magnitude, angle_rad = torch.broadcast_tensors(magnitude, angle_rad)
    cdtype = torch.complex128 if angle_rad.dtype == torch.float64 else torch.complex64
    out = torch.empty(angle_rad.shape, dtype=cdtype, device=angle_rad.device)
    parts = torch.view_as_real(out)
    torch.mul(torch.cos(angle_rad), magnitude, out=parts[..., 0])
    torch.mul(torch.sin(angle_rad), magnitude, out=parts[..., 1])
    return out


def cexp(z: torch.Tensor) -> torch.Tensor:
    """Return exp(z) for complex z (see polar: faster than torch.exp on CPU)."""
    return polar(torch.exp(z.real), z.imag)


def voigt_envelope(
    t_s: torch.Tensor, lorentz_hz: torch.Tensor, gauss_hz: torch.Tensor
) -> torch.Tensor:
    """Return the real decay exp(-pi L t - (pi G t)^2/(4 ln2)), shape lorentz_hz.shape + [T].

    `lorentz_hz` and `gauss_hz` broadcast together; `t_s` is [T].
    """
    lor, gau = torch.broadcast_tensors(lorentz_hz, gauss_hz)
    lor = (lor * -math.pi).unsqueeze(-1)
    gau = (gau.square() * -_GAUSS_K).unsqueeze(-1)
    # Two passes over the output (fused multiply-add, then exp in place).
    return torch.addcmul(lor * t_s, gau, t_s.square()).clamp_(min=EXP_FLOOR).exp_()


def block_length(n_points: int) -> int:
    """Return the divisor of n_points closest to sqrt(n_points) from above (exp_linear blocks:
    no remainder to concatenate); n_points itself when it is prime."""
    small = max(d for d in range(1, math.isqrt(n_points) + 1) if n_points % d == 0)
    return n_points // small


def exp_linear(rate: torch.Tensor, phase: torch.Tensor, t_s: torch.Tensor, block: int):
    """Return exp(phase + rate * t) for complex `rate`, `phase` [...] and t_s [T] (evenly
    spaced from 0), complex [..., T].

    exp(c (t_hi + t_lo)) = exp(c t_hi) exp(c t_lo): with T = blocks x `block` it costs one
    complex product per point instead of an exp, cos and sin each. The t_hi phases reach
    thousands of radians; float32 exp loses ~1e-7 relative per radian there, i.e. ~1e-5 at the
    end of a 2 s FID at 100 Hz, far below the noise floor.
    """
    total = t_s.shape[0]
    block = max(1, min(block, total))
    hi, lo = exp_linear_parts(rate, phase, t_s, block)
    out = (hi.unsqueeze(-1) * lo.unsqueeze(-2)).flatten(-2)
    rate = rate.unsqueeze(-1)
    if out.shape[-1] < total:  # remainder when T is not a multiple of the block
        tail = cexp(rate * t_s[out.shape[-1] :] + phase.unsqueeze(-1))
        out = torch.cat([out, tail], dim=-1)
    return out


def exp_linear_parts(rate: torch.Tensor, phase: torch.Tensor, t_s: torch.Tensor, block: int):
    """Return (hi [..., T // block], lo [..., block]) with exp(phase + rate t_s[q block + r]) =
    hi[q] lo[r] (see exp_linear, which multiplies them out; 1 <= block <= T)."""
    rate = rate.unsqueeze(-1)
    lo = cexp(rate * t_s[:block] + phase.unsqueeze(-1))
    hi = cexp(rate * t_s[: t_s.shape[0] // block * block : block])
    return hi, lo


def line_fids(
    t_s: torch.Tensor,
    offset_hz: torch.Tensor,
    lorentz_hz: torch.Tensor,
    gauss_hz: torch.Tensor,
    phase_rad: torch.Tensor,
    height: torch.Tensor,
    first_weight: float = 1.0,
) -> torch.Tensor:
    """Return the summed FID of K lines per spectrum, complex [n, T].

    All parameters are [n, K]. For broad lines pass only the first samples of the time axis
    (see truncation_points) and treat the rest as zero. `height` is the peak height of each
    line's spectrum as given by gabaapp.spectra.fid_to_spectrum (the sum of its envelope over
    the samples), so that lines of different widths can be given comparable peak heights.
    `first_weight` multiplies the first sample (and counts so in that sum): the grid-matched
    sampling's first-point match (gabaapp.simulate.generator, sampling "grid").
    """
    if not bool((gauss_hz != 0).any()):
        return _lorentz_line_fids(t_s, offset_hz, lorentz_hz, phase_rad, height, first_weight)
    env = voigt_envelope(t_s, lorentz_hz, gauss_hz)  # [n, K, T]
    if first_weight != 1.0:
        env[..., 0] *= first_weight
    # A line's on-resonance spectral value is the sum of its envelope (unnormalised FFT).
    env *= (height / env.sum(dim=-1).clamp_min(1e-12)).unsqueeze(-1)
    # Phase in cycles reduced modulo 1 first: cos/sin of large arguments take a slow path.
    cycles = torch.addcmul(
        phase_rad.unsqueeze(-1) / (2.0 * math.pi), offset_hz.unsqueeze(-1), t_s
    ).frac_()
    return polar(env, cycles.mul_(2.0 * math.pi)).sum(dim=1)


def _lorentz_line_fids(
    t_s, offset_hz, lorentz_hz, phase_rad, height, first_weight: float = 1.0
) -> torch.Tensor:
    """line_fids for purely Lorentzian lines: a separable complex exponential per line and
    the envelope sum in closed form, sum_j r^j = (1 - r^T) / (1 - r) with r = exp(-pi L dt)."""
    total = t_s.shape[0]
    dwell_s = float(t_s[1] - t_s[0]) if total > 1 else 1.0
    rate, phase, amp = lorentz_line_terms(
        total, dwell_s, offset_hz, lorentz_hz, phase_rad, height, first_weight
    )
    fid = exp_linear(rate, phase, t_s, max(1, int(round(math.sqrt(total)))))
    fid = torch.where((amp != 0).unsqueeze(-1), fid, 0)
    out = fid.sum(dim=1)
    if first_weight != 1.0:
        out[:, 0] *= first_weight
    return out


def lorentz_line_terms(
    total: int, dwell_s: float, offset_hz, lorentz_hz, phase_rad, height, first_weight=1.0
):
    """Return (rate, phase, amp) of Lorentzian lines [n, K] on `total` samples: each line's FID
    is exp(phase + rate t) (see exp_linear), with its peak-height normalisation folded into
    phase as log|amp| (+ i pi for a negative amp); lines with amp == 0 are exactly zero."""
    decay = (-math.pi * dwell_s) * lorentz_hz.double()
    # expm1 keeps the closed form exact for small L dt; L = 0 gives the limit T.
    env_sum = torch.where(
        decay < 0, torch.expm1(decay * total) / torch.expm1(decay).clamp(max=-1e-300), total
    ) - (1.0 - first_weight)
    amp = (height.double() / env_sum.clamp_min(1e-12)).to(height.dtype)
    rate = torch.complex(-math.pi * lorentz_hz, (2.0 * math.pi) * offset_hz)
    # The amplitude enters the exponent as log|amp| (+ pi for a negative one).
    angle = torch.where(amp < 0, phase_rad + math.pi, phase_rad)
    phase = torch.complex(torch.log(amp.abs().clamp_min(1e-30)), angle)
    return rate, phase, amp


def truncation_points(
    lorentz_hz_min: float, gauss_hz_min: float, dwell_s: float, n_points: int, tol: float = 1e-5
) -> int:
    """Return how many samples a line of at least these widths needs before decaying below `tol`.

    Lines with a fast decay are computed on this many samples only and zero-padded (cheap).
    """
    a = math.pi * lorentz_hz_min
    b = _GAUSS_K * gauss_hz_min**2
    c = -math.log(tol)
    if a <= 0 and b <= 0:
        return n_points
    # solve b t^2 + a t = c for t >= 0
    t = c / a if b == 0 else (-a + math.sqrt(a * a + 4 * b * c)) / (2 * b)
    return int(min(n_points, math.ceil(t / dwell_s) + 1))
