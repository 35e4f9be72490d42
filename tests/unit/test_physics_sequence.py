"""MegaPressSequence: defaults, presets, hash, validation naming the bad parameter."""

from __future__ import annotations

import pytest

from gabaapp.errors import UsageError
from gabaapp.physics.sequence import MegaPressSequence


def test_defaults_follow_the_paper_timing():
    seq = MegaPressSequence()
    assert seq.te_ms == 68.0
    assert (seq.f0_mhz, seq.spectral_width_hz, seq.n_points) == (123.23, 2000.0, 4096)
    # 5 ms refocusing and 20 ms editing pulses: delays minus half of each adjacent pulse
    assert seq.free_intervals_ms() == pytest.approx((2.5, 4.5, 4.5, 4.5, 2.0))
    assert seq.grid_cm()[0] == -2.5 and len(seq.grid_cm()) == 8
    assert (seq.edit_on_ppm, seq.edit_off_ppm) == (1.90, 7.50)


def test_ideal_pulses_take_no_time_and_use_one_position():
    seq = MegaPressSequence(ideal_refocusing=True)
    assert seq.free_intervals_ms() == pytest.approx((5.0, 7.0, 7.0, 7.0, 2.0))
    assert seq.grid_cm() == (0.0,)


def test_presets_and_740_edit_off():
    assert MegaPressSequence.preset("paper").edit_off_ppm == 7.40
    for name in ("siemens", "ge", "philips"):
        seq = MegaPressSequence.preset(name)
        assert seq.te_ms == 68.0 and seq.edit_off_ppm == 7.46
    assert MegaPressSequence.preset("ge").f0_mhz > 127
    with pytest.raises(UsageError, match="preset"):
        MegaPressSequence.preset("bruker")


def test_hash_is_stable_and_sensitive():
    a, b = MegaPressSequence(), MegaPressSequence()
    assert a.hash() == b.hash()
    assert a.hash() != MegaPressSequence(edit_off_ppm=7.4).hash()
    assert a.hash() != MegaPressSequence(grid_points=4).hash()
    assert MegaPressSequence.from_dict(a.to_dict()) == a


def test_for_te_gives_press_at_any_te():
    seq = MegaPressSequence.for_te(30.0, te1_ms=12.0, editing=False)
    assert seq.te_ms == pytest.approx(30.0)
    assert seq.delays_ms[0] == pytest.approx(6.0)
    d = seq.delays_ms
    refoc2 = d[0] + d[1] + d[2]
    # 1st echo at TE1 = 2 d0; the 2nd refocusing pulse sits midway between it and the ADC
    assert seq.te_ms - refoc2 == pytest.approx(refoc2 - 2 * d[0])


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"delays_ms": (-1.0, 17, 17, 17, 12)}, r"delays_ms\[0\]"),
        ({"delays_ms": (5.0, 17, 17, 17, 5)}, r"delays_ms\[4\]"),  # < half the 20 ms edit pulse
        ({"delays_ms": (5.0, 17, 17, 17)}, "delays_ms"),
        ({"edit_on_ppm": 15.0}, "edit_on_ppm"),
        ({"edit_off_ppm": -9.0}, "edit_off_ppm"),
        ({"f0_mhz": 0.0}, "f0_mhz"),
        ({"n_points": 1}, "n_points"),
        ({"refocusing_pulse": "nope"}, "refocusing_pulse"),
        ({"coherence_selection": "magic"}, "coherence_selection"),
        ({"voxel_cm": (3.0, 0.0)}, "voxel_cm"),
    ],
)
def test_bad_parameters_name_themselves(changes, name):
    with pytest.raises(UsageError, match=name):
        MegaPressSequence(**changes)


def test_short_delay_is_fine_without_editing():
    # 5 ms is too short for a 20 ms editing pulse but fine for PRESS
    seq = MegaPressSequence(delays_ms=(5.0, 17, 17, 17, 5), editing=False)
    assert seq.te_ms == 61.0
