"""SpectrumGenerator.state_dict(): a generator restored from a saved state continues the Sobol
stream where the saved one stood, so fresh-spectra training resumes exactly."""

from __future__ import annotations

import pytest
import torch

from gabaapp.config import SynthesisConfig
from gabaapp.errors import UsageError
from gabaapp.physics.basis import default_basis
from gabaapp.simulate import SpectrumGenerator


def draw(gen: SpectrumGenerator, seed_state: torch.Tensor, n: int = 6):
    g = torch.Generator().manual_seed(0)
    g.set_state(seed_state)
    return gen.batch(n, g, with_clean=False)


def test_restored_generator_continues_the_sobol_stream():
    cfg = SynthesisConfig(sampler="sobol")
    first = SpectrumGenerator(default_basis(), cfg)
    g = torch.Generator().manual_seed(3)
    first.batch(5, g, with_clean=False)  # advance the stream and the torch generator
    state, torch_state = first.state_dict(), g.get_state()
    expected = draw(first, torch_state)

    resumed = SpectrumGenerator(default_basis(), cfg)
    resumed.load_state_dict(state)
    got = draw(resumed, torch_state)
    torch.testing.assert_close(got.y, expected.y, rtol=0, atol=0)
    torch.testing.assert_close(got.x, expected.x, rtol=0, atol=0)

    # Without the state, a fresh generator restarts the stream: other concentrations.
    fresh = draw(SpectrumGenerator(default_basis(), cfg), torch_state)
    assert not torch.equal(fresh.y, expected.y)


def test_state_before_the_stream_start_is_refused():
    gen = SpectrumGenerator(default_basis(), SynthesisConfig(sampler="sobol"))
    with pytest.raises(UsageError, match="Sobol point"):
        gen.load_state_dict({"sobol_generated": 0})
