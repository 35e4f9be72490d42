"""MEGA-PRESS / PRESS sequence parameters in one frozen, validated dataclass.

Timing follows the paper's FID-A simulation (paper-notes §2.1): ideal 90-degree excitation at
t = 0, then five delays between pulse centres, in ms: excitation -> 1st refocusing (5),
-> 1st editing (17), -> 2nd refocusing (17), -> 2nd editing (17), -> ADC start (12); TE = sum =
68 ms (TE1 = 10, TE2 = 58). Free-evolution intervals are the delays minus half of each
adjacent pulse. With `editing=False` the editing pulses are omitted and the sequence is PRESS.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from gabaapp.constants import EDIT_OFF_PPM, EDIT_ON_PPM, WATER_PPM
from gabaapp.errors import UsageError
from gabaapp.physics.pulses import available_pulses
from gabaapp.spectra import Acquisition, stable_hash

# Bump when a change to the engine changes simulated numbers (part of every basis hash).
SIMULATOR_VERSION = "1"

COHERENCE_SELECTIONS = ("pathway", "fida_cycle", "full_cycle")


@dataclass(frozen=True)
class MegaPressSequence:
    """Every parameter of a MEGA-PRESS (or, with editing=False, PRESS) simulation.

    Chemical shifts of RF carriers and edit targets are in ppm; the acquired FID is expressed
    in a frame centred on `centre_ppm` (water), so `acquisition().ppm_axis()` is correct.
    """

    f0_mhz: float = 123.23
    spectral_width_hz: float = 2000.0
    n_points: int = 4096
    delays_ms: tuple[float, float, float, float, float] = (5.0, 17.0, 17.0, 17.0, 12.0)
    refocusing_pulse: str = "mao"
    refocusing_duration_ms: float = 5.0
    refocusing_steps: int = 100
    ideal_refocusing: bool = False
    editing: bool = True
    editing_pulse: str = "fida_edit"
    editing_duration_ms: float = 20.0
    editing_steps: int = 99
    edit_on_ppm: float = EDIT_ON_PPM
    edit_off_ppm: float = EDIT_OFF_PPM
    rf_centre_ppm: float = 3.0  # carrier of the localisation pulses (FID-A: 3.0 ppm)
    centre_ppm: float = WATER_PPM  # receiver frame of the output FIDs
    voxel_cm: tuple[float, float] = (3.0, 3.0)
    grid_extent_cm: float = 2.5
    grid_points: int = 8
    coherence_selection: str = "pathway"

    def __post_init__(self) -> None:
        # Normalise sequences given as lists (e.g. from JSON/argparse) so hashing is stable.
        object.__setattr__(self, "delays_ms", tuple(float(d) for d in self.delays_ms))
        object.__setattr__(self, "voxel_cm", tuple(float(v) for v in self.voxel_cm))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def bad(name: str, msg: str) -> UsageError:
            return UsageError(f"sequence parameter {name}: {msg}")

        if not self.f0_mhz > 0:
            raise bad("f0_mhz", f"must be > 0 MHz, got {self.f0_mhz}")
        if not self.spectral_width_hz > 0:
            raise bad("spectral_width_hz", f"must be > 0 Hz, got {self.spectral_width_hz}")
        if not (isinstance(self.n_points, int) and self.n_points > 1):
            raise bad("n_points", f"must be an integer > 1, got {self.n_points!r}")
        if len(self.delays_ms) != 5:
            raise bad("delays_ms", f"needs 5 values (ms), got {len(self.delays_ms)}")
        for i, d in enumerate(self.delays_ms):
            if not d >= 0:
                raise bad(f"delays_ms[{i}]", f"must be >= 0 ms, got {d}")
        for name in ("refocusing_duration_ms", "editing_duration_ms"):
            if not getattr(self, name) > 0:
                raise bad(name, f"must be > 0 ms, got {getattr(self, name)}")
        for name in ("refocusing_steps", "editing_steps", "grid_points"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise bad(name, f"must be an integer >= 1, got {value!r}")
        if len(self.voxel_cm) != 2 or not all(v > 0 for v in self.voxel_cm):
            raise bad("voxel_cm", f"needs two sizes > 0 cm, got {self.voxel_cm}")
        if not self.grid_extent_cm >= 0:
            raise bad("grid_extent_cm", f"must be >= 0 cm, got {self.grid_extent_cm}")
        if self.coherence_selection not in COHERENCE_SELECTIONS:
            raise bad("coherence_selection", f"choose from {COHERENCE_SELECTIONS}")
        names = available_pulses()
        if self.refocusing_pulse not in names:
            raise bad(
                "refocusing_pulse", f"unknown shape {self.refocusing_pulse!r}; choose from {names}"
            )
        if self.editing and self.editing_pulse not in names:
            raise bad("editing_pulse", f"unknown shape {self.editing_pulse!r}; choose from {names}")
        half_sw_ppm = 0.5 * self.spectral_width_hz / self.f0_mhz
        lo, hi = self.centre_ppm - half_sw_ppm, self.centre_ppm + half_sw_ppm
        if self.editing:
            for name in ("edit_on_ppm", "edit_off_ppm"):
                value = getattr(self, name)
                if not lo <= value <= hi:
                    raise bad(
                        name,
                        f"{value} ppm lies outside the spectral width "
                        f"({lo:.2f} to {hi:.2f} ppm); use a frequency inside it",
                    )
        for i, tau in enumerate(self.free_intervals_ms()):
            if tau < -1e-9:
                raise bad(
                    f"delays_ms[{i}]",
                    f"{self.delays_ms[i]} ms is shorter than the adjacent pulse halves "
                    f"(free evolution {tau:.3f} ms); lengthen it or shorten the pulses",
                )

    # ------------------------------------------------------------------ derived values
    @property
    def te_ms(self) -> float:
        """Return the echo time: sum of the five delays."""
        return float(sum(self.delays_ms))

    @property
    def dwell_s(self) -> float:
        return 1.0 / self.spectral_width_hz

    @property
    def refocusing_time_ms(self) -> float:
        """Return the duration the refocusing pulses occupy (0 for ideal pulses)."""
        return 0.0 if self.ideal_refocusing else self.refocusing_duration_ms

    @property
    def editing_time_ms(self) -> float:
        return self.editing_duration_ms if self.editing else 0.0

    def free_intervals_ms(self) -> tuple[float, ...]:
        """Return the five free-evolution intervals between pulse edges, in ms."""
        r, e = 0.5 * self.refocusing_time_ms, 0.5 * self.editing_time_ms
        d = self.delays_ms
        return (d[0] - r, d[1] - r - e, d[2] - e - r, d[3] - r - e, d[4] - e)

    def grid_cm(self) -> tuple[float, ...]:
        """Return the positions sampled along x and along y (cm); one point at 0 if ideal."""
        if self.ideal_refocusing or self.grid_points == 1:
            return (0.0,)
        n, ext = self.grid_points, self.grid_extent_cm
        return tuple(-ext + 2 * ext * i / (n - 1) for i in range(n))

    def acquisition(self) -> Acquisition:
        """Return the Acquisition describing the simulated FIDs."""
        return Acquisition(
            f0_mhz=self.f0_mhz,
            dwell_s=self.dwell_s,
            n_points=self.n_points,
            te_s=self.te_ms / 1000.0,
            centre_ppm=self.centre_ppm,
        )

    def to_dict(self) -> dict:
        """Return all parameters as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["delays_ms"] = list(self.delays_ms)
        d["voxel_cm"] = list(self.voxel_cm)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> MegaPressSequence:
        """Return a sequence from `to_dict` output; unknown keys raise UsageError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise UsageError(f"unknown sequence parameter(s) {unknown}")
        return cls(**data)

    def hash(self) -> str:
        """Return a stable hash of every parameter and the simulator version."""
        return stable_hash(SIMULATOR_VERSION, json.dumps(self.to_dict(), sort_keys=True))

    def replace(self, **changes) -> MegaPressSequence:
        """Return a copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_te(cls, te_ms: float, te1_ms: float = 10.0, **kwargs) -> MegaPressSequence:
        """Return a sequence with echo time `te_ms` split as TE1 = `te1_ms`, TE2 = TE - TE1.

        The editing pulses sit midway between the refocusing pulses and midway between the
        2nd refocusing pulse and the echo (for PRESS they are simply left out).
        """
        te2 = te_ms - te1_ms
        if not (te1_ms > 0 and te2 > 0):
            raise UsageError(f"sequence parameter te_ms: need TE > TE1 > 0, got {te_ms}, {te1_ms}")
        between = 0.5 * te1_ms + 0.5 * te2
        delays = (0.5 * te1_ms, 0.5 * between, 0.5 * between, 0.25 * te2, 0.25 * te2)
        return cls(delays_ms=delays, **kwargs)

    @classmethod
    def preset(cls, name: str, **overrides) -> MegaPressSequence:
        """Return a vendor or paper preset, with optional parameter overrides.

        * "paper": the paper's FID-A simulation (123.23 MHz, 2000 Hz, 4096 points, TE 68,
          5 ms Mao refocusing, 20 ms editing at 1.90 / 7.40 ppm as in the paper's code).
        * "siemens" / "ge" / "philips": TE 68 MEGA-PRESS with the field, sampling and editing
          pulses of the Big GABA protocol (Mikkelsen et al., NeuroImage 2017;159:32-45):
          14-15 ms editing pulses at 1.90 / 7.46 ppm. Inter-pulse timing keeps the paper's
          TE1 = 10 ms split; vendor-specific delays are not public for all three.
        """
        presets = {
            "paper": {"edit_off_ppm": 7.40},
            "siemens": {
                "f0_mhz": 123.23,
                "spectral_width_hz": 2000.0,
                "n_points": 2048,
                "editing_duration_ms": 15.0,
                "edit_off_ppm": 7.46,
            },
            "ge": {
                "f0_mhz": 127.74,
                "spectral_width_hz": 5000.0,
                "n_points": 4096,
                "editing_duration_ms": 15.0,
                "edit_off_ppm": 7.46,
            },
            "philips": {
                "f0_mhz": 127.76,
                "spectral_width_hz": 2000.0,
                "n_points": 2048,
                "editing_duration_ms": 14.0,
                "edit_off_ppm": 7.46,
            },
        }
        if name not in presets:
            raise UsageError(f"unknown sequence preset {name!r}; choose from {sorted(presets)}")
        return cls(**{**presets[name], **overrides})
