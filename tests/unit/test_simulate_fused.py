"""The compiled CPU loops (gabaapp.preproc.kernels, gabaapp.simulate.fused) against the
array-API / torch code they replace, and the recycled batch outputs."""

from __future__ import annotations

import gc
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_preproc_features_grid import GRID, _fids
from test_simulate_grid import ACQ, singlets
from test_simulate_grid import GRID as GRID_SYNTH

import gabaapp.simulate.generator as generator_module
from gabaapp.config import AugmentationConfig, SynthesisConfig
from gabaapp.errors import DataError
from gabaapp.preproc import dfti, kernels
from gabaapp.preproc.features import network_input, network_input_and_clean
from gabaapp.simulate import SpectrumGenerator, fused
from gabaapp.simulate.generator import rotate_first_order

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")


@pytest.fixture()
def without_numba(monkeypatch):
    """Return a function that runs fn() with the compiled loops switched off (the code path of
    an installation without numba; generators made inside it keep the torch code)."""

    def run(fn):
        with monkeypatch.context() as m:
            m.setattr(kernels, "AVAILABLE", False)
            m.setattr(fused, "AVAILABLE", False)
            return fn()

    return run


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("mode", ["align", "given-shift", "no-align"])
@pytest.mark.parametrize("sampling", ["grid-matched", "other"])
def test_compiled_grid_function_equals_the_array_api_code(kind, mode, sampling, without_numba):
    acq = GRID if sampling == "grid-matched" else ACQ
    off, on = _fids(acq, 40, 11), _fids(acq, 40, 12)
    off, on = off.astype(np.complex64), on.astype(np.complex64)
    if kind == "torch":
        off, on = torch.from_numpy(off), torch.from_numpy(on)
    kwargs = {"return_shift_hz": True, "align": mode == "align"}
    if mode == "given-shift":
        shift = np.linspace(-7.3, 9.1, 40, dtype=np.float32)
        kwargs["shift_hz"] = torch.from_numpy(shift) if kind == "torch" else shift
    fast, shift_fast = network_input(off, on, acq, **kwargs)
    slow, shift_slow = without_numba(lambda: network_input(off, on, acq, **kwargs))
    if mode == "align":
        assert np.abs(np.asarray(shift_slow)).max() > 1.0  # the search did move spectra
    # the peak search does the same float32 arithmetic; values agree to float32 rounding
    np.testing.assert_allclose(np.asarray(shift_fast), np.asarray(shift_slow), atol=1e-4)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), atol=2e-6)


@pytest.fixture()
def without_dfti(monkeypatch):
    """Return a function that runs fn() without the DFTI FFTs (gabaapp.preproc.dfti): the
    compiled loops then take their FFTs from torch.fft, chunk by chunk from Python."""

    def run(fn):
        with monkeypatch.context() as m:
            m.setattr(dfti, "available", lambda: False)
            return fn()

    return run


@pytest.mark.skipif(not dfti.available(), reason="torch without MKL's DFTI")
@pytest.mark.parametrize("mode", ["align", "given-shift", "no-align", "clean-phase1", "clean"])
def test_one_call_grid_function_equals_the_chunk_loop(mode, without_dfti):
    # The whole grid function in one compiled call (search, ramps, DFTI FFTs, rows) against
    # the compiled chunk loop with torch.fft: the same arithmetic, so the same values.
    n = 21  # not a multiple of the spectra per FFT call (4): a partial last chunk
    fids = [torch.from_numpy(_fids(GRID, n, s).astype(np.complex64)) for s in range(4)]
    shift = torch.from_numpy(np.linspace(-7.3, 9.1, n, dtype=np.float32))

    def run():
        if mode.startswith("clean"):
            x, c = torch.empty(n, 4, 2048), torch.empty(n, 4, 2048)
            phase1 = (np.linspace(-0.2, 0.3, n), np.full(n, 3.0)) if mode.endswith("1") else None
            s = network_input_and_clean(*fids, GRID, align=True, out=x, out_clean=c, phase1=phase1)
            return torch.cat([x, c]), s
        kwargs = {"align": mode == "align", "return_shift_hz": True}
        if mode == "given-shift":
            kwargs["shift_hz"] = shift
        return network_input(fids[0], fids[1], GRID, **kwargs)

    one, shift_one = run()
    loop, shift_loop = without_dfti(run)
    if mode != "no-align":
        assert np.abs(shift_one.numpy()).max() > 1.0  # spectra were moved
    np.testing.assert_allclose(shift_one.numpy(), shift_loop.numpy(), atol=1e-4)
    np.testing.assert_allclose(one.numpy(), loop.numpy(), atol=2e-6)


