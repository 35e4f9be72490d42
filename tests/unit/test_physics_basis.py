"""Basis build, npz round trip, cache, bundled default basis, line broadening."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gabaapp.constants import METABOLITES, NAA_PPM
from gabaapp.errors import NoInputError, UsageError
from gabaapp.physics.basis import (
    apply_linewidth,
    basis_hash,
    cached_basis,
    default_basis,
    default_basis_path,
    load_basis,
    save_basis,
    simulate_basis,
)
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.spectra import Basis, fid_to_spectrum

SMALL = MegaPressSequence(ideal_refocusing=True, n_points=1024)


def test_simulate_basis_rows_and_press_mode():
    basis = simulate_basis(SMALL, ("Cr", "NAA"))
    assert basis.names == ("Cr", "NAA")
    assert basis.off.shape == (2, 1024) and basis.acquisition.te_s == pytest.approx(0.068)
    press = simulate_basis(SMALL.replace(editing=False), ("NAA",))
    np.testing.assert_array_equal(press.on, press.off)
    assert not np.allclose(basis.on[1], basis.off[1])  # 1.9 ppm pulse touches NAA at 2.01


def test_unknown_metabolite_fails_before_simulating():
    with pytest.raises(UsageError, match="'Foo'"):
        simulate_basis(SMALL, ("Cr", "Foo"))


def test_save_load_round_trip(tmp_path):
    basis = simulate_basis(SMALL, ("Cr", "GABA"))
    path = save_basis(basis, tmp_path / "b.npz")
    loaded = load_basis(path)
    assert loaded.names == basis.names and loaded.sequence_hash == basis.sequence_hash
    assert loaded.acquisition == basis.acquisition
    np.testing.assert_array_equal(loaded.on, basis.on)
    assert loaded.meta["sequence"] == SMALL.to_dict()
    with pytest.raises(NoInputError):
        load_basis(tmp_path / "missing.npz")


def test_cache_hit_returns_stored_basis_and_key_tracks_parameters(tmp_path):
    first = cached_basis(SMALL, ("Cr",), cache_dir=tmp_path)
    files = list(tmp_path.glob("basis-*.npz"))
    assert len(files) == 1 and first.sequence_hash in files[0].name
    # overwrite the stored arrays: a cache hit must return the file, not a new simulation
    doubled = Basis(
        first.names, first.off * 2, first.on * 2, first.acquisition, first.sequence_hash
    )
    save_basis(doubled, files[0])
    np.testing.assert_allclose(cached_basis(SMALL, ("Cr",), cache_dir=tmp_path).off, first.off * 2)
    other = SMALL.replace(edit_off_ppm=7.4)
    assert basis_hash(other, ("Cr",)) != first.sequence_hash
    cached_basis(other, ("Cr",), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("basis-*.npz"))) == 2


def test_default_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached_basis(SMALL, ("Cr",))
    assert list((tmp_path / "gabaapp" / "basis").glob("basis-*.npz"))


def test_default_basis_is_bundled_small_fast_and_current():
    assert default_basis_path().stat().st_size < 2_000_000
    start = time.perf_counter()
    basis = default_basis()
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5  # benchmark: ~20 ms; generous bound for a shared CI machine
    assert basis.names == METABOLITES
    full = default_basis(None)
    assert len(full.names) >= 16
    paper = MegaPressSequence.preset("paper")
    # the stored hash is what today's code and spin files give: the bundle is not stale
    assert full.sequence_hash == basis_hash(paper, full.names)
    fresh = simulate_basis(paper, ("Cr", "NAA"))
    ref = default_basis(("Cr", "NAA"))
    assert np.abs(fresh.off - ref.off).max() < 1e-5 * np.abs(fresh.off).max()
    assert np.abs(fresh.on - ref.on).max() < 1e-5 * np.abs(fresh.on).max()


def test_default_basis_puts_naa_at_201_ppm():
    basis = default_basis()
    acq = basis.acquisition
    ppm = acq.ppm_axis()
    spec = fid_to_spectrum(apply_linewidth(basis.off[basis.names.index("NAA")], acq, 2.0)).real
    window = (ppm > 1.5) & (ppm < 4.2)
    assert ppm[window][np.argmax(spec[window])] == pytest.approx(NAA_PPM, abs=0.01)


def test_apply_linewidth_gives_lorentzian_of_that_fwhm():
    seq = MegaPressSequence(ideal_refocusing=True, n_points=8192)
    basis = simulate_basis(seq, ("Cr",))
    acq = basis.acquisition
    lw = 4.0
    spec = fid_to_spectrum(apply_linewidth(basis.off[0], acq, lw)).real
    hz = acq.hz_axis()
    near = np.abs(acq.ppm_axis() - 3.027) < 0.2
    s, f = spec[near], hz[near]
    above = f[s >= s.max() / 2]
    assert above.max() - above.min() == pytest.approx(lw, abs=2 * (f[1] - f[0]))
    # per-row widths broadcast
    both = apply_linewidth(np.stack([basis.off[0]] * 2), acq, np.array([1.0, 5.0]))
    assert np.abs(both[1, -1]) < np.abs(both[0, -1])
    with pytest.raises(UsageError):
        apply_linewidth(basis.off, acq, -1.0)


@pytest.mark.slow
def test_bundled_default_basis_equals_a_fresh_simulation():
    full = default_basis(None)
    fresh = simulate_basis(MegaPressSequence.preset("paper"), full.names)
    scale = np.abs(fresh.off).max()
    assert np.abs(fresh.off - full.off).max() < 1e-5 * scale
    assert np.abs(fresh.on - full.on).max() < 1e-5 * scale
