"""Group level and the concentration table format, on tables written in tmp_path."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gabaapp import group
from gabaapp.constants import METABOLITES
from gabaapp.report import tables


def test_concentration_rows_sum_normalise_and_derive_ratios_glx_and_sd():
    conc = [8.0, 2.0, 3.0, 12.0, 15.0]  # mM-like: renormalised to sum 1
    sd = [0.4, 0.8, 0.3, 0.6, 0.3]
    rows = {r["metabolite"]: r for r in tables.concentration_rows(conc, sd, gaba_label="GABA+")}
    assert list(rows) == [*METABOLITES, "Glx"]
    assert math.isclose(sum(rows[m]["concentration"] for m in METABOLITES), 1.0)
    assert math.isclose(rows["GABA"]["ratio_cr"], 2.0 / 8.0)
    assert math.isclose(rows["Glu"]["ratio_naa"], 12.0 / 15.0)
    assert math.isclose(rows["Glx"]["concentration"], 15.0 / 40.0)
    assert math.isclose(rows["Glx"]["concentration_sd"], math.hypot(0.6, 0.3) / 40.0)
    assert math.isclose(rows["GABA"]["percent_sd"], 40.0)
    assert "high_percent_sd" in rows["GABA"]["flags"] and rows["NAA"]["flags"] == "n/a"
    assert rows["GABA"]["reported_as"] == "GABA+"
    # first-order ratio SD: r * sqrt((sa/a)^2 + (sb/b)^2)
    assert math.isclose(rows["GABA"]["ratio_cr_sd"], 0.25 * math.hypot(0.4, 0.05))
    # ratios of Cr to itself are exactly one
    assert rows["Cr"]["ratio_cr"] == 1.0


def test_nonpositive_concentration_is_flagged_and_scan_flags_propagate():
    rows = tables.concentration_rows([1, 0, 1, 1, 1], [0, 0, 0, 0, 0], scan_flags=["qc_fail"])
    gaba = rows[1]
    assert gaba["flags"] == "qc_fail;nonpositive" and math.isnan(gaba["percent_sd"])
    rows = tables.concentration_rows([0, 1, 1, 1, 0], [0.1] * 5)
    assert math.isnan(rows[1]["ratio_cr"]) and math.isnan(rows[1]["ratio_naa"])


def test_tsv_round_trip_keeps_values_and_na():
    rows = tables.concentration_rows([8.0, 2.0, 3.0, 12.0, 15.0], [0.1] * 5)
    cols = list(tables.CONCENTRATION_COLUMNS)
    back = tables.parse_tsv(tables.format_tsv(rows, cols))
    assert len(back) == len(rows)
    for a, b in zip(rows, back, strict=True):
        for c in cols:
            if isinstance(a[c], float):
                assert b[c] is None if math.isnan(a[c]) else math.isclose(a[c], b[c], rel_tol=1e-6)
            else:
                assert b[c] == (None if a[c] == "n/a" else a[c])
    assert set(tables.column_descriptions(cols)) == set(cols)


def test_mad_outliers_flag_a_planted_value_only():
    values = np.linspace(0.99, 1.01, 30)  # robust SD 0.0074: all within 3 of the median
    values[7] = 1.5
    mask = group.mad_outliers(values)
    assert mask.tolist() == [i == 7 for i in range(30)]
    assert not group.mad_outliers([1.0, 1.0, 1.0, 1.0, 5.0]).any()  # MAD 0: nothing flagged
    assert not group.mad_outliers([1.0, 1.1, np.nan, 0.9, 9.0]).any()  # too few values
    # differences at rounding level are not a spread
    assert not group.mad_outliers(0.2 + np.array([0, 1e-9, 2e-9, -1e-9, 3e-8])).any()


def _write_scan(out_dir, participant, model, conc, qc_status="pass", fwhm=0.07):
    stem = f"sub-{participant}_acq-megapress68"
    mrs = out_dir / f"sub-{participant}" / "mrs"
    mrs.mkdir(parents=True, exist_ok=True)
    rows = tables.concentration_rows(conc, [0.001] * 5)
    base = mrs / f"{stem}_desc-{model}_concentrations"
    base.with_suffix(".tsv").write_text(tables.format_tsv(rows, list(tables.CONCENTRATION_COLUMNS)))
    qc = {"status": qc_status, "metrics": {"naa_fwhm_ppm": fwhm, "snr": 80.0}}
    base.with_suffix(".json").write_text(json.dumps({"QC": qc}))


@pytest.fixture
def phantom_outputs(tmp_path):
    """Six phantom scans with stepped GABA, quantified by a 'yae' with known errors."""
    bids, out = tmp_path / "bids", tmp_path / "out"
    bids.mkdir()
    rng = np.random.default_rng(7)
    lines, truths = ["participant_id\tcr\tgaba\tgln\tglu\tnaa"], {}
    for i, gaba in enumerate([0.0, 1.0, 2.0, 4.0, 6.0, 8.0], start=1):
        truth = np.array([8.0, gaba, 3.0, 12.0, 15.0])
        truths[f"{i:02d}"] = truth
        lines.append(f"sub-{i:02d}\t" + "\t".join(f"{v:g}" for v in truth))
        pred = truth * (1 + rng.normal(0, 0.05, 5)) + [0, 0.3, 0, 0, 0]
        _write_scan(out, f"{i:02d}", "yae", pred, fwhm=0.07 + 0.01 * i)
    (bids / "participants.tsv").write_text("\n".join(lines) + "\n")
    return bids, out, truths


def test_group_level_writes_one_row_per_scan_and_an_accuracy_table(phantom_outputs):
    bids, out, truths = phantom_outputs
    result = group.run_group(bids, out)
    rows = tables.parse_tsv((out / "group_concentrations.tsv").read_text())
    assert len(rows) == 6 and {r["scan"] for r in rows} == {
        f"sub-{k}_acq-megapress68" for k in truths
    }
    qc = tables.parse_tsv((out / "group_qc.tsv").read_text())
    assert [r["naa_fwhm_ppm"] for r in qc] == pytest.approx([0.08, 0.09, 0.10, 0.11, 0.12, 0.13])
    sidecar = json.loads((out / "group_concentrations.json").read_text())
    assert "GABA_cr" in sidecar and "Units" in sidecar["GABA"]
    # independent recomputation from the TSVs with the training metrics
    from gabaapp.training.metrics import evaluate

    true = np.array([truths[r["participant_id"][4:]] for r in rows])
    pred = np.array([[r[m] for m in METABOLITES] for r in rows])
    expected = evaluate(true, pred)
    acc = {r["metabolite"]: r for r in tables.parse_tsv((out / "group_accuracy.tsv").read_text())}
    for name in (*METABOLITES, "total"):
        assert acc[name]["mae"] == pytest.approx(expected[name].mae, rel=1e-5, abs=1e-7)
        if not math.isnan(expected[name].slope):
            assert acc[name]["slope"] == pytest.approx(expected[name].slope, rel=1e-5)
            assert acc[name]["intercept"] == pytest.approx(expected[name].intercept, abs=1e-6)
            assert acc[name]["r2"] == pytest.approx(expected[name].r2, rel=1e-5)
    assert acc["GABA"]["r2"] > 0.9  # stepped GABA is recovered
    page = (out / "group.html").read_text()
    assert "Predicted vs true" in page and result.n_rows == 6


def test_group_lists_failed_scans_and_planted_outliers(phantom_outputs, tmp_path):
    bids, out, _ = phantom_outputs
    for i in range(7, 12):  # more ordinary scans, then one with absurd GABA
        _write_scan(out, f"{i:02d}", "yae", [8.0, 2.0, 3.0, 12.0, 15.0])
    _write_scan(out, "12", "yae", [8.0, 30.0, 3.0, 12.0, 15.0])
    errors = out / group.ERRORS_DIR
    errors.mkdir(parents=True)
    (errors / "sub-13_acq-megapress68_svs.json").write_text(
        json.dumps({"scan": "sub-13_acq-megapress68_svs", "error": "DataError: corrupt file"})
    )
    result = group.run_group(bids, out)
    rows = {r["scan"]: r for r in tables.parse_tsv((out / "group_concentrations.tsv").read_text())}
    assert "GABA" in rows["sub-12_acq-megapress68"]["outliers"].split(";")
    assert rows["sub-07_acq-megapress68"]["outliers"] is None
    page = (out / "group.html").read_text()
    assert "sub-13_acq-megapress68_svs" in page and "DataError: corrupt file" in page
    assert result.failures == [
        {"scan": "sub-13_acq-megapress68_svs", "error": "DataError: corrupt file"}
    ]


def test_group_without_participant_outputs_says_what_to_do(tmp_path):
    from gabaapp.errors import NoInputError

    with pytest.raises(NoInputError, match="participant level first"):
        group.run_group(tmp_path, tmp_path / "empty")


def test_group_tables_are_identical_on_rerun(phantom_outputs):
    bids, out, _ = phantom_outputs
    group.run_group(bids, out)
    first = {p.name: p.read_bytes() for p in out.glob("group*")}
    group.run_group(bids, out)
    assert {p.name: p.read_bytes() for p in out.glob("group*")} == first


def test_group_level_can_be_restricted_to_participants(phantom_outputs):
    bids, out, _ = phantom_outputs
    result = group.run_group(bids, out, participant_label=["02", "05"])
    rows = tables.parse_tsv((out / "group_concentrations.tsv").read_text())
    assert result.n_rows == 2 and [r["participant_id"] for r in rows] == ["sub-02", "sub-05"]
