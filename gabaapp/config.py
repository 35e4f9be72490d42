"""Frozen dataclasses for every user-facing option group, validated in __post_init__.

Options are passed explicitly; there is no global configuration module. Each package that
needs an option group adds its dataclass here (append a section; keep sections independent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gabaapp.errors import UsageError

PARTICIPANT_MODELS = ("yae", "cnn", "fcnn", "lcm")
# Network arithmetic at inference: bfloat16 autocast is 2-3x faster on CPUs with AVX-512-BF16
# or AMX and on GPUs, with output differences of order 1e-3 (docs/benchmarks.md).
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class RunConfig:
    """Options of one `gabaapp bids_dir out_dir participant|group` run."""

    models: tuple[str, ...] = ("yae",)
    device: str = "cpu"
    nprocs: int = 1
    precision: str = "float32"

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in PARTICIPANT_MODELS]
        if unknown:
            raise UsageError(f"unknown --model {unknown}; choose from {PARTICIPANT_MODELS}")
        if self.nprocs < 1:
            raise UsageError(f"--nprocs must be >= 1, got {self.nprocs}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise UsageError(f"--device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")


# --- Synthesis (gabaapp.simulate): augmentation and spectrum generator options -----------------

SAMPLERS = ("sobol", "uniform", "invivo", "zeros")
SAMPLINGS = ("basis", "grid")
LINEWIDTH_MODES = ("spectrum", "metabolite")
MM_STATES = ("gaba+", "gaba")


def _check_range(name: str, lo_hi: tuple[float, float], lo: float, hi: float) -> None:
    """Raise UsageError unless lo <= a <= b <= hi for the pair (a, b) of setting `name`."""
    a, b = lo_hi
    if not (lo <= a <= b <= hi):
        raise UsageError(
            f"augmentation setting {name}={tuple(lo_hi)} is out of range: need "
            f"{lo} <= low <= high <= {hi}"
        )


@dataclass(frozen=True)
class AugmentationConfig:
    """Ranges (low, high) of every augmentation; each is drawn uniformly per spectrum.

    A range (0, 0) or `enabled=False` switches an augmentation off. Units are in the names
    (Hz, deg, deg_per_ppm, relative amplitudes). docs/synthesis.md gives the literature source
    of each default; `paper()` reproduces the paper (noise + Lorentzian linewidth only).
    """

    # Lorentzian FWHM added to the basis (Hz); the paper's linewidth augmentation.
    lorentz_hz: tuple[float, float] = (1.0, 8.0)
    # Gaussian FWHM (Hz), giving Voigt lines together with lorentz_hz.
    gauss_hz: tuple[float, float] = (0.0, 6.0)
    # "spectrum": one linewidth for all metabolites; "metabolite": plus a per-metabolite extra.
    linewidth_mode: str = "metabolite"
    # Per-metabolite extra Lorentzian FWHM (Hz; T2 differs between metabolites), drawn from 5
    # evenly spaced values in this range.
    metabolite_lorentz_hz: tuple[float, float] = (0.0, 2.0)
    # Frequency shift of the whole spectrum (Hz, +-range).
    shift_hz: tuple[float, float] = (-10.0, 10.0)
    # Zero-order phase (deg) and first-order phase (deg/ppm about `phase1_pivot_ppm`).
    phase0_deg: tuple[float, float] = (-30.0, 30.0)
    phase1_deg_per_ppm: tuple[float, float] = (-5.0, 5.0)
    phase1_pivot_ppm: float = 3.0
    # Paper noise: sigma ~ U(noise) x max|FID|, complex Gaussian, separately for OFF and ON.
    noise: tuple[float, float] = (0.0, 0.03)
    # Smooth baseline: broad lines, amplitude relative to the NAA-equivalent peak height.
    baseline_amplitude: tuple[float, float] = (0.0, 0.3)
    # Macromolecules: total MM amplitude relative to the NAA-equivalent signal.
    mm_amplitude: tuple[float, float] = (0.0, 0.4)
    # "gaba+": edit-ON co-edits the 3.0 ppm MM (GABA+); "gaba": MM-suppressed editing.
    mm_state: str = "gaba+"
    # Fraction of the GABA+ 3.0 ppm DIFF peak that is co-edited MM at the in vivo MM level
    # (mm_amplitude = simulate.nuisance.MM_INVIVO_AMPLITUDE; the co-edited MM scales with
    # mm_amplitude, so none without MM); 0 for "gaba".
    mm_coedited_fraction: tuple[float, float] = (0.35, 0.55)
    # Residual water amplitude relative to the NAA-equivalent signal, and its offset (ppm).
    water_amplitude: tuple[float, float] = (0.0, 5.0)
    water_ppm: tuple[float, float] = (4.60, 4.75)
    # ON/OFF mismatch: extra shift (Hz, +-) and zero-order phase (deg, +-) of ON vs OFF.
    onoff_shift_hz: tuple[float, float] = (-1.0, 1.0)
    onoff_phase_deg: tuple[float, float] = (-5.0, 5.0)
    # Imperfect subtraction: ON gain relative to OFF (fraction, +-).
    onoff_gain: tuple[float, float] = (-0.03, 0.03)
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_range("lorentz_hz", self.lorentz_hz, 0.0, 50.0)
        _check_range("gauss_hz", self.gauss_hz, 0.0, 50.0)
        if self.linewidth_mode not in LINEWIDTH_MODES:
            raise UsageError(
                f"augmentation setting linewidth_mode={self.linewidth_mode!r}; choose from "
                f"{LINEWIDTH_MODES}"
            )
        _check_range("metabolite_lorentz_hz", self.metabolite_lorentz_hz, 0.0, 20.0)
        _check_range("shift_hz", self.shift_hz, -100.0, 100.0)
        _check_range("phase0_deg", self.phase0_deg, -180.0, 180.0)
        _check_range("phase1_deg_per_ppm", self.phase1_deg_per_ppm, -90.0, 90.0)
        if not 0.0 <= self.phase1_pivot_ppm <= 10.0:
            raise UsageError(
                f"augmentation setting phase1_pivot_ppm={self.phase1_pivot_ppm} is out of "
                "range: need 0 <= value <= 10"
            )
        _check_range("noise", self.noise, 0.0, 1.0)
        _check_range("baseline_amplitude", self.baseline_amplitude, 0.0, 10.0)
        _check_range("mm_amplitude", self.mm_amplitude, 0.0, 10.0)
        if self.mm_state not in MM_STATES:
            raise UsageError(
                f"augmentation setting mm_state={self.mm_state!r}; choose from {MM_STATES}"
            )
        _check_range("mm_coedited_fraction", self.mm_coedited_fraction, 0.0, 0.9)
        _check_range("water_amplitude", self.water_amplitude, 0.0, 1000.0)
        _check_range("water_ppm", self.water_ppm, 4.0, 5.5)
        _check_range("onoff_shift_hz", self.onoff_shift_hz, -20.0, 20.0)
        _check_range("onoff_phase_deg", self.onoff_phase_deg, -90.0, 90.0)
        _check_range("onoff_gain", self.onoff_gain, -0.5, 0.5)

    @classmethod
    def paper(cls, lorentz_hz: tuple[float, float] = (1.0, 8.0)) -> AugmentationConfig:
        """The paper's augmentation: Lorentzian linewidth per spectrum and ADC noise only.

        `lorentz_hz=(2.0, 2.0)` gives the paper's non-augmented datasets (fixed 2 Hz lines).
        """
        return cls(
            lorentz_hz=lorentz_hz,
            gauss_hz=(0.0, 0.0),
            linewidth_mode="spectrum",
            metabolite_lorentz_hz=(0.0, 0.0),
            shift_hz=(0.0, 0.0),
            phase0_deg=(0.0, 0.0),
            phase1_deg_per_ppm=(0.0, 0.0),
            noise=(0.0, 0.03),
            baseline_amplitude=(0.0, 0.0),
            mm_amplitude=(0.0, 0.0),
            mm_state="gaba",
            mm_coedited_fraction=(0.0, 0.0),
            water_amplitude=(0.0, 0.0),
            onoff_shift_hz=(0.0, 0.0),
            onoff_phase_deg=(0.0, 0.0),
            onoff_gain=(0.0, 0.0),
        )

    @classmethod
    def none(cls) -> AugmentationConfig:
        """No augmentation at all: the output is the basis linear combination."""
        return dataclasses.replace(
            cls.paper(lorentz_hz=(0.0, 0.0)), noise=(0.0, 0.0), enabled=False
        )


@dataclass(frozen=True)
class SynthesisConfig:
    """Options of the on-the-fly spectrum generator (gabaapp.simulate.SpectrumGenerator).

    `sampler`: "sobol" (paper: scipy.stats.qmc.Sobol over [0,1)^5, skipping the first
    floor(log2(n_spectra*5)) points), "uniform", "invivo" (literature ratios to NAA) or
    "zeros" (uniform with random metabolites set exactly to 0, as in phantom series).
    `n_spectra` sizes the Sobol skip rule (paper: 100 000 -> skip 18).
    """

    metabolites: tuple[str, ...] = ("Cr", "GABA", "Gln", "Glu", "NAA")
    sampler: str = "sobol"
    n_spectra: int = 100_000
    zero_probability: float = 0.3
    augmentation: AugmentationConfig = AugmentationConfig()
    align: bool = True
    # FID length used (None: the basis' own; e.g. 2048 to match 2048-point acquisitions such as
    # Big GABA's, which also halves the cost at a 4096-point basis).
    n_points: int | None = None
    # "basis": synthesise at the basis' sampling, network input by chirp-z (how the bundled
    # models were trained); "grid": at the grid-matched sampling of the same acquisition time
    # (basis re-simulated once, network input by one FFT per FID; docs/synthesis.md).
    sampling: str = "basis"

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise UsageError(
                f"synthesis setting sampling={self.sampling!r}; choose from {SAMPLINGS}"
            )
        if self.n_points is not None and self.n_points < 256:
            raise UsageError(f"synthesis setting n_points={self.n_points} must be >= 256")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"synthesis setting sampler={self.sampler!r}; choose from {SAMPLERS}")
        if self.n_spectra < 1:
            raise UsageError(f"synthesis setting n_spectra={self.n_spectra} must be >= 1")
        if not 0.0 <= self.zero_probability < 1.0:
            raise UsageError(
                f"synthesis setting zero_probability={self.zero_probability} must be in [0, 1)"
            )
        if not self.metabolites or len(set(self.metabolites)) != len(self.metabolites):
            raise UsageError(
                f"synthesis setting metabolites={self.metabolites} must be non-empty and unique"
            )

    @classmethod
    def paper(cls, lorentz_hz: tuple[float, float] = (1.0, 8.0)) -> SynthesisConfig:
        """The paper's generator: Sobol concentrations, Lorentzian linewidth aug., noise only.

        `lorentz_hz=(2.0, 2.0)` reproduces its non-augmented training sets (paper-notes §2.6).
        """
        return cls(sampler="sobol", augmentation=AugmentationConfig.paper(lorentz_hz))


# --- Linear-combination model fit (gabaapp.lcm) ----------------------------------------------

LCM_MODES = ("joint", "separate")


@dataclass(frozen=True)
class LcmConfig:
    """Options of the linear-combination model fit (`gabaapp.lcm`, `--model lcm`).

    Defaults follow LCModel habits where they exist (Provencher 1993, LCModel manual):
    fit range 1.0-4.2 ppm, baseline knot spacing 0.15 ppm (DKNTMN), Voigt broadening, a
    first-order phase limited to tens of degrees per ppm.
    """

    # Metabolites to fit; same order and names as gabaapp.constants.METABOLITES by default.
    metabolites: tuple[str, ...] = ("Cr", "GABA", "Gln", "Glu", "NAA")
    ppm_range: tuple[float, float] = (1.0, 4.2)
    # "joint": OFF and DIFF share amplitudes and linewidths; "separate": two independent fits.
    mode: str = "joint"
    # Regularised cubic B-spline baseline; spacing <= 0 disables the baseline.
    baseline_knot_spacing_ppm: float = 0.15
    # Weight of the squared second differences of the spline coefficients, per fitted point and
    # relative to the data misfit (1: curvature costs as much as misfit; 1e-3 follows humps
    # of >= 0.5 ppm FWHM while staying much smoother than metabolite lines).
    baseline_stiffness: float = 1e-3
    # Candidate stiffnesses baseline_stiffness * 10**-k, k < steps, chosen per spectrum by
    # Akaike's criterion (misfit + 2 x effective dimension); 1 keeps baseline_stiffness.
    baseline_stiffness_steps: int = 4
    # Gaussian macromolecules at 0.9, 1.7 ppm (edit-OFF) and 3.0 ppm (co-edited, DIFF).
    include_mm: bool = False
    max_shift_hz: float = 20.0
    max_lorentz_hz: float = 25.0
    max_gauss_hz: float = 25.0
    fit_phase1: bool = True
    max_phase1_deg_per_ppm: float = 30.0
    max_nfev: int = 100
    # Largest relative difference between basis and data spectrometer frequency.
    max_f0_mismatch: float = 0.005
    # Signal-free ppm ranges for the noise SD (used where the spectral width covers them).
    # (Amide protons reach ~8.5 ppm, lipids/MM start near 0.6 ppm.)
    noise_ppm_ranges: tuple[tuple[float, float], ...] = ((-3.0, 0.3), (8.7, 12.0))
    # "voigt": Voigt decay only; "free": also an LCModel-style free line-shape kernel (real,
    # area 1, on the spectral grid, +-lineshape_halfwidth_ppm) convolved with every basis line,
    # its roughness penalised by lineshape_stiffness x the data's energy (Provencher 1993).
    lineshape: str = "voigt"
    lineshape_halfwidth_ppm: float = 0.1
    lineshape_stiffness: float = 1e-4
    # Individual shift per basis column beyond the common shift, shared by all sub-spectra,
    # with a Gaussian prior about 0 and a hard limit at 3 prior SDs: SD individual_shift_sd_ppm
    # for metabolites, each MM/lipid component's own (MMComponent.shift_sd_ppm). LCModel fits
    # such shifts likewise (Provencher 1993). "auto": on for single unedited spectra
    # (fit_spectrum, e.g. PRESS), off for MEGA-PRESS (fit_megapress); "on" / "off" force it.
    individual_shifts: str = "auto"
    individual_shift_sd_ppm: float = 0.004
    # With individual shifts on and this SD > 0, each column also gets its own extra
    # Lorentzian width (>= 0, Gaussian prior of this SD in Hz, limit 3 SDs); 0 disables.
    individual_width_sd_hz: float = 0.0
    # MM/lipid set of single-spectrum fits (MEGA-PRESS fits keep their 0.9/1.7/3.0 ppm lines):
    # "gaussian" (Gaussians at 0.9-3.9 ppm) or "lcmodel" (LCModel's short-TE MM and lipid
    # set, gabaapp.lcm.mm.SHORT_TE_COMPONENTS). Needs include_mm.
    mm_set: str = "gaussian"
    # Soft constraints on amplitude ratios (LCModel-style prior knowledge, Provencher 1993):
    # entries (name, reference names, expected ratio, ratio SD) add a Gaussian prior on
    # amplitude(name) / sum(amplitude(references)), e.g. ("PE", ("Cr", "PCr"), 0.15, 0.1).
    # The prior row (a - r * a_ref) / (SD * a_ref_start) joins the least-squares residual,
    # a_ref_start from the fit without the prior at the start values. An entry whose names
    # are not all fitted is ignored. Empty (no prior) by default.
    amplitude_priors: tuple[tuple[str, tuple[str, ...], float, float], ...] = ()
    # Residual whiteness test (lag-1 autocorrelation, Ljung-Box against a correct model's
    # residual; gabaapp.lcm.whiteness) in LcmResult.residual_whiteness and the flags. "auto":
    # on for single spectra (fit_spectrum), off for MEGA-PRESS (fit_megapress: it costs ~6 ms
    # of a ~0.1 s fit there, and the MEGA-PRESS speed must not drop); "on" / "off" force it.
    residual_whiteness: str = "auto"

    def __post_init__(self) -> None:
        lo, hi = self.ppm_range
        if not lo < hi:
            raise UsageError(f"LCM ppm_range must ascend (low, high), got {self.ppm_range}")
        if not self.metabolites or len(set(self.metabolites)) != len(self.metabolites):
            raise UsageError(f"LCM metabolites must be distinct and non-empty: {self.metabolites}")
        if self.mode not in LCM_MODES:
            raise UsageError(f"LCM mode {self.mode!r} unknown; choose from {LCM_MODES}")
        if self.baseline_stiffness < 0:
            raise UsageError("LCM baseline_stiffness must be >= 0")
        positive = ("max_shift_hz", "max_lorentz_hz", "max_gauss_hz", "max_phase1_deg_per_ppm")
        for name in positive:
            if not getattr(self, name) > 0:
                raise UsageError(f"LCM {name} must be > 0, got {getattr(self, name)}")
        if self.max_nfev < 1:
            raise UsageError(f"LCM max_nfev must be >= 1, got {self.max_nfev}")
        if self.baseline_stiffness_steps < 1:
            raise UsageError(
                f"LCM baseline_stiffness_steps must be >= 1, got {self.baseline_stiffness_steps}"
            )
        if not 0 <= self.max_f0_mismatch < 0.5:
            raise UsageError(f"LCM max_f0_mismatch must be in [0, 0.5), got {self.max_f0_mismatch}")
        if self.lineshape not in ("voigt", "free"):
            raise UsageError(f"LCM lineshape {self.lineshape!r} unknown; choose 'voigt' or 'free'")
        if not self.lineshape_halfwidth_ppm > 0 or self.lineshape_stiffness < 0:
            raise UsageError("LCM lineshape_halfwidth_ppm must be > 0 and lineshape_stiffness >= 0")
        if self.individual_shifts not in ("auto", "on", "off"):
            raise UsageError(
                f"LCM individual_shifts {self.individual_shifts!r} unknown; "
                f"choose 'auto', 'on' or 'off'"
            )
        if self.residual_whiteness not in ("auto", "on", "off"):
            raise UsageError(
                f"LCM residual_whiteness {self.residual_whiteness!r} unknown; "
                f"choose 'auto', 'on' or 'off'"
            )
        if self.mm_set not in ("gaussian", "lcmodel"):
            raise UsageError(f"LCM mm_set {self.mm_set!r} unknown; choose 'gaussian' or 'lcmodel'")
        if self.individual_width_sd_hz < 0:
            raise UsageError("LCM individual_width_sd_hz must be >= 0")
        if not self.individual_shift_sd_ppm > 0:
            raise UsageError("LCM individual_shift_sd_ppm must be > 0")
        for entry in self.amplitude_priors:
            name, refs, ratio, sd = entry
            if not (refs and name not in refs and ratio >= 0 and sd > 0):
                raise UsageError(
                    "LCM amplitude_priors entries are (name, non-empty references without "
                    f"name, ratio >= 0, SD > 0), got {entry!r}"
                )


# --- training (models helper) -------------------------------------------------------------

TRAIN_MODELS = ("yae", "cnn", "fcnn")


@dataclass(frozen=True)
class TrainConfig:
    """Options of `gabaapp train` (paper-notes §4.1). Per-model defaults where None: LR-plateau
    patience 30 (YAE) / 20 (CNN, FCNN); early stopping active from epoch 25 (YAE) / 0."""

    model: str = "yae"
    preset: str | None = None  # architecture preset; None -> the model's default preset
    seed: int = 0
    n_train: int = 100_000  # spectra drawn on the fly per epoch
    n_val: int = 2_000  # fixed seeded validation set
    val_seed: int = 1_000_003
    batch_size: int = 16
    draw_size: int = 1024  # spectra synthesised per generator call (split into batches)
    # 0: draw every training spectrum on the fly; N > 0: draw a fixed seeded pool of N spectra
    # once and sample each epoch's n_train spectra from it (the paper's fixed training set).
    pool_size: int = 0
    lr: float = 1e-4
    max_epochs: int = 2000
    clip_norm: float = 1.0
    plateau_factor: float = 0.5
    plateau_patience: int | None = None
    min_lr: float = 1e-7
    early_stop_patience: int = 25
    early_stop_min_delta: float = 1e-8
    early_stop_start: int | None = None
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    device: str = "cpu"
    # Wall-clock budget in seconds (None: none): training ends after the epoch that reaches it
    # and the best model is written as after early stopping (a time-boxed GPU lease or a SLURM
    # job's wall time).
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.model not in TRAIN_MODELS:
            raise UsageError(f"unknown --model {self.model!r}; choose from {TRAIN_MODELS}")
        positive = ("n_train", "n_val", "batch_size", "draw_size", "max_epochs")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"train {name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.clip_norm > 0 and 0 < self.plateau_factor < 1):
            raise UsageError("train lr and clip_norm must be > 0 and plateau_factor in (0, 1)")
        if self.early_stop_patience < 1:
            raise UsageError("train early_stop_patience must be >= 1")
        if self.pool_size < 0:
            raise UsageError(f"train pool_size must be >= 0, got {self.pool_size}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise UsageError(f"--device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise UsageError(f"--time-limit must be > 0 seconds, got {self.time_limit_s}")

    @property
    def plateau_patience_epochs(self) -> int:
        """Return the LR-plateau patience in epochs (model default when unset)."""
        if self.plateau_patience is not None:
            return self.plateau_patience
        return 30 if self.model == "yae" else 20

    @property
    def early_stop_start_epoch(self) -> int:
        """Return the first epoch at which early stopping watches (model default when unset)."""
        if self.early_stop_start is not None:
            return self.early_stop_start
        return 25 if self.model == "yae" else 0


# --- Pre-processing of measured MEGA-PRESS transients (gabaapp.preproc) ------------------------

COIL_METHODS = ("wsvd", "signal")
ALIGN_METHODS = ("robust", "sr", "none")
WATER_REMOVAL_METHODS = ("hlsvd", "none")


def _check_ppm_pair(name: str, pair: tuple[float, float]) -> None:
    """Raise UsageError unless `pair` is (low, high) ppm with low < high."""
    if len(pair) != 2 or not pair[0] < pair[1]:
        raise UsageError(f"preprocessing setting {name}={tuple(pair)} must be (low, high) ppm")


@dataclass(frozen=True)
class PreprocConfig:
    """Options of the MEGA-PRESS pre-processing chain (gabaapp.preproc.chain).

    docs/preprocessing.md describes each step and cites its source.
    """

    # Coil combination: "wsvd" (noise-whitened SVD, max-SNR weights) or "signal" (first-point
    # amplitude/phase weighting by S/noise^2); both use the water reference when present.
    coil_method: str = "wsvd"
    # Frequency/phase alignment of transients: "robust" (band-limited, iterated, weighted
    # reference; Mikkelsen et al. 2020), "sr" (Near et al. 2015), or "none".
    align_method: str = "robust"
    align_ppm: tuple[float, float] = (1.8, 4.2)  # band used to estimate the offsets
    align_time_s: float = 0.2  # FID duration used by spectral registration
    max_shift_hz: float = 20.0  # search range of the initial frequency estimate
    # Align the averaged edit-ON to edit-OFF on these bands (Cho 3.2, Cr-CH2 3.93 ppm): no
    # edited signal there, unlike Cr-CH3 at 3.0 ppm where edited GABA sits.
    align_on_to_off: bool = True
    on_off_ppm: tuple[tuple[float, float], ...] = ((3.15, 3.35), (3.85, 4.05))
    # Outlier rejection: robust z-score of the deviation from the median spectrum.
    reject_outliers: bool = True
    outlier_ppm: tuple[float, float] = (1.8, 4.2)
    outlier_z: float = 3.0
    reject_pairs: bool = True  # reject the ON/OFF partner too, keeping the subtraction paired
    eddy_current: bool = True  # Klose correction with the water reference
    water_removal: str = "hlsvd"
    water_ppm: tuple[float, float] = (4.2, 5.2)  # HLSVD components removed in this band
    hlsvd_rank: int = 25
    phase_correct: bool = True  # zero-order phase from the Cr/NAA singlets of edit-OFF
    reference_frequency: bool = True  # shift NAA/Cr to 2.01/3.015 ppm (as the network input)

    def __post_init__(self) -> None:
        choices = (
            ("coil_method", self.coil_method, COIL_METHODS),
            ("align_method", self.align_method, ALIGN_METHODS),
            ("water_removal", self.water_removal, WATER_REMOVAL_METHODS),
        )
        for name, value, allowed in choices:
            if value not in allowed:
                raise UsageError(f"preprocessing {name}={value!r}; choose from {allowed}")
        for name in ("align_ppm", "outlier_ppm", "water_ppm"):
            _check_ppm_pair(name, getattr(self, name))
        if not self.on_off_ppm:
            raise UsageError("preprocessing on_off_ppm needs at least one (low, high) band")
        for pair in self.on_off_ppm:
            _check_ppm_pair("on_off_ppm", pair)
        if not (self.align_time_s > 0 and self.max_shift_hz > 0 and self.outlier_z > 0):
            raise UsageError("preprocessing align_time_s, max_shift_hz, outlier_z must be > 0")
        if self.hlsvd_rank < 1:
            raise UsageError(f"preprocessing hlsvd_rank must be >= 1, got {self.hlsvd_rank}")


# ----------------------------------------------------------------------------- config file
def _as_tuples(value: object) -> object:
    """TOML arrays arrive as lists; the option dataclasses hold (nested) tuples."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


