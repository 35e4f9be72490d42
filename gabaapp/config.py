"""Frozen dataclasses for every user-facing option group, validated in __post_init__.

Options are passed explicitly; there is no global configuration module. Each package that
needs an option group adds its dataclass here (append a section; keep sections independent).
"""

from __future__ import annotations

from dataclasses import dataclass

from gabaapp.errors import UsageError

PARTICIPANT_MODELS = ("yae", "cnn", "fcnn", "lcm")


@dataclass(frozen=True)
class RunConfig:
    """Options of one `gabaapp bids_dir out_dir participant|group` run."""

    models: tuple[str, ...] = ("yae",)
    device: str = "cpu"
    nprocs: int = 1

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in PARTICIPANT_MODELS]
        if unknown:
            raise UsageError(f"unknown --model {unknown}; choose from {PARTICIPANT_MODELS}")
        if self.nprocs < 1:
            raise UsageError(f"--nprocs must be >= 1, got {self.nprocs}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise UsageError(f"--device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
