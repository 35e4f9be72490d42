"""On-the-fly, batched synthesis of augmented MEGA-PRESS spectra in torch (CPU or GPU).

A spectrum is the basis linear combination sum_m c_m * basis_m for edit-OFF and edit-ON
(paper-notes §2.4), then, when enabled, augmented in the order a scanner would add each effect:

1. line broadening: Voigt decay (Lorentzian + Gaussian FWHM) per spectrum or per metabolite
   (the paper's linewidth augmentation, §2.6, extended to Gaussian/Voigt lines);
2. macromolecules (incl. the co-edited 3.0 ppm MM of GABA+), smooth baseline, residual water;
3. imperfect subtraction: an ON gain error and a different residual water in ON;
4. frequency shift and zero-order phase (ON gets an extra ON/OFF mismatch);
5. first-order phase (linear in ppm about a pivot): applied in the frequency domain to the
   metabolite sum (before steps 1 and 4, with which it commutes to < 0.5 deg in the allowed
   ranges) and as a per-line phase to the model lines of step 2;
6. the paper's noise: sigma ~ U(0, 0.03) x max|FID| per acquisition, complex Gaussian,
   added separately to OFF and ON in the time domain (§2.6).

The network input of both the noisy spectrum (`x`) and its clean copy (`clean`: metabolites only,
with the same line shape, shift and phases, no noise, MM, baseline, water or ON/OFF errors) is
made by `gabaapp.preproc.features.network_input`, the same function real data go through.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from gabaapp.config import SynthesisConfig
from gabaapp.constants import GRID_POINTS, GRID_PPM_HIGH, GRID_PPM_LOW, NAA_PPM
from gabaapp.errors import DataError, UsageError
from gabaapp.preproc.features import network_input
from gabaapp.simulate.lines import (
    exp_linear,
    line_fids,
    polar,
    truncation_points,
    voigt_envelope,
)
from gabaapp.simulate.nuisance import (
    BASELINE_FWHM_HZ,
    MM_COEDITED_FWHM_HZ,
    MM_MIN_FWHM_HZ,
    baseline_lines,
    concat_lines,
    mm_coedited_line,
    mm_lines,
    water_line,
)
from gabaapp.simulate.samplers import (
    INVIVO_RATIO_TO_NAA,
    make_sobol_engine,
    sample_concentrations,
)
from gabaapp.spectra import Acquisition, Basis

logger = logging.getLogger(__name__)

# Linewidth at which reference heights of the basis are measured (Hz), a typical 3 T value.
REFERENCE_LW_HZ = 6.0
# Residual water: ON amplitude relative to OFF (imperfect subtraction), and its Lorentzian FWHM.
WATER_ONOFF_RATIO = (0.7, 1.3)
WATER_LORENTZ_HZ = (4.0, 12.0)
# Number of pre-broadened basis copies for per-metabolite linewidths.
N_EXTRA_LEVELS = 5
# Spectra per slice of a CPU batch: its FIDs and transforms (~10 MB) stay in the cache.
CPU_CHUNK = 64


@dataclass
class SynthBatch:
    """One batch of synthetic spectra (all tensors on the generator's device)."""

    x: torch.Tensor  # [n, 4, 2048] float32 network input (augmented, noisy)
    clean: torch.Tensor  # [n, 4, 2048] float32 same spectra without noise/nuisances (YAE target)
    y: torch.Tensor  # [n, n_met] float32 true concentrations (raw sampled, METABOLITES order)
    meta: dict = field(default_factory=dict)  # per-spectrum augmentation parameters, tensors


def check_basis(basis: Basis, config: SynthesisConfig) -> Basis:
    """Return `basis` restricted to config.metabolites, or raise DataError naming the problem.

    The basis must hold every requested metabolite and its sampling must cover the network grid
    (1.0-4.5 ppm) that gabaapp.preproc.features.network_input evaluates. With
    config.n_points the FIDs are cut to that length (as a shorter acquisition would be).
    """
    missing = [m for m in config.metabolites if m not in basis.names]
    if missing:
        raise DataError(
            f"the basis lacks metabolite(s) {missing} requested by synthesis setting "
            f"metabolites={config.metabolites}; it has {basis.names}. Rebuild the basis with "
            "them or drop them from the setting"
        )
    acq = basis.acquisition
    half_ppm = 0.5 * acq.spectral_width_hz / acq.f0_mhz
    low, high = acq.centre_ppm - half_ppm, acq.centre_ppm + half_ppm
    if not (low < GRID_PPM_LOW and high > GRID_PPM_HIGH):
        raise DataError(
            f"the basis sampling (centre_ppm={acq.centre_ppm}, spectral width "
            f"{acq.spectral_width_hz:.0f} Hz at f0_mhz={acq.f0_mhz}) covers {low:.2f}-{high:.2f} "
            f"ppm, but the network grid needs {GRID_PPM_LOW}-{GRID_PPM_HIGH} ppm; simulate the "
            "basis with a wider spectral width or another centre_ppm"
        )
    if config.n_points is not None:
        if config.n_points > acq.n_points:
            raise DataError(
                f"synthesis setting n_points={config.n_points} exceeds the basis' "
                f"{acq.n_points} points; use at most {acq.n_points}"
            )
        acq = replace(acq, n_points=config.n_points)
        basis = replace(
            basis,
            off=basis.off[:, : config.n_points],
            on=basis.on[:, : config.n_points],
            acquisition=acq,
        )
    if acq.n_points * acq.dwell_s < 0.25:
        raise DataError(
            f"the acquisition time n_points*dwell_s={acq.n_points * acq.dwell_s:.3f} s (basis "
            "or synthesis setting n_points) is too short for 3 T lines; use >= 0.25 s"
        )
    return basis.subset(list(config.metabolites))


def _spectrum_at(fid: np.ndarray, acq: Acquisition, lw_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (ppm, spectrum) of `fid` broadened by a Lorentzian of lw_hz, zero-filled x4."""
    t = acq.time_axis()
    n = 4 * acq.n_points
    spec = np.fft.fftshift(np.fft.fft(fid * np.exp(-math.pi * lw_hz * t), n=n))
    ppm = acq.centre_ppm + np.fft.fftshift(np.fft.fftfreq(n, acq.dwell_s)) / acq.f0_mhz
    return ppm, spec


def reference_levels(basis: Basis) -> dict[str, float]:
    """Return the basis' reference heights (per unit concentration) and absorptive phase.

    height: |NAA edit-OFF singlet| at REFERENCE_LW_HZ (the largest peak of any metabolite if NAA
    is absent); phase_rad: the phase of that peak (the basis' absorptive phase);
    gaba_diff: the DIFF GABA 3.0 ppm peak height (absorptive part) at the same linewidth.
    """
    acq = basis.acquisition
    if "NAA" in basis.names:
        ppm, spec = _spectrum_at(basis.off[basis.names.index("NAA")], acq, REFERENCE_LW_HZ)
        sel = np.abs(ppm - NAA_PPM) < 0.1
    else:
        specs = [_spectrum_at(f, acq, REFERENCE_LW_HZ) for f in basis.off]
        ppm = specs[0][0]
        spec = max((s for _, s in specs), key=lambda s: np.abs(s).max())
        sel = (ppm > GRID_PPM_LOW) & (ppm < GRID_PPM_HIGH)
    i = np.argmax(np.where(sel, np.abs(spec), 0.0))
    height, phase = float(np.abs(spec[i])), float(np.angle(spec[i]))
    gaba_diff = 0.0
    if "GABA" in basis.names:
        _, dspec = _spectrum_at(basis.diff[basis.names.index("GABA")], acq, REFERENCE_LW_HZ)
        absorptive = np.real(dspec * np.exp(-1j * phase))
        gaba_diff = float(np.max(np.where(np.abs(ppm - 3.0) < 0.1, absorptive, 0.0)))
    if height <= 0:
        raise DataError("the basis has no signal in 1.0-4.5 ppm; check the basis files")
    return {"height": height, "phase_rad": phase, "gaba_diff": gaba_diff}


class SpectrumGenerator:
    """Batched, augmented synthetic spectra from a basis (see the module docstring).

    `batch(n, generator)` is deterministic given the state of the torch `generator` and, for the
    Sobol sampler, the number of spectra drawn before (the Sobol stream continues across
    batches; `reset()` restarts it).
    """

    def __init__(self, basis: Basis, config: SynthesisConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.basis = check_basis(basis, config)
        self.device = torch.device(device)
        self.acquisition = self.basis.acquisition
        acq = self.acquisition
        dev = self.device
        self.t_s = torch.as_tensor(acq.time_axis(), dtype=torch.float32, device=dev)
        off = torch.as_tensor(self.basis.off, dtype=torch.complex64, device=dev)
        on = torch.as_tensor(self.basis.on, dtype=torch.complex64, device=dev)
        aug = config.augmentation
        # Per-metabolite extra Lorentzian widths come from a grid of pre-broadened basis copies
        # (as the paper's code did for its linewidth augmentation, paper-notes §2.6).
        lo, hi = aug.metabolite_lorentz_hz
        levels = N_EXTRA_LEVELS if (aug.enabled and aug.linewidth_mode == "metabolite") else 1
        self.extra_lorentz_hz = torch.linspace(lo, hi, levels) if levels > 1 else torch.zeros(1)
        decay = torch.exp(-math.pi * self.extra_lorentz_hz.to(dev).view(-1, 1, 1) * self.t_s)
        both = torch.cat([off, on], dim=-1)  # [M, 2T]
        grid = both.unsqueeze(0) * torch.cat([decay, decay], dim=-1)  # [K, M, 2T]
        # Real layout [K*M, 4T] so a real matrix product with the concentrations sums the basis.
        self._basis_grid = torch.view_as_real(grid).reshape(levels * len(config.metabolites), -1)
        self._broad_keep = truncation_points(
            0.0,
            min(MM_MIN_FWHM_HZ, BASELINE_FWHM_HZ[0], MM_COEDITED_FWHM_HZ),
            acq.dwell_s,
            acq.n_points,
        )
        self._water_keep = truncation_points(WATER_LORENTZ_HZ[0], 0.0, acq.dwell_s, acq.n_points)
        ppm = torch.as_tensor(acq.ppm_axis(), dtype=torch.float32, device=dev)
        # Frequency axis in the unshifted FFT order, for the first-order phase.
        self._ppm_fft_order = torch.fft.ifftshift(ppm)
        self._block = max(1, int(round(math.sqrt(acq.n_points))))
        self.levels = reference_levels(self.basis)
        self._sobol = None
        self.reset()

    def reset(self) -> None:
        """Restart the Sobol stream (after the paper's skip); no effect for other samplers."""
        if self.config.sampler == "sobol":
            self._sobol = make_sobol_engine(len(self.config.metabolites), self.config.n_spectra)

    def state_dict(self) -> dict[str, int]:
        """Return the generator's own random state: the position in the Sobol stream (the
        torch generator passed to `batch` carries every other random draw). Saved in training
        checkpoints, so that resuming a run that draws fresh spectra is exact."""
        generated = self._sobol.num_generated if self._sobol is not None else 0
        return {"sobol_generated": int(generated)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a state from `state_dict()` (restart the stream, then skip to the saved
        position)."""
        self.reset()
        if self._sobol is not None:
            ahead = int(state.get("sobol_generated", 0)) - int(self._sobol.num_generated)
            if ahead < 0:
                raise UsageError(
                    f"generator state at Sobol point {state.get('sobol_generated')} lies before "
                    "the stream's start; the checkpoint belongs to other synthesis settings"
                )
            if ahead:
                self._sobol.fast_forward(ahead)

    # -- random draws ------------------------------------------------------------------------

    def sample_concentrations(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Return [n, n_met] float32 concentrations from the configured sampler."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        rng = np.random.default_rng(seed)
        conc = sample_concentrations(
            n,
            self.config.sampler,
            self.config.metabolites,
            rng,
            sobol_engine=self._sobol,
            zero_probability=self.config.zero_probability,
        )
        return torch.as_tensor(conc, dtype=torch.float32, device=self.device)

    def sample_parameters(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Return the per-spectrum augmentation parameters (tensors [n] or [n, n_met])."""
        aug = self.config.augmentation
        m = len(self.config.metabolites)
        gdev = generator.device

        def u(lo_hi: tuple[float, float], shape: tuple[int, ...] = (n,)) -> torch.Tensor:
            lo, hi = lo_hi
            r = torch.rand(shape, generator=generator, device=gdev, dtype=torch.float32)
            return (lo + (hi - lo) * r).to(self.device)

        p: dict[str, torch.Tensor] = {}
        if not aug.enabled:
            return p
        p["lorentz_hz"] = u(aug.lorentz_hz)
        k = self.extra_lorentz_hz.shape[0]
        if k > 1:
            level = torch.randint(0, k, (n, m), generator=generator, device=gdev).to(self.device)
            p["extra_level"] = level
            p["metabolite_lorentz_hz"] = self.extra_lorentz_hz.to(self.device)[level]
        p["gauss_hz"] = u(aug.gauss_hz)
        p["shift_hz"] = u(aug.shift_hz)
        p["phase0_deg"] = u(aug.phase0_deg)
        p["phase1_deg_per_ppm"] = u(aug.phase1_deg_per_ppm)
        p["noise_off"] = u(aug.noise)
        p["noise_on"] = u(aug.noise)
        p["baseline_amplitude"] = u(aug.baseline_amplitude)
        p["mm_amplitude"] = u(aug.mm_amplitude)
        coedit = (0.0, 0.0) if aug.mm_state == "gaba" else aug.mm_coedited_fraction
        p["mm_coedited_fraction"] = u(coedit)
        p["water_amplitude"] = u(aug.water_amplitude)
        p["water_ppm"] = u(aug.water_ppm)
        p["water_lorentz_hz"] = u(WATER_LORENTZ_HZ)
        p["water_phase_rad"] = u((-math.pi, math.pi))
        p["water_onoff_ratio"] = u(WATER_ONOFF_RATIO)
        p["onoff_shift_hz"] = u(aug.onoff_shift_hz)
        p["onoff_phase_deg"] = u(aug.onoff_phase_deg)
        p["onoff_gain"] = u(aug.onoff_gain)
        return p

    # -- synthesis ---------------------------------------------------------------------------

    def combine(self, conc: torch.Tensor, extra_level: torch.Tensor | None = None):
        """Return (OFF, ON) FIDs [n, T]: sum_m c_m basis_m, without any other broadening.

        `extra_level` [n, n_met] (int) picks for each metabolite one of the pre-broadened copies
        of the basis (extra Lorentzian widths `self.extra_lorentz_hz`), so per-metabolite
        linewidths cost one matrix product; None uses the unbroadened basis (exact sum).
        """
        n, m = conc.shape
        if extra_level is None:
            coeff = conc
            basis = self._basis_grid[:m]
        else:
            k = self._basis_grid.shape[0] // m
            coeff = torch.zeros((n, k * m), dtype=conc.dtype, device=conc.device)
            cols = extra_level * m + torch.arange(m, device=conc.device)
            coeff.scatter_(1, cols, conc)
            basis = self._basis_grid
        out = torch.view_as_complex((coeff @ basis).view(n, -1, 2))  # [n, 2T]
        t = self.t_s.shape[0]
        return out[:, :t], out[:, t:]

    def _add_lines(
        self,
        out: torch.Tensor,
        lines: dict,
        shift_hz: torch.Tensor,
        phase_rad: torch.Tensor,
        phase1_rad_per_ppm: torch.Tensor | None,
        keep: int | None,
        gain: torch.Tensor | None = None,
    ) -> None:
        """Add to `out` [n, T] (in place) the FID of model lines moved by shift_hz [n], rotated
        by phase_rad [n] and, per line, by the first-order phase at the line's ppm."""
        acq = self.acquisition
        offset = (lines["ppm"] - acq.centre_ppm) * acq.f0_mhz + shift_hz.unsqueeze(-1)
        phase = lines["phase_rad"] + phase_rad.unsqueeze(-1)
        if phase1_rad_per_ppm is not None:
            pivot = self.config.augmentation.phase1_pivot_ppm
            phase = phase + phase1_rad_per_ppm.unsqueeze(-1) * (lines["ppm"] - pivot)
        height = lines["height"] if gain is None else lines["height"] * gain
        fid = line_fids(
            self.t_s[:keep], offset, lines["lorentz_hz"], lines["gauss_hz"], phase, height
        )
        out[:, : fid.shape[-1]] += fid

    def synthesise(
        self, conc: torch.Tensor, params: dict[str, torch.Tensor], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Return complex FIDs [n, T]: "off", "on" (augmented, noisy) and "clean_off",
        "clean_on" (metabolites only, same line shape, shift and phases, no noise).

        With empty `params` (augmentation disabled) all four are the basis linear combination.
        """
        if not params:
            off, on = self.combine(conc)
            return {"off": off, "on": on, "clean_off": off, "clean_on": on}
        t = self.t_s
        met_off, met_on = self.combine(conc, params.get("extra_level"))
        phase1 = None
        if bool((params["phase1_deg_per_ppm"] != 0).any()):
            # First-order phase on the metabolite sum before line shape and shift: they commute
            # up to phi1 x (linewidth or shift) / f0, below 0.5 deg for the allowed ranges.
            phase1 = torch.deg2rad(params["phase1_deg_per_ppm"])
            factor = self._first_order_factor(params["phase1_deg_per_ppm"])
            met_off = torch.fft.ifft(torch.fft.fft(met_off, dim=-1).mul_(factor), dim=-1)
            met_on = torch.fft.ifft(torch.fft.fft(met_on, dim=-1).mul_(factor), dim=-1)
            del factor
        # One complex factor per acquisition carries the Voigt decay, the shift and the phase.
        ph_off = torch.deg2rad(params["phase0_deg"])
        sh_off = params["shift_hz"]
        ph_on = ph_off + torch.deg2rad(params["onoff_phase_deg"])
        sh_on = sh_off + params["onoff_shift_hz"]
        gain_on = (1.0 + params["onoff_gain"]).unsqueeze(-1)
        lor, gau = params["lorentz_hz"], params["gauss_hz"]
        gauss_env = None
        if bool((gau != 0).any()):
            gauss_env = voigt_envelope(t, torch.zeros_like(gau), gau)
        factor = self._decay_rotation(lor, sh_off, ph_off, gauss_env)
        clean_off = met_off * factor
        clean_on = met_on * factor
        mismatch = bool(
            (params["onoff_shift_hz"] != 0).any() or (params["onoff_phase_deg"] != 0).any()
        )
        if mismatch:
            factor = self._decay_rotation(lor, sh_on, ph_on, gauss_env)
            on = met_on * factor
            on *= gain_on
        else:
            on = clean_on * gain_on
        del met_off, met_on, factor, gauss_env
        off = clean_off.clone()
        # Nuisances, in the same frame (shift and phase) as the metabolites of each acquisition.
        lv = self.levels
        conc_scale = conc.max(dim=1).values
        scale = conc_scale * lv["height"]  # NAA peak height of this spectrum's scale
        broad_off, broad_on = [], []
        if bool((params["mm_amplitude"] > 0).any()):
            mm = mm_lines(params["mm_amplitude"] * scale, lv["phase_rad"])
            broad_off.append(mm)
            broad_on.append(mm)
        if bool((params["mm_coedited_fraction"] > 0).any()):
            f = params["mm_coedited_fraction"]
            gaba_invivo = sum(INVIVO_RATIO_TO_NAA["GABA"]) / 2.0
            co_height = f / (1.0 - f) * lv["gaba_diff"] * gaba_invivo * conc_scale
            broad_on.append(mm_coedited_line(co_height, lv["phase_rad"]))
        if bool((params["baseline_amplitude"] > 0).any()):
            base = baseline_lines(
                params["baseline_amplitude"] * scale, self._device_generator(generator)
            )
            broad_off.append(base)
            broad_on.append(base)
        keep = self._broad_keep
        if broad_off:
            self._add_lines(off, concat_lines(*broad_off), sh_off, ph_off, phase1, keep)
        if broad_on:
            lines = concat_lines(*broad_on)
            self._add_lines(on, lines, sh_on, ph_on, phase1, keep, gain_on)
        if bool((params["water_amplitude"] > 0).any()):
            water = water_line(
                params["water_amplitude"] * scale,
                params["water_ppm"],
                params["water_lorentz_hz"],
                params["water_phase_rad"],
            )
            keep = self._water_keep
            self._add_lines(off, water, sh_off, ph_off, phase1, keep)
            ratio = params["water_onoff_ratio"].unsqueeze(-1) * gain_on
            self._add_lines(on, water, sh_on, ph_on, phase1, keep, ratio)
        fids = {"off": off, "on": on, "clean_off": clean_off, "clean_on": clean_on}
        del off, on, clean_off, clean_on
        for acq in ("off", "on"):
            fids[acq].add_(self._noise(fids[acq], params[f"noise_{acq}"], generator))
        return fids

    def _decay_rotation(
        self,
        lorentz_hz: torch.Tensor,
        shift_hz: torch.Tensor,
        phase_rad: torch.Tensor,
        gauss_env: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return exp(i phase) exp((-pi L + 2 pi i shift) t) [x gauss_env], complex [n, T].

        All parameters are [n] (per-metabolite widths are already in the basis grid). The
        exponential of a linear function of t is separable, exp(c (t_hi + t_lo)) =
        exp(c t_hi) exp(c t_lo), so with T = blocks x block it costs one complex product per
        point instead of a cos, sin and exp each.
        """
        rate = torch.complex(-math.pi * lorentz_hz, 2.0 * math.pi * shift_hz)
        phase = torch.complex(torch.zeros_like(phase_rad), phase_rad)
        out = exp_linear(rate, phase, self.t_s, self._block)
        if gauss_env is not None:
            out *= gauss_env
        return out

    def _first_order_factor(self, deg_per_ppm: torch.Tensor) -> torch.Tensor:
        """Return exp(i phi1 (ppm - pivot)) [n, T] in FFT order (multiplies fft(fid))."""
        pivot = self.config.augmentation.phase1_pivot_ppm
        phi = torch.deg2rad(deg_per_ppm).unsqueeze(-1) * (self._ppm_fft_order - pivot)
        return polar(torch.ones_like(phi), phi)

    def _device_generator(self, generator: torch.Generator) -> torch.Generator:
        """Return `generator` if it lives on our device, else one on our device seeded from it."""
        if generator.device.type == self.device.type:
            return generator
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)
        return g

    def _noise(self, fid: torch.Tensor, sigma_rel: torch.Tensor, generator: torch.Generator):
        """Return complex Gaussian noise N(0, s) + iN(0, s), s = sigma_rel x max|fid| (paper)."""
        parts = torch.view_as_real(fid)
        re, im = parts[..., 0], parts[..., 1]
        sigma = sigma_rel * torch.addcmul(re * re, im, im).amax(dim=-1).sqrt()
        g = self._device_generator(generator)
        z = torch.empty(fid.shape, device=self.device, dtype=torch.complex64)
        # Real and imaginary parts each N(0, 1), then scaled to s per component (paper).
        torch.view_as_real(z).normal_(generator=g)
        return z.mul_(sigma.unsqueeze(-1))

    def batch(self, n: int, generator: torch.Generator, *, with_clean: bool = True) -> SynthBatch:
        """Return n synthetic spectra: network input, clean copy, concentrations, parameters.

        `with_clean=False` skips the clean copy (models without a reconstruction head do not
        need it): `clean` is then an empty [n, 4, 0] tensor. The clean copy is aligned with the
        B0 shift measured on the noisy spectrum (`meta["align_shift_hz"]`), so input and target
        sit on the same frequency axis.

        On CPU the batch is made in slices of CPU_CHUNK spectra, each synthesised and
        transformed while its temporaries fit in the cache, spread over torch's CPU threads
        (one slice per thread, single-threaded torch inside): this is several times faster than
        whole-batch tensor operations, which are memory-bound. Each slice draws its noise and
        baseline from its own torch.Generator seeded from `generator`, so the result depends
        only on `generator`'s state, not on the thread count or scheduling.
        """
        if n < 1:
            raise UsageError(f"batch size must be >= 1, got {n}")
        conc = self.sample_concentrations(n, generator)
        params = self.sample_parameters(n, generator)
        acq, align = self.acquisition, self.config.align
        dev = self.device
        chunk = CPU_CHUNK if dev.type == "cpu" else n
        starts = list(range(0, n, chunk))
        seeds = torch.randint(
            0, 2**62, (len(starts),), generator=generator, device=generator.device
        ).tolist()
        x = torch.empty((n, 4, GRID_POINTS), dtype=torch.float32, device=dev)
        clean = torch.empty(
            (n, 4, GRID_POINTS if with_clean else 0), dtype=torch.float32, device=dev
        )
        shift = torch.zeros((n,), dtype=torch.float32, device=dev)

        def work(i: int) -> None:
            sl = slice(starts[i], min(n, starts[i] + chunk))
            g = torch.Generator(device=dev)
            g.manual_seed(seeds[i])
            fids = self.synthesise(conc[sl], {k: v[sl] for k, v in params.items()}, g)
            same = fids["clean_off"] is fids["off"] and fids["clean_on"] is fids["on"]
            x[sl], shift[sl] = network_input(
                fids.pop("off"), fids.pop("on"), acq, align=align, return_shift_hz=True
            )
            if with_clean and same:  # no augmentation: the clean copy is the input itself
                clean[sl] = x[sl]
            elif with_clean:
                # Reuse the noisy spectrum's shift: no second search, same frequency axis.
                clean[sl] = network_input(
                    fids.pop("clean_off"),
                    fids.pop("clean_on"),
                    acq,
                    align=False,
                    shift_hz=shift[sl] if align else None,
                )

        _run_slices(work, len(starts), dev)
        meta = {k: v for k, v in params.items() if k != "extra_level"}
        if params:
            meta["align_shift_hz"] = shift
        return SynthBatch(x=x, clean=clean, y=conc, meta=meta)


def _run_slices(work, n_slices: int, device: torch.device) -> None:
    """Call work(i) for i < n_slices: on CPU in worker threads, as many as torch's thread
    setting, each running torch single-threaded (which avoids OpenMP start-up and barrier
    costs on small slices) and flushing subnormal floats to zero (FID tails underflow, and
    subnormal arithmetic is ~40x slower on x86; only values below 1e-38 change). Elsewhere in
    order. torch's thread setting is restored afterwards; the calling thread's floating-point
    mode is untouched (it is per thread)."""
    if device.type != "cpu":
        for i in range(n_slices):
            work(i)
        return
    threads = torch.get_num_threads()

    def in_worker(i: int) -> None:
        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        work(i)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, n_slices))) as pool:
            list(pool.map(in_worker, range(n_slices)))
    finally:
        torch.set_num_threads(threads)
