"""`gabaapp simulate {basis,bids} ...`: basis sets and synthetic BIDS datasets.

Each action lives in its own module (`simulate_basis.py`, `simulate_bids.py`) with
`add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib

from gabaapp.cli.parser import _Parser
from gabaapp.errors import GabaappError, UsageError

ACTIONS = {
    "basis": ("gabaapp.cli.simulate_basis", "simulate a MEGA-PRESS/PRESS basis set"),
    "bids": ("gabaapp.cli.simulate_bids", "write a synthetic MEGA-PRESS BIDS dataset"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `gabaapp simulate`, with one sub-parser per available action."""
    parser = _Parser(prog="gabaapp simulate", description="Simulate basis sets and datasets.")
    subs = parser.add_subparsers(dest="action", metavar="{" + ",".join(ACTIONS) + "}")
    for name, (module_name, help_text) in ACTIONS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            sub.set_defaults(_module=None)
            continue
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str]) -> int:
    """Run `gabaapp simulate ...`; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.action is None:
        raise UsageError(
            "gabaapp simulate: name an action: " + ", ".join(ACTIONS) + " (see --help)"
        )
    if args._module is None:
        raise GabaappError(f"'gabaapp simulate {args.action}' is not available in this version yet")
    return args._module.run(args)
