"""Out-of-domain warning: a scan's f0 / TE / edit pulses against a model card's `valid_for`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gabaapp import pipeline
from gabaapp.pipeline import (
    OUT_OF_DOMAIN_FLAG,
    OUT_OF_DOMAIN_KEY,
    bundled_model_dir,
    valid_for_warnings,
)
from gabaapp.spectra import Acquisition

VALID_FOR = {
    "f0_mhz": [123.23, 127.74],
    "te_ms": [68.0],
    "edit_on_ppm": [1.9],
    "edit_off_ppm": [7.46],
}


def _acq(f0_mhz=123.23, te_s=0.068, dwell_s=1 / 2000):
    return Acquisition(f0_mhz=f0_mhz, dwell_s=dwell_s, n_points=2048, te_s=te_s, centre_ppm=4.68)


def _pulses(on, off, key="PulseOffset"):
    return {"EditPulse": {"ON": {key: on}, "OFF": {key: off}}}


def test_in_domain_scans_get_no_warning():
    # vendor rounding (123.2 vs 123.23, 127.7 vs 127.74) and a 7.5 ppm OFF pulse are fine
    assert valid_for_warnings(_acq(123.2), _pulses(1.9, 7.5), VALID_FOR) == []
    assert valid_for_warnings(_acq(127.7, 0.0685), _pulses(1.92, 7.46), VALID_FOR) == []


@pytest.mark.parametrize(
    ("acq", "header", "word"),
    [
        (_acq(297.2), {}, "spectrometer frequency 297.2 MHz"),  # 7 T
        (_acq(63.9), {}, "spectrometer frequency"),  # 1.5 T
        (_acq(te_s=0.080), {}, "echo time 80 ms"),  # HERMES-like TE 80
        (_acq(), _pulses(1.5, 7.46), "edit-ON pulse offset 1.5 ppm"),  # Glx/NAAG-style target
        (_acq(), _pulses(1.9, 1.5), "edit-OFF pulse offset"),  # symmetric OFF (MM suppression)
    ],
)
def test_out_of_domain_parameters_are_named(acq, header, word):
    warnings = valid_for_warnings(acq, header, VALID_FOR)
    assert len(warnings) == 1
    assert word in warnings[0]
    assert "trained for" in warnings[0]


def test_several_parameters_give_several_warnings():
    warnings = valid_for_warnings(_acq(297.2, 0.035), _pulses(1.5, 7.46), VALID_FOR)
    assert len(warnings) == 3


def test_edit_offsets_in_hz_are_converted():
    """A BIDS FrequencyOffset outside the 1H ppm range is Hz from water (io.editing): at
    123.23 MHz, 1.9 ppm is (1.9 - 4.65) * 123.23 = -338.9 Hz."""
    hz_on = (1.9 - 4.65) * 123.23
    hz_off = (7.46 - 4.65) * 123.23
    assert valid_for_warnings(_acq(), _pulses(hz_on, hz_off, "FrequencyOffset"), VALID_FOR) == []
    hz_bad = (1.5 - 4.65) * 123.23
    assert (
        len(valid_for_warnings(_acq(), _pulses(hz_bad, hz_off, "FrequencyOffset"), VALID_FOR)) == 1
    )


def test_unknown_parameters_are_not_judged():
    assert valid_for_warnings(_acq(te_s=None), {}, VALID_FOR) == []  # TE unknown, no EditPulse
    assert valid_for_warnings(_acq(297.2), {}, None) == []  # card without valid_for
    assert valid_for_warnings(_acq(297.2), {}, {"te_ms": [68.0]}) == []  # f0 not listed


def test_bundled_cards_cover_both_3t_frequencies():
    for model in ("yae-v4", "cnn-v2"):
        card = json.loads((bundled_model_dir(model) / "card.json").read_text())
        valid_for = card["valid_for"]
        assert valid_for_warnings(_acq(123.2), _pulses(1.9, 7.5), valid_for) == []
        assert valid_for_warnings(_acq(127.7), _pulses(1.9, 7.5), valid_for) == []
        assert valid_for_warnings(_acq(297.2), {}, valid_for)


def _preprocessed(f0_mhz: float) -> pipeline.Preprocessed:
    """Averaged OFF/ON FIDs with a Cr-like and NAA-like line (enough for the network grid)."""
    acq = _acq(f0_mhz, dwell_s=1 / 5000)  # 5 kHz covers the network window at 7 T
    t = acq.time_axis()
    fid = sum(
        a * np.exp(2j * np.pi * (ppm - 4.68) * f0_mhz * t - t / 0.08)
        for a, ppm in ((1.0, 3.015), (1.5, 2.01))
    )
    return pipeline.preprocessed_from_arrays(acq, fid, fid * 1.01)


def test_flag_reaches_concentrations_tsv_and_report(tmp_path):
    """A 7 T scan quantified with the bundled CNN carries out_of_domain in every TSV row and
    the warning in the report fragment's notes; an in-domain scan carries neither."""
    entities = {"subject": "01", "acquisition": "megapress", "suffix": "svs", "datatype": "mrs"}
    for f0, expected in ((297.2, True), (123.23, False)):
        pre = _preprocessed(f0)
        q = pipeline.quantify_scan(pre, "cnn", model_dir=bundled_model_dir("cnn-v2"))
        assert bool(q.info.get(OUT_OF_DOMAIN_KEY)) is expected
        out = tmp_path / f"out{int(f0)}"
        fragment = pipeline.write_scan_outputs(out, entities, "x_svs.nii.gz", pre, [q])
        tsv = next(out.rglob("*_desc-cnn_concentrations.tsv")).read_text().splitlines()
        flag_col = tsv[0].split("\t").index("flags")
        flags = [line.split("\t")[flag_col] for line in tsv[1:]]
        assert all((OUT_OF_DOMAIN_FLAG in f) is expected for f in flags)
        noted = any("spectrometer frequency" in n for n in fragment["notes"])
        assert noted is expected


def test_gaba_label_follows_the_training_macromolecules():
    from gabaapp.pipeline import gaba_label_of

    aug = {"enabled": True, "mm_state": "gaba+", "mm_coedited_fraction": [0.35, 0.55]}
    assert gaba_label_of({"synthesis": {"augmentation": aug}}) == "GABA"
    no_mm = dict(aug, mm_coedited_fraction=[0.0, 0.0])
    assert gaba_label_of({"synthesis": {"augmentation": no_mm}}) == "GABA+"
    assert gaba_label_of({"synthesis": {"augmentation": dict(aug, enabled=False)}}) == "GABA+"
    assert gaba_label_of({}) == "GABA+"
    assert (
        gaba_label_of({"gaba_definition": "GABA+", "synthesis": {"augmentation": aug}}) == "GABA+"
    )
