"""`gabaapp simulate bids OUT_DIR --n-participants N [--phantom] [--seed S] ...`: write a
synthetic raw MEGA-PRESS BIDS dataset (gabaapp.simulate.bids_dataset)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gabaapp.errors import GabaappError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `gabaapp simulate bids` to `parser`."""
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new dataset directory")
    parser.add_argument("--n-participants", type=int, required=True, metavar="N")
    parser.add_argument(
        "--phantom",
        action="store_true",
        help="phantom series (fixed NAA/Cr/Glu/Gln, stepped GABA; no MM) with the true "
        "concentrations in participants.tsv",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--n-coils", type=int, default=32, help="receive coils per scan")
    parser.add_argument(
        "--n-transients", type=int, default=320, help="transients per scan (ON + OFF, even)"
    )
    parser.add_argument("--n-points", type=int, default=2048, help="points per FID")


def _default_basis():
    """Return the physics package's default MEGA-PRESS basis."""
    try:
        from gabaapp.physics.basis import default_basis
    except ImportError as err:
        raise GabaappError(
            "the default basis (gabaapp.physics.basis.default_basis) is not available in this "
            f"installation ({err}); install a complete gabaapp"
        ) from None
    return default_basis()


def run(args: argparse.Namespace) -> int:
    """Write the dataset; return 0."""
    from gabaapp.simulate.bids_dataset import write_synthetic_bids

    out = write_synthetic_bids(
        args.out_dir,
        args.n_participants,
        _default_basis(),
        phantom=args.phantom,
        seed=args.seed,
        n_coils=args.n_coils,
        n_transients=args.n_transients,
        n_points=args.n_points,
        progress=True,
    )
    log.info("wrote synthetic BIDS dataset %s", out)
    return 0