@pytest.mark.skipif(not dfti.available(), reason="torch without MKL's DFTI")
@pytest.mark.parametrize("clean", [False, True])
def test_one_call_grid_function_rejects_non_finite_fids(clean):
    fids = [torch.from_numpy(_fids(GRID, 9, s).astype(np.complex64)) for s in range(4)]
    fids[3 if clean else 1][4, 100] = float("nan")
    x, c = torch.empty(9, 4, 2048), torch.empty(9, 4, 2048)
    with pytest.raises(DataError, match="NaN or infinite"):
        if clean:
            network_input_and_clean(*fids, GRID, align=True, out=x, out_clean=c)
        else:
            network_input(fids[0], fids[1], GRID)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("where", ["off", "on"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_compiled_grid_function_rejects_non_finite_fids(where, bad):
    off, on = _fids(GRID, 8, 1).astype(np.complex64), _fids(GRID, 8, 2).astype(np.complex64)
    (off if where == "off" else on)[5, 300] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        network_input(off, on, GRID)


def test_compiled_grid_function_rejects_an_empty_edit_off():
    off, on = _fids(GRID, 4, 1).astype(np.complex64), _fids(GRID, 4, 2).astype(np.complex64)
    off[2] = 0
    with pytest.raises(DataError, match="zero in 1.0-4.5 ppm"):
        network_input(off, on, GRID, align=False)


PRESETS = {
    "none": AugmentationConfig.none(),
    "paper": AugmentationConfig.paper(),
    "default": AugmentationConfig(),
}


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("sampling", ["grid", "basis"])
def test_fused_generator_equals_the_torch_generator(preset, sampling, without_numba):
    config = SynthesisConfig(sampler="uniform", augmentation=PRESETS[preset], sampling=sampling)
    extra = {"grid_basis": singlets(GRID_SYNTH)} if sampling == "grid" else {}
    fast_gen = SpectrumGenerator(singlets(ACQ), config, **extra)
    slow_gen = without_numba(lambda: SpectrumGenerator(singlets(ACQ), config, **extra))
    fast = fast_gen.batch(150, torch.Generator().manual_seed(7))
    slow = without_numba(lambda: slow_gen.batch(150, torch.Generator().manual_seed(7)))
    # same random draws in the same order: same spectra up to float32 rounding (the noise
    # draws agree to 2e-6, gabaapp.simulate.noise; inputs are max-normalised, noise SD ~0.02)
    torch.testing.assert_close(fast.y, slow.y, rtol=0, atol=0)
    torch.testing.assert_close(fast.x, slow.x, rtol=0, atol=1e-4)
    torch.testing.assert_close(fast.clean, slow.clean, rtol=0, atol=5e-5)
    assert fast.meta.keys() == slow.meta.keys()
    for key in fast.meta:
        torch.testing.assert_close(fast.meta[key], slow.meta[key], rtol=0, atol=1e-3)
    if preset != "none":  # not all zero: the comparison saw real augmentations
        assert float(fast.meta["noise_off"].max()) > 0.01


def test_first_order_phase_of_a_group_equals_each_rotated_alone():
    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.normal(size=(6, 4, 2048)).astype(np.float32))
    b = torch.from_numpy(rng.normal(size=(6, 4, 2048)).astype(np.float32))
    phi1, moved = torch.linspace(-5, 5, 6), torch.linspace(-0.1, 0.1, 6)
    a1, b1 = a.clone(), b.clone()
    rotate_first_order(a1, phi1, 3.0, moved)
    rotate_first_order(b1, phi1, 3.0, moved)
    rotate_first_order((a, b), phi1, 3.0, moved)
    torch.testing.assert_close(a, a1, rtol=0, atol=0)
    torch.testing.assert_close(b, b1, rtol=0, atol=0)
    # a rotation keeps |S| of each (imag, real) pair
    mag = torch.hypot(a1[:, 0::2], a1[:, 1::2])
    a0 = torch.from_numpy(np.random.default_rng(4).normal(size=(6, 4, 2048)).astype(np.float32))
    torch.testing.assert_close(mag, torch.hypot(a0[:, 0::2], a0[:, 1::2]), rtol=1e-5, atol=1e-6)


def test_recycled_outputs_never_alias_a_live_batch_and_are_fully_overwritten():
    config = SynthesisConfig(sampler="uniform", augmentation=AugmentationConfig.paper())
    config = replace(config, sampling="grid")
    n = 160  # [160, 4, 2048] float32 = 5 MB: large enough for the memory-map outputs

    def make():
        return SpectrumGenerator(singlets(ACQ), config, grid_basis=singlets(GRID_SYNTH))

    expected = make().batch(n, torch.Generator().manual_seed(5))
    expected_x, expected_clean = expected.x.clone(), expected.clean.clone()
    del expected
    gen = make()
    first = gen.batch(n, torch.Generator().manual_seed(1))
    kept = first.x.clone()
    second = gen.batch(n, torch.Generator().manual_seed(2))
    assert first.x.data_ptr() != second.x.data_ptr()
    torch.testing.assert_close(first.x, kept, rtol=0, atol=0)  # untouched by the later batch
    view = second.x[3:5]  # a view keeps the memory alive after the batch is dropped
    saved = view.clone()
    del first, second
    assert generator_module._RECYCLED, "the freed first batch's memory was not kept"
    third = gen.batch(n, torch.Generator().manual_seed(5))
    torch.testing.assert_close(view, saved, rtol=0, atol=0)
    # recycled memory held the first batch; every element was overwritten
    torch.testing.assert_close(third.x, expected_x, rtol=0, atol=0)
    torch.testing.assert_close(third.clean, expected_clean, rtol=0, atol=0)


def test_scratch_fids_equal_fresh_ones_and_are_reused():
    config = SynthesisConfig(sampler="uniform", sampling="grid")  # default augmentations
    gen = SpectrumGenerator(singlets(ACQ), config, grid_basis=singlets(GRID_SYNTH))
    g = torch.Generator().manual_seed(4)
    conc, params = gen.sample_concentrations(12, g), gen.sample_parameters(12, g)
    fresh = gen.synthesise(conc, params, torch.Generator().manual_seed(9))
    first = gen.synthesise(conc, params, torch.Generator().manual_seed(9), scratch=True)
    for key, fid in fresh.items():
        assert torch.equal(first[key], fid), key
    pointers = {k: v.data_ptr() for k, v in first.items()}
    again = gen.synthesise(conc, params, torch.Generator().manual_seed(3), scratch=True)
    assert {k: v.data_ptr() for k, v in again.items()} == pointers  # the same buffers
    assert not torch.equal(again["off"], fresh["off"])  # refilled with the new draws


@pytest.mark.parametrize("align", [True, False])
def test_input_and_clean_copy_in_one_pass_equal_two_grid_function_calls(align, without_numba):
    off, on = _fids(GRID, 21, 5).astype(np.complex64), _fids(GRID, 21, 6).astype(np.complex64)
    c_off, c_on = _fids(GRID, 21, 7).astype(np.complex64), _fids(GRID, 21, 8).astype(np.complex64)
    x, clean = np.empty((21, 4, 2048), np.float32), np.empty((21, 4, 2048), np.float32)
    shift = network_input_and_clean(off, on, c_off, c_on, GRID, align=align, out=x, out_clean=clean)
    x2, shift2 = network_input(off, on, GRID, align=align, return_shift_hz=True)
    clean2 = without_numba(
        lambda: network_input(c_off, c_on, GRID, align=False, shift_hz=shift2 if align else None)
    )
    np.testing.assert_allclose(shift, shift2, atol=1e-4)
    np.testing.assert_allclose(x, x2, atol=2e-6)
    np.testing.assert_allclose(clean, clean2, atol=2e-6)


@pytest.mark.parametrize("align", [True, False])
def test_first_order_phase_written_with_the_rows_equals_rotating_afterwards(align, without_numba):
    # network_input_and_clean(phase1=...) rotates while writing the rows; the reference is the
    # array-API grid function followed by the torch rotation at each line's own ppm
    off, on = (torch.from_numpy(_fids(GRID, 24, s).astype(np.complex64)) for s in (3, 4))
    c_off, c_on = (torch.from_numpy(_fids(GRID, 24, s).astype(np.complex64)) for s in (5, 6))
    phi1 = torch.linspace(-5.0, 5.0, 24)  # deg/ppm
    own_pivot = 3.0 + torch.linspace(-0.08, 0.08, 24)  # pivot + augmentation shift / f0
    x, clean = torch.empty(24, 4, 2048), torch.empty(24, 4, 2048)
    rate = np.deg2rad(phi1.double().numpy())
    shift = network_input_and_clean(
        off, on, c_off, c_on, GRID, align=align, out=x, out_clean=clean,
        phase1=(rate, own_pivot.double().numpy()),
    )  # fmt: skip
    if align:
        assert float(shift.abs().max()) > 1.0  # the alignment moved the pivot too

    def reference():
        xr, cr = torch.empty(24, 4, 2048), torch.empty(24, 4, 2048)
        s = network_input_and_clean(off, on, c_off, c_on, GRID, align=align, out=xr, out_clean=cr)
        moved = (own_pivot - 3.0) + s / GRID.f0_mhz
        rotate_first_order((xr, cr), phi1, 3.0, moved)
        return xr, cr

    def array_api():  # phase1 on the path without the compiled rows
        xa, ca = torch.empty(24, 4, 2048), torch.empty(24, 4, 2048)
        pivot = own_pivot.double().numpy()
        network_input_and_clean(
            off, on, c_off, c_on, GRID, align=align, out=xa, out_clean=ca, phase1=(rate, pivot)
        )
        return xa, ca

    xr, cr = without_numba(reference)
    xa, ca = without_numba(array_api)
    for got in ((x, clean), (xa, ca)):
        torch.testing.assert_close(got[0], xr, rtol=0, atol=2e-6)
        torch.testing.assert_close(got[1], cr, rtol=0, atol=2e-6)


def test_ramp_parts_equal_direct_cos_and_sin():
    cycles = np.array([0.0, 0.123456789, -0.377, 12.25, -3.9e-3])
    block, n_blocks = 57, 31
    small_q = np.empty((5, n_blocks), np.complex64)
    small_r = np.empty((5, block), np.complex64)
    kernels.ramp_parts(cycles, small_q, small_r)
    r = np.arange(block)
    q = np.arange(n_blocks) * block
    np.testing.assert_allclose(small_r, np.exp(2j * np.pi * cycles[:, None] * r), atol=2e-7)
    np.testing.assert_allclose(small_q, np.exp(2j * np.pi * cycles[:, None] * q), atol=2e-7)


def test_gauss_exp_is_within_two_ulp_of_exp():
    t = np.arange(1767, dtype=np.float32) * np.float32(1.1587e-3)
    t_sq, env, scratch = t * t, np.empty_like(t), np.empty_like(t)
    for gauss_hz in (0.3, 4.0, 18.0, 60.0, 180.0):
        coef = np.float32(-fused.GAUSS_K * gauss_hz**2)
        fused.gauss_exp(coef, t_sq, env, scratch)
        expected = np.exp(np.maximum(coef * t_sq, np.float32(fused.EXP_FLOOR)))
        np.testing.assert_array_max_ulp(env, expected.astype(np.float32), maxulp=2)


def test_outputs_beyond_the_recycle_cap_are_released_quietly(monkeypatch):
    """Freed outputs that do not fit the recycle cap are dropped without an error (the map is
    still exported while the dying array's finaliser runs, so closing it would raise)."""
    raised = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: raised.append(info.exc_value))
    monkeypatch.setattr(generator_module, "_RECYCLE_MAX_BYTES", 0)  # keep nothing
    shape = (160, 4, 2048)  # 5 MB: backed by a memory map
    out = generator_module._output_tensor(shape, torch.device("cpu"))  # may reuse a kept map
    kept = len(generator_module._RECYCLED)
    out.fill_(1.0)
    del out
    gc.collect()
    assert raised == []
    assert len(generator_module._RECYCLED) == kept
