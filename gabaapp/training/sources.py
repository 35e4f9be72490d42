"""Spectrum sources for training: a mixture of generators (several sequences / field strengths
mixed within every batch), and helpers for optional source capabilities."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class MixedBatch:
    """A batch assembled from several sources (same fields as SynthBatch)."""

    x: torch.Tensor
    clean: torch.Tensor
    y: torch.Tensor
    meta: dict = field(default_factory=dict)


def batch_from(source: Any, n: int, generator: torch.Generator, with_clean: bool) -> Any:
    """Return source.batch(n, generator), asking for no clean copy when the source supports it
    and the model does not need one (saves synthesis time)."""
    if not with_clean and "with_clean" in inspect.signature(source.batch).parameters:
        return source.batch(n, generator, with_clean=False)
    return source.batch(n, generator)


class MixtureSource:
    """Draw every batch from several sources: each spectrum picks a source uniformly at random
    (from the torch generator), the sub-batches are concatenated in a random order, and
    `meta['source']` says which source made each spectrum."""

    def __init__(self, sources: Sequence[Any]):
        if not sources:
            raise ValueError("MixtureSource needs at least one source")
        self.sources = list(sources)

    def batch(self, n: int, generator: torch.Generator, *, with_clean: bool = True) -> MixedBatch:
        k = len(self.sources)
        pick = torch.randint(0, k, (n,), generator=generator, device=generator.device).cpu()
        counts = torch.bincount(pick, minlength=k).tolist()
        parts, ids = [], []
        for i, (src, c) in enumerate(zip(self.sources, counts, strict=True)):
            if c:
                parts.append(batch_from(src, c, generator, with_clean))
                ids.append(torch.full((c,), i))
        order = torch.randperm(n, generator=generator, device=generator.device)
        dev = parts[0].x.device
        order = order.to(dev)
        x = torch.cat([p.x.to(dev) for p in parts])[order]
        y = torch.cat([p.y.to(dev) for p in parts])[order]
        clean = torch.cat([p.clean.to(dev) for p in parts])[order]
        return MixedBatch(x, clean, y, {"source": torch.cat(ids).to(dev)[order]})

    def state_dict(self) -> dict[str, Any]:
        return {str(i): source_state(s) for i, s in enumerate(self.sources)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, s in enumerate(self.sources):
            load_source_state(s, state.get(str(i)))


def source_state(source: Any) -> Any:
    """Return the source's own state (e.g. a quasi-random stream position) or None."""
    return source.state_dict() if hasattr(source, "state_dict") else None


def load_source_state(source: Any, state: Any) -> None:
    """Restore a state returned by `source_state` (no-op for stateless sources)."""
    if state is not None and hasattr(source, "load_state_dict"):
        source.load_state_dict(state)


class PoolSource:
    """A fixed pool of spectra drawn once (seeded) from another source; every batch picks
    spectra from the pool uniformly at random with replacement (torch generator). This is the
    paper's fixed-training-set protocol (100 k spectra, many epochs), and it makes resuming
    exact for any source because nothing is drawn from it after the pool."""

    def __init__(self, pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        self.x, self.clean, self.y = pool
        if not len(self.x):
            raise ValueError("PoolSource needs a non-empty pool")

    def batch(self, n: int, generator: torch.Generator, *, with_clean: bool = True) -> MixedBatch:
        idx = torch.randint(0, len(self.x), (n,), generator=generator, device=generator.device)
        idx = idx.to(self.x.device)
        clean = self.clean[idx] if self.clean.shape[-1] else self.clean[:n]
        return MixedBatch(self.x[idx], clean, self.y[idx], {"pool_index": idx})
