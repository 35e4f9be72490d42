"""Fixed, seeded synthetic sets on disk (.npz) for reproducible validation and test metrics.

Training draws spectra on the fly; a validation/test set is materialised once with a seed and
re-read, so metrics compare like with like across runs and machines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from gabaapp.atomic import atomic_path
from gabaapp.config import SynthesisConfig
from gabaapp.errors import DataError, NoInputError
from gabaapp.simulate.generator import SpectrumGenerator, SynthBatch
from gabaapp.spectra import Basis

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def materialise(
    generator_or_config: SpectrumGenerator | SynthesisConfig,
    n: int,
    seed: int,
    path: str | os.PathLike,
    *,
    basis: Basis | None = None,
    batch_size: int = 1024,
    with_clean: bool = True,
) -> Path:
    """Write `n` spectra drawn with `seed` to `path` (.npz) and return the path.

    Given a SynthesisConfig, the generator is built from `basis` (default: the physics package's
    default basis). The Sobol stream is restarted, so the same (config, basis, n, seed) always
    gives the same file (for the same batch_size). Arrays: x, clean [n, 4, 2048] float32, y [n, n_met], meta_<name>, and
    `info` (JSON: config, seed, metabolites, basis hash, format version).
    """
    if n < 1:
        raise DataError(f"materialise needs n >= 1 spectra, got {n}")
    if isinstance(generator_or_config, SynthesisConfig):
        if basis is None:
            from gabaapp.physics.basis import default_basis  # the physics package's basis

            basis = default_basis()
        gen = SpectrumGenerator(basis, generator_or_config)
    else:
        gen = generator_or_config
    gen.reset()
    g = torch.Generator(device=gen.device).manual_seed(seed)
    parts: list[SynthBatch] = []
    done = 0
    while done < n:
        k = min(batch_size, n - done)
        parts.append(gen.batch(k, g, with_clean=with_clean))
        done += k
    arrays = {
        "x": torch.cat([p.x for p in parts]).cpu().numpy(),
        "clean": torch.cat([p.clean for p in parts]).cpu().numpy(),
        "y": torch.cat([p.y for p in parts]).cpu().numpy(),
    }
    for key in parts[0].meta:
        arrays[f"meta_{key}"] = torch.cat([p.meta[key] for p in parts]).cpu().numpy()
    info = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "n": n,
        "metabolites": list(gen.config.metabolites),
        "basis_hash": gen.basis.sequence_hash,
        "config": dataclasses.asdict(gen.config),
    }
    arrays["info"] = np.array(json.dumps(info))
    out = Path(path)
    if out.suffix != ".npz":
        out = out.with_suffix(".npz")
    with atomic_path(out) as tmp:  # OutputWriteError (exit 74) when it cannot be written
        np.savez_compressed(tmp, **arrays)
    logger.info("materialised %d spectra (seed %d) to %s", n, seed, out)
    return out


def load_materialised(path: str | os.PathLike) -> SynthBatch:
    """Return the SynthBatch stored by `materialise`; meta["info"] holds its JSON description."""
    p = Path(path)
    if not p.is_file():
        raise NoInputError(f"no materialised synthetic set at {p}; create it with materialise()")
    try:
        with np.load(p, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            meta = {k[5:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("meta_")}
            batch = SynthBatch(
                x=torch.from_numpy(z["x"]),
                clean=torch.from_numpy(z["clean"]),
                y=torch.from_numpy(z["y"]),
                meta=meta,
            )
    except (KeyError, ValueError, OSError) as err:
        raise DataError(f"{p} is not a gabaapp synthetic set ({err}); re-create it") from err
    if info.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{p} has format version {info.get('format_version')}; re-create it")
    batch.meta["info"] = info
    return batch
