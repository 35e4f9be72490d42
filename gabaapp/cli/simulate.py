"""`gabaapp simulate ...`: basis sets and synthetic BIDS datasets."""

from __future__ import annotations

from gabaapp.errors import GabaappError


def main(argv: list[str]) -> int:
    """Run the simulate subcommand; return the exit code."""
    raise GabaappError(
        "'gabaapp simulate' is not available in this version yet (it lands with the simulator "
        "and synthesis issues)"
    )
