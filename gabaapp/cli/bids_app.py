"""The BIDS-App levels: checks on the directories, then the participant or group level."""

from __future__ import annotations

import argparse

from gabaapp.errors import GabaappError


def run_bids_app(args: argparse.Namespace) -> int:
    """Run the participant or group level described by parsed `args`; return the exit code."""
    raise GabaappError("the participant and group levels are being built")
