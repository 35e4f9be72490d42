"""`gabaapp train ...`: model training, selection and validation (issue: models)."""

from __future__ import annotations

from gabaapp.errors import GabaappError


def main(argv: list[str]) -> int:
    """Run the train subcommand; return the exit code."""
    raise GabaappError(
        "'gabaapp train' is not available in this version yet (model training lands with the "
        "models issue)"
    )