def options_from_mapping(cls: type, section: str, values: dict) -> object:
    """Return `cls(**values)` with lists as tuples; UsageError naming unknown keys of the
    config-file `section`."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(
            f"--config-file [{section}]: unknown option(s) {unknown}; known: {sorted(known)}"
        )
    return cls(**{k: _as_tuples(v) for k, v in values.items()})


RUN_OPTION_TABLES = {"preproc": PreprocConfig, "lcm": LcmConfig}


def read_run_option_tables(path: str | None) -> dict[str, dict]:
    """Return the [preproc] and [lcm] tables of a `--config-file` TOML as plain dicts
    ({} for an absent table or no file), after checking that each builds its option dataclass
    (UsageError naming the bad table or option). Plain dicts travel through nipype nodes;
    `options_from_mapping` turns them back into PreprocConfig / LcmConfig."""
    import tomllib

    data: dict = {}
    if path is not None:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    unknown = sorted(set(data) - set(RUN_OPTION_TABLES))
    if unknown:
        raise UsageError(f"--config-file: unknown table(s) {unknown}; use [preproc] and [lcm]")
    tables = {name: dict(data.get(name, {})) for name in RUN_OPTION_TABLES}
    for name, cls in RUN_OPTION_TABLES.items():
        options_from_mapping(cls, name, tables[name])
    return tables
