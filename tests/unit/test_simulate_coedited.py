"""The co-edited 3.0 ppm macromolecule (GABA+) signal is tied to the MM level on every synthesis
path: none without MM, and proportional to mm_amplitude (one macromolecule pool, Edden et al.,
MRM 68:657 (2012); Cudalbu et al., NMR Biomed 34:e4393 (2021))."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_simulate_grid import ACQ, GRID, singlets

from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.preproc import kernels
from gabaapp.simulate import SpectrumGenerator, fused

MM = (0.0, 0.05, 0.1, 0.2, 0.4)


def _diff_nuisance(sampling: str, numba: bool, monkeypatch, fraction: float = 0.5) -> np.ndarray:
    """Return the edit-ON minus edit-OFF nuisance FIDs [len(MM), T] of spectra that differ only
    in mm_amplitude (MM), co-edited fraction `fraction`, no other augmentation."""
    if numba and not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    if not numba:
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        monkeypatch.setattr(fused, "AVAILABLE", False)
    aug = replace(
        AugmentationConfig.none(),
        enabled=True,
        lorentz_hz=(3.0, 3.0),
        mm_amplitude=(0.0, 0.4),
        mm_state="gaba+",
        mm_coedited_fraction=(fraction, fraction),
    )
    cfg = SynthesisConfig(sampler="uniform", augmentation=aug, align=False, sampling=sampling)
    extra = {"grid_basis": singlets(GRID)} if sampling == "grid" else {}
    gen = SpectrumGenerator(singlets(ACQ), cfg, **extra)
    g = torch.Generator().manual_seed(0)
    n = len(MM)
    conc = gen.sample_concentrations(1, g).expand(n, -1).contiguous()
    params = gen.sample_parameters(n, g)
    params = {k: v[:1].expand(n, *v.shape[1:]).contiguous() for k, v in params.items()}
    params["mm_amplitude"] = torch.tensor(MM)
    fids = {k: v.numpy().astype(np.complex128) for k, v in gen.synthesise(conc, params, g).items()}
    return (fids["on"] - fids["clean_on"]) - (fids["off"] - fids["clean_off"])


@pytest.mark.parametrize("sampling", ["basis", "grid"])
@pytest.mark.parametrize("numba", [True, False])
def test_co_edited_mm_is_absent_without_mm_and_proportional_to_it(sampling, numba, monkeypatch):
    diff = _diff_nuisance(sampling, numba, monkeypatch)
    top = np.abs(diff[-1]).max()
    assert top > 0  # the co-edited line is there with MM
    assert np.abs(diff[0]).max() <= 1e-6 * top  # mm_amplitude 0: edit-ON has no 3.0 ppm MM
    for k, mm in enumerate(MM):
        np.testing.assert_allclose(diff[k], diff[-1] * mm / MM[-1], rtol=0, atol=1e-5 * top)
