"""On-the-fly, batched synthesis of augmented MEGA-PRESS spectra in torch (CPU or GPU).

A spectrum is the basis linear combination sum_m c_m * basis_m for edit-OFF and edit-ON
(paper-notes §2.4), then, when enabled, augmented in the order a scanner would add each effect:

1. line broadening: Voigt decay (Lorentzian + Gaussian FWHM) per spectrum or per metabolite
   (the paper's linewidth augmentation, §2.6, extended to Gaussian/Voigt lines);
2. macromolecules (incl. the co-edited 3.0 ppm MM of GABA+), smooth baseline, residual water;
3. imperfect subtraction: an ON gain error and a different residual water in ON;
4. frequency shift and zero-order phase (ON gets an extra ON/OFF mismatch);
5. first-order phase (linear in ppm about a pivot): applied exactly to the network input, as a
   multiply on the grid at each line's own ppm (`rotate_first_order`), to every signal;
6. the paper's noise: sigma ~ U(0, 0.03) x max|FID| per acquisition, complex Gaussian,
   added separately to OFF and ON in the time domain (§2.6).

The network input of both the noisy spectrum (`x`) and its clean copy (`clean`: metabolites only,
with the same line shape, shift and phases, no noise, MM, baseline, water or ON/OFF errors) is
made by `gabaapp.preproc.features.network_input`, the same function real data go through.

With `SynthesisConfig.sampling = "grid"` everything runs at the grid-matched sampling of the
same acquisition time (basis re-simulated once, `gabaapp.simulate.grid_basis`), where
`network_input` needs one FFT per FID instead of a chirp-z transform; the per-sample noise is
rescaled to the same spectral SNR and the first sample weighted to the basis sampling's
first-point term (docs/synthesis.md).
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from gabaapp.config import SynthesisConfig
from gabaapp.constants import GRID_POINTS, GRID_PPM_HIGH, GRID_PPM_LOW, NAA_PPM
from gabaapp.errors import DataError, UsageError
from gabaapp.preproc import kernels
from gabaapp.preproc.features import GRID_FFT_LEN, network_input, network_input_and_clean
from gabaapp.simulate import fused
from gabaapp.simulate.grid_basis import check_grid_basis, grid_matched_basis
from gabaapp.simulate.lines import (
    block_length,
    exp_linear,
    exp_linear_parts,
    line_fids,
    lorentz_line_terms,
    truncation_points,
    voigt_envelope,
)
from gabaapp.simulate.noise import normal_pairs
from gabaapp.simulate.nuisance import (
    BASELINE_FWHM_HZ,
    MM_COEDITED_FWHM_HZ,
    MM_INVIVO_AMPLITUDE,
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

    def __init__(
        self,
        basis: Basis,
        config: SynthesisConfig,
        device: str | torch.device = "cpu",
        *,
        grid_basis: Basis | None = None,
        grid_fft_len: int = GRID_FFT_LEN,
    ):
        self.config = config
        self.basis = check_basis(basis, config)
        self.device = torch.device(device)
        # Per-sample noise sigma relative to the paper's rule at the basis' sampling (1 there).
        self.noise_scale = 1.0
        self.first_weight = 1.0
        self.grid = config.sampling == "grid"
        if self.grid:
            # Same spectra at the grid-matched sampling (see gabaapp.simulate.grid_basis).
            ref = self.basis.acquisition
            if grid_basis is None:
                matched = grid_matched_basis(self.basis, grid_fft_len)
            else:
                matched = check_grid_basis(grid_basis, self.basis)
            matched = check_basis(matched, replace(config, n_points=None))
            acq_g = matched.acquisition
            # The paper's sigma ~ U(0, 0.03) x max|FID| is per sample at the basis' sampling.
            # A line's DTFT peak scales with 1/dwell and white noise's spectral SD with
            # sigma sqrt(n), so the same spectral SNR needs sigma x (dwell_b/dwell_g) x
            # sqrt(n_b/n_g) here (max|FID| is the same function sampled at both rates).
            self.noise_scale = (ref.dwell_s / acq_g.dwell_s) * math.sqrt(
                ref.n_points / acq_g.n_points
            )
            # First-point match: dwell x DTFT = (aliased continuous spectrum) + dwell x x0 / 2
            # (Poisson summation; a causal FID jumps at t = 0), so weighting the first sample by
            # 1/2 + dwell_b / (2 dwell_g) gives the basis sampling's x0 term on the grid too.
            self.first_weight = 0.5 + ref.dwell_s / (2.0 * acq_g.dwell_s)
            first = np.ones(acq_g.n_points)
            first[0] = self.first_weight
            matched = replace(matched, off=matched.off * first, on=matched.on * first)
            self.basis = matched
        elif grid_basis is not None:
            raise UsageError("grid_basis is only used with synthesis setting sampling='grid'")
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
        # Compiled CPU loops (gabaapp.simulate.fused) where numba is present; torch otherwise.
        self._fused = fused.AVAILABLE and dev.type == "cpu"
        # The compiled loops take the basis once and the extra decays, [levels, 4T] on its
        # layout (basis x decay there: the same float32 products as the stored copies).
        self._basis_rows = self._basis_grid[: len(config.metabolites)].numpy()
        self._level_decays = (
            torch.cat([decay, decay], dim=-1)[:, 0].repeat_interleave(2, dim=-1).contiguous()
        ).numpy()
        self._basis_complex = torch.view_as_complex(
            self._basis_grid.view(self._basis_grid.shape[0], -1, 2)
        )
        self._broad_keep = truncation_points(
            0.0,
            min(MM_MIN_FWHM_HZ, BASELINE_FWHM_HZ[0], MM_COEDITED_FWHM_HZ),
            acq.dwell_s,
            acq.n_points,
        )
        self._water_keep = truncation_points(WATER_LORENTZ_HZ[0], 0.0, acq.dwell_s, acq.n_points)
        self._block = block_length(acq.n_points)
        self.levels = reference_levels(self.basis)
        if self.grid:
            # Fixed-shape nuisance FIDs (unit amplitude) and the baseline lines' support.
            one = torch.ones(1, device=dev)
            self._mm_template = self._line_template(mm_lines(one, self.levels["phase_rad"]))
            self._coedited_template = self._line_template(
                mm_coedited_line(one, self.levels["phase_rad"])
            )
            self._baseline_keep = truncation_points(
                0.0, BASELINE_FWHM_HZ[0], acq.dwell_s, acq.n_points
            )
            # the same, as the compiled nuisance loop takes them (fused.grid_nuisances)
            self._mm_floats = torch.view_as_real(self._mm_template).reshape(-1).numpy()
            self._coedited_floats = torch.view_as_real(self._coedited_template).reshape(-1).numpy()
            gaba_invivo = sum(INVIVO_RATIO_TO_NAA["GABA"]) / 2.0
            self._nuisance_consts = np.array(
                [
                    acq.centre_ppm,
                    acq.f0_mhz,
                    acq.dwell_s,
                    self.first_weight,
                    self.levels["height"],
                    self.levels["gaba_diff"] * gaba_invivo / MM_INVIVO_AMPLITUDE,
                ]
            )
            water_block = max(1, int(round(math.sqrt(self._water_keep))))
            self._nuisance_sizes = np.array(
                [self._broad_keep, self._baseline_keep, self._water_keep, water_block],
                dtype=np.int64,
            )
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
        keep: int | None,
        gain: torch.Tensor | None = None,
    ) -> None:
        """Add to `out` [n, T] (in place) the FID of model lines moved by shift_hz [n] and
        rotated by phase_rad [n] (the first-order phase comes later, on the grid)."""
        acq = self.acquisition
        offset = (lines["ppm"] - acq.centre_ppm) * acq.f0_mhz + shift_hz.unsqueeze(-1)
        phase = lines["phase_rad"] + phase_rad.unsqueeze(-1)
        height = lines["height"] if gain is None else lines["height"] * gain
        keep = self.t_s.shape[0] if keep is None else keep
        if self._fused and not bool((lines["gauss_hz"] != 0).any()):
            # Lorentzian lines (water): the separable parts, multiplied out and summed into
            # `out` by one compiled loop (no [n, K, keep] temporary).
            block = max(1, int(round(math.sqrt(keep))))
            span = -(-keep // block) * block  # whole blocks covering keep samples
            if span <= self.t_s.shape[0]:
                rate, phase_c, amp = lorentz_line_terms(
                    keep,
                    acq.dwell_s,
                    offset,
                    lines["lorentz_hz"],
                    phase,
                    height,
                    self.first_weight,
                )
                hi, lo = exp_linear_parts(rate, phase_c, self.t_s[:span], block)
                fused.add_lines(
                    _floats3(hi),
                    _floats3(lo),
                    (amp != 0).numpy(),
                    keep,
                    self.first_weight,
                    _floats(out),
                )
                return
        fid = line_fids(
            self.t_s[:keep],
            offset,
            lines["lorentz_hz"],
            lines["gauss_hz"],
            phase,
            height,
            self.first_weight,
        )
        out[:, : fid.shape[-1]] += fid

    def synthesise(
        self,
        conc: torch.Tensor,
        params: dict[str, torch.Tensor],
        generator: torch.Generator,
        *,
        scratch: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Return complex FIDs [n, T]: "off", "on" (augmented, noisy) and "clean_off",
        "clean_on" (metabolites only, same line shape, shift and phases, no noise).

        With empty `params` (augmentation disabled) all four are the basis linear combination.
        The first-order phase is not in these FIDs: `batch` applies it to the network input,
        where it is an exact multiply on the grid (`rotate_first_order`).
        `scratch=True` (for `batch`, which drops the FIDs once transformed) may return them in
        buffers that this thread reuses: valid until its next call with scratch=True.
        """
        if not params:
            off, on = self.combine(conc)
            return {"off": off, "on": on, "clean_off": off, "clean_on": on}
        t = self.t_s
        broad = (
            # the co-edited MM needs MM (its height scales with mm_amplitude)
            bool((params["mm_amplitude"] > 0).any())
            or bool((params["baseline_amplitude"] > 0).any())
        )
        water = bool((params["water_amplitude"] > 0).any())
        if self._fused and self.grid and (broad or water):
            return self._fused_grid_fids(conc, params, generator, broad, water, scratch)
        if self._fused:
            clean_off, clean_on, off, on = self._fused_metabolites(conc, params, broad or water)
            return self._add_nuisances_and_noise(
                conc, params, generator, clean_off, clean_on, off, on, broad, water
            )
        met_off, met_on = self.combine(conc, params.get("extra_level"))
        # The first-order phase is applied by `batch` on the grid (`rotate_first_order`), exactly
        # at each line's own ppm; as an FFT multiply on these FIDs it would ring (circular
        # convolution of FIDs that have not decayed: 1.7 % L2 error at 5 deg/ppm).
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
        elif bool((params["onoff_gain"] != 0).any()):
            on = clean_on * gain_on
        else:
            on = clean_on  # copied below before anything is added to it
        del met_off, met_on, factor, gauss_env
        off = clean_off
        if broad or water:  # copies, so that the nuisances do not reach the clean FIDs
            off = clean_off.clone()
            if on is clean_on:
                on = clean_on.clone()
        return self._add_nuisances_and_noise(
            conc, params, generator, clean_off, clean_on, off, on, broad, water
        )

    def _metabolite_args(self, conc, params) -> tuple:
        """Return the leading arguments of fused.metabolite_fids and fused.grid_fids: basis
        rows, level decays, per-metabolite linewidth levels [n, m], concentrations, the
        line-shape, shift, phase and ON/OFF parameters [n] (numpy views), t and the block."""
        level = params.get("extra_level")
        levels = torch.zeros(conc.shape, dtype=torch.int64) if level is None else level
        keys = ("lorentz_hz", "gauss_hz", "shift_hz", "phase0_deg")
        keys += ("onoff_shift_hz", "onoff_phase_deg", "onoff_gain")
        return (
            self._basis_rows,
            self._level_decays,
            levels.contiguous().numpy(),
            *_np(conc, *(params[k] for k in keys)),
            self.t_s.numpy(),
            self._block,
        )

    def _fused_metabolites(self, conc, params, copies: bool):
        """Return (clean_off, clean_on, off, on), complex [n, T]: the metabolite FIDs of
        `synthesise` made by one compiled pass (`fused.metabolite_fids`). off/on are separate
        tensors when `copies` (nuisances follow) or, for ON, when an ON/OFF mismatch or gain
        makes it differ; otherwise they are the clean tensors themselves."""
        n = conc.shape[0]
        tt = self.t_s.shape[0]
        gained = bool(
            (params["onoff_shift_hz"] != 0).any()
            or (params["onoff_phase_deg"] != 0).any()
            or (params["onoff_gain"] != 0).any()
        )
        new = lambda: torch.empty((n, tt), dtype=torch.complex64)  # noqa: E731
        clean_off, clean_on = new(), new()
        off = new() if copies else clean_off
        on = new() if (copies or gained) else clean_on
        flags = np.array([copies, copies or gained], dtype=np.bool_)
        fused.metabolite_fids(
            *self._metabolite_args(conc, params),
            *(_floats(a) for a in (clean_off, clean_on, off, on)),
            flags,
        )
        return clean_off, clean_on, off, on

    def _add_nuisances_and_noise(
        self, conc, params, generator, clean_off, clean_on, off, on, broad: bool, water: bool
    ) -> dict[str, torch.Tensor]:
        """Add MM, baseline and water (when `broad` / `water`) to off / on (in place: they are
        copies of the clean FIDs then), then noise; return the four FIDs of `synthesise`."""
        if broad or water:
            self._add_nuisances(conc, params, generator, off, on, broad, water)
        # Noise: in place, or into a new tensor where `off` is still the clean copy itself.
        off = self._add_noise(off, params["noise_off"], generator, inplace=off is not clean_off)
        on = self._add_noise(on, params["noise_on"], generator, inplace=on is not clean_on)
        return {"off": off, "on": on, "clean_off": clean_off, "clean_on": clean_on}

    def _add_nuisances(self, conc, params, generator, off, on, broad: bool, water: bool) -> None:
        """Add MM and baseline (`broad`) and residual water (`water`) lines to off / on."""
        ph_off = torch.deg2rad(params["phase0_deg"])
        sh_off = params["shift_hz"]
        ph_on = ph_off + torch.deg2rad(params["onoff_phase_deg"])
        sh_on = sh_off + params["onoff_shift_hz"]
        gain_on = (1.0 + params["onoff_gain"]).unsqueeze(-1)
        # Nuisances, in the same frame (shift and phase) as the metabolites of each acquisition.
        if self.grid and self._fused:
            self._fused_grid_nuisances(conc, params, generator, off, on, broad, water)
            return
        lv = self.levels
        conc_scale = conc.max(dim=1).values
        scale = conc_scale * lv["height"]  # NAA peak height of this spectrum's scale
        broad_off, broad_on = [], []
        if self.grid and broad:
            self._add_broad_grid(off, on, params, scale, conc_scale, generator)
        elif bool((params["mm_amplitude"] > 0).any()):
            mm = mm_lines(params["mm_amplitude"] * scale, lv["phase_rad"])
            broad_off.append(mm)
            broad_on.append(mm)
        if not self.grid and bool((params["mm_coedited_fraction"] > 0).any()):
            co_height = self._coedited_height(params, conc_scale)
            broad_on.append(mm_coedited_line(co_height, lv["phase_rad"]))
        if not self.grid and bool((params["baseline_amplitude"] > 0).any()):
            base = baseline_lines(
                params["baseline_amplitude"] * scale, self._device_generator(generator)
            )
            broad_off.append(base)
            broad_on.append(base)
        keep = self._broad_keep
        if broad_off:
            self._add_lines(off, concat_lines(*broad_off), sh_off, ph_off, keep)
        if broad_on:
            lines = concat_lines(*broad_on)
            self._add_lines(on, lines, sh_on, ph_on, keep, gain_on)
        if water:
            water = water_line(
                params["water_amplitude"] * scale,
                params["water_ppm"],
                params["water_lorentz_hz"],
                params["water_phase_rad"],
            )
            keep = self._water_keep
            self._add_lines(off, water, sh_off, ph_off, keep)
            ratio = params["water_onoff_ratio"].unsqueeze(-1) * gain_on
            self._add_lines(on, water, sh_on, ph_on, keep, ratio)

    def _fused_grid_nuisances(self, conc, params, generator, off, on, broad, water) -> None:
        """`_add_nuisances` at grid sampling by one compiled loop (`fused.grid_nuisances`):
        the same lines, random draws in the same order (the baseline's from `generator`)."""
        fused.grid_nuisances(
            *_np(conc, params["shift_hz"], params["phase0_deg"]),
            *_np(params["onoff_shift_hz"], params["onoff_phase_deg"], params["onoff_gain"]),
            *self._nuisance_args(conc, params, generator, broad, water),
            _floats(off),
            _floats(on),
        )

    def _nuisance_args(self, conc, params, generator, broad: bool, water: bool) -> list:
        """Return the nuisance arguments of `fused.grid_nuisances` after the ON/OFF ones
        (amplitudes, baseline lines, water line, templates, constants, sizes), drawing the
        baseline lines from `generator` where `_add_broad_grid` does."""
        n = conc.shape[0]
        zero = torch.zeros(n)
        lines = [torch.empty((n, 0))] * 4
        if broad and bool((params["baseline_amplitude"] > 0).any()):
            base = baseline_lines(torch.ones(n), self._device_generator(generator))
            lines = [base[k].contiguous() for k in ("ppm", "gauss_hz", "phase_rad", "height")]
        if not broad:
            amplitudes = [zero] * 3
        else:
            keys = ("mm_amplitude", "mm_coedited_fraction", "baseline_amplitude")
            amplitudes = [params[k] for k in keys]
        keys = ("water_amplitude", "water_ppm", "water_lorentz_hz", "water_phase_rad")
        water_p = [params[k] for k in keys] if water else [zero] * 4
        return [
            *_np(*amplitudes, *lines, *water_p, params["water_onoff_ratio"]),
            self._mm_floats,
            self._coedited_floats,
            self._nuisance_consts,
            self._nuisance_sizes,
        ]

    def _fused_grid_fids(
        self, conc, params, generator, broad: bool, water: bool, scratch: bool = False
    ) -> dict:
        """Return the four FIDs of `synthesise` at grid sampling with nuisances, made one
        spectrum at a time by `fused.grid_fids` (metabolites, nuisances, noise: the values of
        `_fused_metabolites`, `_fused_grid_nuisances` and `_add_noise` in turn, with the same
        random draws in the same order); in this thread's reused buffers when `scratch`."""
        n = conc.shape[0]
        nuisances = self._nuisance_args(conc, params, generator, broad, water)
        seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in range(2)]
        keys = ("clean_off", "clean_on", "off", "on")
        if scratch:
            fids, floats = _scratch_fids(n, self.t_s.shape[0])
        else:
            fids = torch.empty((4, n, self.t_s.shape[0]), dtype=torch.complex64)
            floats = torch.view_as_real(fids).view(4, n, -1).numpy()
        fused.grid_fids(
            *self._metabolite_args(conc, params),
            *nuisances,
            np.array(seeds, dtype=np.int64),
            *_np(params["noise_off"], params["noise_on"]),
            self.noise_scale,
            *floats,
        )
        return dict(zip(keys, fids, strict=True))

    def _coedited_height(self, params: dict, conc_scale: torch.Tensor) -> torch.Tensor:
        """Return the co-edited MM line height [n]: at the in vivo MM level
        (mm_amplitude = MM_INVIVO_AMPLITUDE) it is `mm_coedited_fraction` of the in vivo GABA+
        3.0 ppm DIFF peak (GABA at its mid in vivo ratio to NAA, at this spectrum's scale), and
        it scales with mm_amplitude (one macromolecule pool), so it is 0 without MM."""
        fraction = params["mm_coedited_fraction"]
        gaba_invivo = sum(INVIVO_RATIO_TO_NAA["GABA"]) / 2.0
        unit = self.levels["gaba_diff"] * gaba_invivo / MM_INVIVO_AMPLITUDE
        return fraction / (1.0 - fraction) * unit * params["mm_amplitude"] * conc_scale

    def _add_broad_grid(self, off, on, params, scale, conc_scale, generator) -> None:
        """Add MM, co-edited MM and baseline lines to `off` / `on` (in place), grid sampling.

        Same lines as the general path (`_add_lines`), computed faster: without per-line
        first-order phases (applied on the grid instead) the MM and co-edited MM FIDs are
        fixed templates times a per-spectrum amplitude, and each acquisition's shift and
        zero-order phase is one separable rotation exp(i ph + 2j pi shift t) of their sum.
        Baseline lines (random per spectrum) decay within `_baseline_keep` samples.
        """
        n = off.shape[0]
        keep = self._broad_keep
        t = self.t_s[:keep]
        base_off = torch.zeros((n, keep), dtype=torch.complex64, device=self.device)
        if bool((params["mm_amplitude"] > 0).any()):
            amp = (params["mm_amplitude"] * scale).to(torch.complex64).unsqueeze(-1)
            base_off += amp * self._mm_template
        if bool((params["baseline_amplitude"] > 0).any()):
            # Random lines, rotation-free here, on their short support.
            base = baseline_lines(
                params["baseline_amplitude"] * scale, self._device_generator(generator)
            )
            kb = self._baseline_keep
            offset = (base["ppm"] - self.acquisition.centre_ppm) * self.acquisition.f0_mhz
            base_off[:, :kb] += line_fids(
                t[:kb],
                offset,
                base["lorentz_hz"],
                base["gauss_hz"],
                base["phase_rad"],
                base["height"],
                self.first_weight,
            )
        base_on = base_off
        if bool((params["mm_coedited_fraction"] > 0).any()):
            co_height = self._coedited_height(params, conc_scale)
            amp = co_height.to(torch.complex64).unsqueeze(-1)
            base_on = base_off + amp * self._coedited_template
        rot = self._rotation(params["shift_hz"], torch.deg2rad(params["phase0_deg"]), keep)
        off[:, :keep] += base_off * rot
        sh_on = params["shift_hz"] + params["onoff_shift_hz"]
        ph_on = torch.deg2rad(params["phase0_deg"] + params["onoff_phase_deg"])
        rot = self._rotation(sh_on, ph_on, keep)
        rot *= (1.0 + params["onoff_gain"]).unsqueeze(-1)
        on[:, :keep] += base_on * rot

    def _rotation(self, shift_hz, phase_rad, keep: int) -> torch.Tensor:
        """Return exp(i phase_rad + 2j pi shift_hz t) for the first `keep` samples, [n, keep]."""
        rate = torch.complex(torch.zeros_like(shift_hz), 2.0 * math.pi * shift_hz)
        phase = torch.complex(torch.zeros_like(phase_rad), phase_rad)
        return exp_linear(rate, phase, self.t_s[:keep], block_length(keep))

    def _line_template(self, lines: dict) -> torch.Tensor:
        """Return the summed FID [keep] of fixed lines (dict of [1, K]) without shift/phase."""
        acq = self.acquisition
        offset = (lines["ppm"] - acq.centre_ppm) * acq.f0_mhz
        fid = line_fids(
            self.t_s[: self._broad_keep],
            offset,
            lines["lorentz_hz"],
            lines["gauss_hz"],
            lines["phase_rad"],
            lines["height"],
            self.first_weight,
        )
        return fid[0]

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
        if gauss_env is not None:  # real factor on the real view: no complex promotion
            torch.view_as_real(out).mul_(gauss_env.unsqueeze(-1))
        return out

    def _device_generator(self, generator: torch.Generator) -> torch.Generator:
        """Return `generator` if it lives on our device, else one on our device seeded from it."""
        if generator.device.type == self.device.type:
            return generator
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)
        return g

    def _add_noise(
        self, fid: torch.Tensor, sigma_rel: torch.Tensor, generator: torch.Generator, inplace: bool
    ) -> torch.Tensor:
        """Return fid + complex Gaussian noise N(0, s) + iN(0, s), s = sigma_rel x max|fid|
        (paper; x noise_scale at the grid-matched sampling), in place when `inplace`."""
        if self._fused:
            # Exact N(0, 1) pairs of a counter-based stream (gabaapp.simulate.noise) whose seed
            # is drawn from `generator`, made and added in one compiled pass.
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            out = fid if inplace else torch.empty_like(fid)
            fused.add_noise(
                _floats(fid),
                seed,
                sigma_rel.contiguous().numpy(),
                self.first_weight,
                self.noise_scale,
                _floats(out),
            )
            return out
        sigma = self._sigma(fid, sigma_rel)
        if self.device.type == "cpu":  # the same draws as the compiled path, by numpy
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            n, t = fid.shape
            zr = torch.from_numpy(normal_pairs(seed, 0, n * t)).view(n, t, 2)
        else:
            # Real and imaginary parts each N(0, 1), scaled to s per component (paper).
            z = torch.empty(fid.shape, device=self.device, dtype=torch.complex64)
            zr = torch.view_as_real(z).normal_(generator=self._device_generator(generator))
        sigma = sigma.view(-1, 1, 1)
        if inplace:
            torch.view_as_real(fid).addcmul_(zr, sigma)
            return fid
        return torch.view_as_complex(torch.addcmul(torch.view_as_real(fid), zr, sigma))

    def _sigma(self, fid: torch.Tensor, sigma_rel: torch.Tensor) -> torch.Tensor:
        """Return the per-sample noise SD [n] of the paper's rule for FIDs `fid` [n, T]."""
        parts = torch.view_as_real(fid)
        re, im = parts[..., 0], parts[..., 1]
        power = torch.addcmul(re * re, im, im)
        if self.first_weight != 1.0:  # max|FID| of the unweighted FID (first-point match)
            power[:, 0] /= self.first_weight**2
        sigma = sigma_rel * power.amax(dim=-1).sqrt()
        if self.noise_scale != 1.0:
            sigma = sigma * self.noise_scale
        return sigma

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
        baseline from its own torch.Generator seeded from `generator` (on CPU the noise from
        counter-based streams seeded by it, gabaapp.simulate.noise), so the result depends
        only on `generator`'s state, not on the thread count or scheduling. Where numba is
        installed the CPU work runs in compiled loops (gabaapp.simulate.fused, docs/synthesis.md
        "CPU speed"), with the same values up to float32 rounding.
        """
        if n < 1:
            raise UsageError(f"batch size must be >= 1, got {n}")
        with _serial_torch(self.device) as workers:
            return self._batch(n, generator, with_clean, workers)

    def _batch(
        self, n: int, generator: torch.Generator, with_clean: bool, workers: int
    ) -> SynthBatch:
        """`batch` with torch single-threaded in the calling thread; `workers` slice threads."""
        conc = self.sample_concentrations(n, generator)
        params = self.sample_parameters(n, generator)
        acq, align = self.acquisition, self.config.align
        dev = self.device
        chunk = CPU_CHUNK if dev.type == "cpu" else n
        starts = list(range(0, n, chunk))
        seeds = torch.randint(
            0, 2**62, (len(starts),), generator=generator, device=generator.device
        ).tolist()
        x = _output_tensor((n, 4, GRID_POINTS), dev)
        clean = _output_tensor((n, 4, GRID_POINTS if with_clean else 0), dev)
        shift = torch.zeros((n,), dtype=torch.float32, device=dev)
        phase1_on_grid = bool(params) and bool((params["phase1_deg_per_ppm"] != 0).any())
        pivot = self.config.augmentation.phase1_pivot_ppm

        def work(i: int) -> None:
            sl = slice(starts[i], min(n, starts[i] + chunk))
            g = torch.Generator(device=dev)
            g.manual_seed(seeds[i])
            # the FIDs are dropped once transformed: this thread's buffers may hold them
            fids = self.synthesise(conc[sl], {k: v[sl] for k, v in params.items()}, g, scratch=True)
            same = fids["clean_off"] is fids["off"] and fids["clean_on"] is fids["on"]
            rotated = False
            if with_clean and not same:
                # The clean copy moved by the noisy spectrum's B0 shift: same frequency axis;
                # one search, and one set of FFT calls for both on the compiled path, which
                # also applies the first-order phase as it writes the rows (one pass less).
                phase1 = None
                if phase1_on_grid and self._fused:
                    rate = np.deg2rad(params["phase1_deg_per_ppm"][sl].numpy().astype(np.float64))
                    own = pivot + params["shift_hz"][sl].numpy().astype(np.float64) / acq.f0_mhz
                    phase1, rotated = (rate, own), True
                shift[sl] = network_input_and_clean(
                    fids["off"],
                    fids["on"],
                    fids["clean_off"],
                    fids["clean_on"],
                    acq,
                    align=align,
                    out=x[sl],
                    out_clean=clean[sl],
                    phase1=phase1,
                )
            else:
                _, shift[sl] = network_input(
                    fids["off"], fids["on"], acq, align=align, return_shift_hz=True, out=x[sl]
                )
                if with_clean:  # no augmentation: the clean copy is the input itself
                    clean[sl] = x[sl]
            del fids
            if phase1_on_grid and not rotated:
                # First-order phase about the lines' own ppm: the grid ppm minus the total
                # shift (augmentation + alignment) they were moved by; max |OFF| is unchanged.
                moved_ppm = (params["shift_hz"][sl] + shift[sl]) / acq.f0_mhz
                outs = (x[sl], clean[sl]) if with_clean else (x[sl],)
                rotate_first_order(outs, params["phase1_deg_per_ppm"][sl], pivot, moved_ppm)

        _run_slices(work, len(starts), dev, workers)
        meta = {k: v for k, v in params.items() if k != "extra_level"}
        if params:
            meta["align_shift_hz"] = shift
        return SynthBatch(x=x, clean=clean, y=conc, meta=meta)


def rotate_first_order(
    rows, deg_per_ppm: torch.Tensor, pivot_ppm: float, moved_ppm: torch.Tensor
) -> None:
    """Rotate network input rows [n, 4, 2048] (OFF-imag, OFF-real, ON-imag, ON-real) in place
    by the first-order phase phi1 (ppm - moved_ppm - pivot_ppm) at each grid ppm.

    `rows` is one such tensor or a tuple of several (e.g. a batch's input and its clean copy),
    which all get the same rotation (computed once). `deg_per_ppm` and `moved_ppm` are [n]:
    phi1 and how far the spectrum was moved, so the phase is that of each line's own chemical
    shift (as when applied before the shift).
    """
    group = tuple(rows) if isinstance(rows, (tuple, list)) else (rows,)
    rows = group[0]
    if fused.AVAILABLE and len(group) <= 2 and all(_fused_rows(r) for r in group):
        # factor and rotation of both groups in one compiled pass per spectrum
        other = group[1] if len(group) == 2 else rows[:, :, :0]
        fused.first_order_rows(
            rows.numpy(),
            other.numpy(),
            deg_per_ppm.contiguous().numpy(),
            moved_ppm.contiguous().numpy(),
            float(pivot_ppm),
            float(GRID_PPM_LOW),
            (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1),
            block_length(GRID_POINTS),
        )
        return
    # angle_j = rate (ppm_0 - start) + rate step j: a separable complex exponential in j.
    rate = torch.deg2rad(deg_per_ppm.double()).to(rows.device)
    start = moved_ppm.double().to(rows.device) + pivot_ppm
    step = (GRID_PPM_HIGH - GRID_PPM_LOW) / (GRID_POINTS - 1)
    j = torch.arange(GRID_POINTS, dtype=torch.float32, device=rows.device)
    rot = exp_linear(
        torch.complex(torch.zeros_like(rate), rate * step).to(torch.complex64),
        torch.complex(torch.zeros_like(rate), rate * (GRID_PPM_LOW - start)).to(torch.complex64),
        j,
        block_length(GRID_POINTS),
    )
    if kernels.AVAILABLE and rows.device.type == "cpu":  # one pass over the four rows
        cos_sin = _floats(rot)
        for r in group:
            kernels.rotate_rows(r.numpy(), cos_sin)
        return
    rot = rot.unsqueeze(1)
    cos, sin = rot.real, rot.imag
    for r in group:
        im, re = r[:, 0::2], r[:, 1::2]  # [n, 2, 2048] views: OFF, ON
        # (re + i im) exp(i angle): new re = re cos - im sin, new im = im cos + re sin
        new_re = torch.addcmul(re * cos, im, sin, value=-1.0)
        im.mul_(cos).addcmul_(re, sin)
        re.copy_(new_re)


def _fused_rows(r: torch.Tensor) -> bool:
    """Return True for network-input rows the compiled rotation takes: contiguous float32
    [n, 4, GRID_POINTS] on the CPU."""
    return (
        r.device.type == "cpu"
        and r.dtype == torch.float32
        and r.is_contiguous()
        and tuple(r.shape[1:]) == (4, GRID_POINTS)
    )


_SCRATCH = threading.local()


def _scratch_fids(n: int, t: int) -> tuple[torch.Tensor, np.ndarray]:
    """Return this thread's FID buffers: complex64 [4, n, t] and its float32 numpy view
    [4, n, 2t] (kept between slices: no allocation, and their memory stays cached)."""
    hit = getattr(_SCRATCH, "fids", None)
    if hit is None or tuple(hit[0].shape) != (4, n, t):
        fids = torch.empty((4, n, t), dtype=torch.complex64)
        hit = _SCRATCH.fids = (fids, torch.view_as_real(fids).view(4, n, -1).numpy())
    return hit


def _np(*tensors: torch.Tensor) -> list[np.ndarray]:
    """Return numpy views (shared memory) of contiguous CPU tensors for the compiled loops
    (built for C-contiguous arrays; a copy would not receive their writes)."""
    assert all(t.is_contiguous() for t in tensors)
    return [t.numpy() for t in tensors]


def _floats3(z: torch.Tensor) -> np.ndarray:
    """Return a complex tensor [n, k, m] as a contiguous float32 numpy array [n, k, 2m]."""
    return torch.view_as_real(z.contiguous()).reshape(*z.shape[:2], -1).numpy()


def _floats(z: torch.Tensor) -> np.ndarray:
    """Return a contiguous complex tensor [n, k] as a float32 numpy view [n, 2k] (re, im
    interleaved; shares memory) for the compiled loops."""
    return torch.view_as_real(z.contiguous()).view(z.shape[0], -1).numpy()


# Outputs at least this large (bytes) are backed by transparent huge pages on CPU.
_HUGE_PAGE_MIN_BYTES = 4 << 20
# Memory maps of freed outputs kept for reuse (at most this many bytes in all).
_RECYCLE_MAX_BYTES = 256 << 20
_RECYCLED: list[mmap.mmap] = []
_RECYCLED_LOCK = threading.Lock()


def _output_tensor(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Return an uninitialised float32 tensor of `shape` for a batch's output.

    On CPU a large one is an anonymous memory map advised to use transparent huge pages
    (Linux MADV_HUGEPAGE): the batch writes every byte of it once, and with 4 KiB pages the
    first-touch page faults of the two [1024, 4, 2048] outputs (64 MB) cost ~25 us per
    spectrum, more than a tenth of the synthesis; with 2 MiB pages ~4 us, still ~15-30 us in
    system time when two workers fault in parallel. So the map of an output that has been
    freed (the tensor and every view of it gone) is kept and handed to the next batch of the
    same size, its pages already in place (at most _RECYCLE_MAX_BYTES are kept; the batch
    overwrites every element). Where huge pages cannot be asked for (other systems, devices)
    it is a plain torch.empty.
    """
    count = math.prod(shape)
    nbytes = 4 * count
    if device.type != "cpu" or nbytes < _HUGE_PAGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=torch.float32, device=device)
    buf = None
    with _RECYCLED_LOCK:
        for i, old in enumerate(_RECYCLED):
            if len(old) == nbytes:
                buf = _RECYCLED.pop(i)
                break
    if buf is None:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        with contextlib.suppress(OSError):  # THP switched off in the kernel: plain pages
            buf.madvise(mmap.MADV_HUGEPAGE)
    # The numpy array owns the tensor's memory (torch.from_numpy keeps it alive); when the
    # last view dies the array is freed and the finaliser, which holds the map, recycles it.
    arr = np.frombuffer(buf, dtype=np.float32, count=count)
    weakref.finalize(arr, _recycle, buf)
    return torch.from_numpy(arr).view(shape)


