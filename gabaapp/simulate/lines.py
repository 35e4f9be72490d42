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


def voigt_envelope(
    t_s: torch.Tensor, lorentz_hz: torch.Tensor, gauss_hz: torch.Tensor
) -> torch.Tensor:
    """Return the real decay exp(-pi L t - (pi G t)^2/(4 ln2)), shape lorentz_hz.shape + [T].

    `lorentz_hz` and `gauss_hz` broadcast together; `t_s` is [T].
    """
    lor = lorentz_hz.unsqueeze(-1) * math.pi
    gau = gauss_hz.unsqueeze(-1).square() * _GAUSS_K
    return torch.exp(-(lor * t_s + gau * t_s.square()))


def line_fids(
    t_s: torch.Tensor,
    offset_hz: torch.Tensor,
    lorentz_hz: torch.Tensor,
    gauss_hz: torch.Tensor,
    phase_rad: torch.Tensor,
    height: torch.Tensor,
) -> torch.Tensor:
    """Return the summed FID of K lines per spectrum, complex [n, T].

    All parameters are [n, K]. For broad lines pass only the first samples of the time axis
    (see truncation_points) and treat the rest as zero. `height` is the peak height of each line's spectrum as given by
    gabaapp.spectra.fid_to_spectrum (the sum of its envelope over the samples), so that lines of
    different widths can be given comparable peak heights.
    """
    env = voigt_envelope(t_s, lorentz_hz, gauss_hz)  # [n, K, T]
    # A line's on-resonance spectral value is the sum of its envelope (unnormalised FFT).
    env *= (height / env.sum(dim=-1).clamp_min(1e-12)).unsqueeze(-1)
    angle = torch.addcmul(phase_rad.unsqueeze(-1), offset_hz.unsqueeze(-1), (2.0 * math.pi) * t_s)
    return torch.polar(env, angle).sum(dim=1)


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
