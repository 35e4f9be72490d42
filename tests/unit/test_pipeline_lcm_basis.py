"""The LCM fits each scan with a basis of the scan's own field and echo time."""

from __future__ import annotations

import numpy as np
import pytest

from gabaapp.constants import METABOLITES
from gabaapp.physics.basis import apply_linewidth, cached_basis, default_basis
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.pipeline import Preprocessed, lcm_basis_for, quantify_lcm
from gabaapp.spectra import Acquisition


def test_bundled_basis_for_the_paper_sequence():
    acq = Acquisition(f0_mhz=123.23, dwell_s=5e-4, n_points=2048, te_s=0.068)
    assert lcm_basis_for(acq, {}).sequence_hash == default_basis().sequence_hash


def test_scan_at_another_field_gets_its_own_basis_and_is_fitted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # simulate into an empty cache
    sequence = MegaPressSequence.preset("paper").replace(f0_mhz=127.76)
    truth = np.array([0.8, 0.15, 0.3, 1.0, 1.2])  # Cr GABA Gln Glu NAA
    basis = cached_basis(sequence, METABOLITES, cache_dir=tmp_path / "truth")
    acq = basis.acquisition
    off = apply_linewidth(truth @ basis.off, acq, 5.0)
    on = apply_linewidth(truth @ basis.on, acq, 5.0)
    header = {"EditPulse": {"ON": {"PulseOffset": 1.90}, "OFF": {"PulseOffset": 7.40}}}
    chosen = lcm_basis_for(acq, header)
    assert chosen.acquisition.f0_mhz == pytest.approx(127.76)
    q = quantify_lcm(Preprocessed(acquisition=acq, off=off, on=on, header_extension=header))
    assert q.names == METABOLITES
    got = np.asarray(q.concentrations, float)
    np.testing.assert_allclose(got / got.sum(), truth / truth.sum(), atol=0.01)