def _recycle(buf: mmap.mmap) -> None:
    """Keep `buf` for the next output of its size while the kept maps stay under the cap."""
    with _RECYCLED_LOCK:
        if sum(len(b) for b in _RECYCLED) + len(buf) <= _RECYCLE_MAX_BYTES:
            _RECYCLED.append(buf)
            return
    # Not kept: drop it without close(). This runs while the dying array still holds its
    # buffer export (weakref callbacks run before numpy releases the base), so close() would
    # raise BufferError; the map is unmapped when its last reference goes, right after.


@contextlib.contextmanager
def _serial_torch(device: torch.device):
    """Run the body with torch single-threaded in this thread (CPU); yield the thread setting
    it had (the number of slice workers), restored afterwards.

    A batch's own torch calls in the calling thread are small (parameter draws, gathers), but
    with several threads some of them open an OpenMP parallel region, and libgomp's team
    threads then spin-wait for the next region for milliseconds (OMP_WAIT_POLICY unset):
    on two cores that spinning took CPU time from the slice workers (~12 us per spectrum of
    user time for the default preset, whose per-metabolite linewidth gather is one such
    call), and where another job holds the other core the region itself waits for a time
    slice (~8 ms). Single-threaded, these calls run inline, with the same values.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu":
        yield threads
        return
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _run_slices(work, n_slices: int, device: torch.device, workers: int) -> None:
    """Call work(i) for i < n_slices: on CPU in `workers` worker threads, each running torch
    single-threaded (which avoids OpenMP start-up and barrier costs on small slices) and
    flushing subnormal floats to zero (FID tails underflow, and subnormal arithmetic is ~40x
    slower on x86; only values below 1e-38 change). Elsewhere in order. The calling thread's
    floating-point mode is untouched (it is per thread)."""
    if device.type != "cpu":
        for i in range(n_slices):
            work(i)
        return

    def in_worker(i: int) -> None:
        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        work(i)

    list(_worker_pool(max(1, workers)).map(in_worker, range(n_slices)))


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _worker_pool(threads: int) -> ThreadPoolExecutor:
    """Return the process' pool of `threads` synthesis workers, made on first use.

    Kept across batches: fresh threads each batch lost their per-thread FFT buffers and malloc
    arenas, and re-faulting that memory cost ~40 us per spectrum in system time with two
    threads. Keyed by process id too, so a forked child (data-loader worker) makes its own.
    """
    key = (os.getpid(), threads)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="gabaapp-synth")
    return pool
