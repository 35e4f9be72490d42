"""BIDS derivative names, dataset_description.json and atomic TSV/JSON writers."""

from __future__ import annotations

import json
import math

import pytest

from gabaapp.errors import OutputWriteError
from gabaapp.io.derivatives import (
    derivative_name,
    derivative_path,
    write_dataset_description,
    write_json,
    write_tsv,
)


def test_derivative_names_keep_source_entities_in_bids_order(tmp_path):
    entities = {
        "run": 2,
        "acquisition": "megapress68",
        "subject": "01",
        "session": "pre",
        "suffix": "svs",
        "datatype": "mrs",
        "extension": ".nii.gz",
        "nucleus": "1H",
    }
    name = derivative_name(entities, desc="preproc", suffix="svs", extension=".nii.gz")
    assert name == "sub-01_ses-pre_acq-megapress68_run-2_nuc-1H_desc-preproc_svs.nii.gz"
    path = derivative_path(tmp_path, entities, desc="yae", suffix="concentrations", extension="tsv")
    assert path == (
        tmp_path
        / "sub-01/ses-pre/mrs/sub-01_ses-pre_acq-megapress68_run-2_nuc-1H_desc-yae_concentrations.tsv"
    )
    short = derivative_path(tmp_path, {"sub": "02"}, desc=None, suffix="svs", extension=".json")
    assert short == tmp_path / "sub-02/mrs/sub-02_svs.json"
    with pytest.raises(ValueError, match="subject"):
        derivative_name({"acquisition": "x"}, desc=None, suffix="svs", extension=".json")


def test_dataset_description_is_a_derivative(tmp_path):
    path = write_dataset_description(
        tmp_path / "out", version="1.2.3", container={"Type": "docker", "Tag": "gabaapp:1.2.3"}
    )
    desc = json.loads(path.read_text())
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"]
    (gen,) = desc["GeneratedBy"]
    assert gen["Name"] == "gabaapp" and gen["Version"] == "1.2.3"
    assert gen["Container"] == {"Type": "docker", "Tag": "gabaapp:1.2.3"}
    bare = json.loads(write_dataset_description(tmp_path / "o2", version="1").read_text())
    assert "Container" not in bare["GeneratedBy"][0]


def test_write_tsv_with_sidecar_and_na(tmp_path):
    rows = [{"a": 1, "b": "x\ty"}, {"a": math.nan, "b": None}, {"a": 2.5}]
    tsv, js = write_tsv(
        tmp_path / "t.tsv", rows, {"a": {"Description": "A", "Units": "mM"}, "b": "B"}
    )
    assert tsv.read_text().splitlines() == ["a\tb", "1\tx y", "n/a\tn/a", "2.5\tn/a"]
    assert json.loads(js.read_text()) == {
        "a": {"Description": "A", "Units": "mM"},
        "b": {"Description": "B"},
    }
    with pytest.raises(ValueError, match="undescribed"):
        write_tsv(tmp_path / "u.tsv", [{"c": 1}], {"a": "A"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.tsv"]


def test_write_json_is_atomic_and_reports_failures(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"k": 1})
    with pytest.raises(ValueError):  # NaN is not JSON: the old file survives intact
        write_json(target, {"k": math.nan})
    assert json.loads(target.read_text()) == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputWriteError):
        write_json(blocker / "sub" / "y.json", {})
