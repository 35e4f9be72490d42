"""PyBIDS discovery of MRS scans: entities, labels, filters, water-reference pairing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gabaapp.errors import BIDSValidationError, NoFilesSelectedError, NoInputError, UsageError
from gabaapp.io.bids import check_filters, find_scans, read_filter_file
from gabaapp.io.nifti_mrs import load_nifti_mrs, save_nifti_mrs
from gabaapp.spectra import Acquisition
from gabaapp.testing import (
    make_mega_fids,
    make_water_fids,
    write_bids_dataset,
    write_mega_nifti_mrs,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bids") / "ds"
    rng = np.random.default_rng(0)
    write_bids_dataset(
        root, rng, subjects=("01", "02"), sessions=("a", "b"), n_coils=2, n_transients=2
    )
    return root


def test_scans_carry_entities_sidecar_and_water(dataset):
    scans = find_scans(dataset)
    assert [(s.subject, s.session) for s in scans] == [
        ("01", "a"),
        ("01", "b"),
        ("02", "a"),
        ("02", "b"),
    ]
    for s in scans:
        assert s.entities["acquisition"] == "megapress" and s.entities["suffix"] == "svs"
        assert s.sidecar["EditCondition"] == ["ON", "OFF"]
        assert s.water_path is not None
        assert s.water_path.name == s.path.name.replace("_svs", "_mrsref")


def test_labels_and_filters(dataset):
    assert {s.subject for s in find_scans(dataset, participant_label=["02"])} == {"02"}
    assert {s.session for s in find_scans(dataset, session_label=["b"])} == {"b"}
    scans = find_scans(dataset, bids_filters={"svs": {"session": "a", "subject": "01"}})
    assert len(scans) == 1 and scans[0].session == "a"
    with pytest.raises(NoFilesSelectedError, match="not found"):
        find_scans(dataset, participant_label=["03"])
    with pytest.raises(NoFilesSelectedError):
        find_scans(dataset, bids_filters={"svs": {"acquisition": "press"}})
    with pytest.raises(UsageError, match="unknown query"):
        check_filters({"t1w": {}})
    with pytest.raises(UsageError):
        find_scans(dataset, bids_filters={"svs": {"notanentity": "x"}})
    # null: the entity must be absent -> every file has a session here, so nothing is left
    with pytest.raises(NoFilesSelectedError):
        find_scans(dataset, bids_filters={"svs": {"session": None}})
    # a filter on mrsref that excludes the reference leaves the scan without water
    scans = find_scans(dataset, bids_filters={"mrsref": {"acquisition": "other"}})
    assert all(s.water_path is None for s in scans)


def test_reference_signal_uri_wins_over_same_entity_name(tmp_path):
    root = write_bids_dataset(
        tmp_path / "ds", np.random.default_rng(1), subjects=("01",), n_coils=1, n_transients=2
    )
    mrs = root / "sub-01" / "mrs"
    other = mrs / "sub-01_acq-waterlong_mrsref.nii.gz"
    save_nifti_mrs(other, make_water_fids(np.random.default_rng(2), n_coils=1))
    side = json.loads((mrs / "sub-01_acq-megapress_svs.json").read_text())
    side["ReferenceSignal"] = "bids::sub-01/mrs/sub-01_acq-waterlong_mrsref.nii.gz"
    (mrs / "sub-01_acq-megapress_svs.json").write_text(json.dumps(side))
    (scan,) = find_scans(root)
    assert scan.water_path == other
    side["ReferenceSignal"] = (
        "bids::sub-01/mrs/missing_mrsref.nii.gz"  # falls back to same entities
    )
    (mrs / "sub-01_acq-megapress_svs.json").write_text(json.dumps(side))
    (scan,) = find_scans(root)
    assert scan.water_path.name == "sub-01_acq-megapress_mrsref.nii.gz"


def test_run_entity_pairs_with_same_run(tmp_path):
    root = write_bids_dataset(
        tmp_path / "ds",
        np.random.default_rng(1),
        subjects=("01",),
        water=False,
        n_coils=1,
        n_transients=2,
    )
    mrs = root / "sub-01" / "mrs"
    fids = make_mega_fids(np.random.default_rng(3), n_coils=1, n_transients=2)
    for run in ("1", "2"):
        write_mega_nifti_mrs(mrs / f"sub-01_acq-mega_run-{run}_svs.nii.gz", fids)
        save_nifti_mrs(
            mrs / f"sub-01_acq-mega_run-{run}_mrsref.nii.gz",
            make_water_fids(np.random.default_rng(4), n_coils=1),
        )
    scans = {
        s.path.name: s for s in find_scans(root, bids_filters={"svs": {"acquisition": "mega"}})
    }
    assert len(scans) == 2
    for name, scan in scans.items():
        assert scan.entities["run"] in (1, "1", 2, "2")
        assert scan.water_path.name == name.replace("_svs", "_mrsref")


def test_no_mrs_data_and_bad_roots(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.10.0"})
    )
    with pytest.raises(NoInputError, match="no MRS data"):
        find_scans(tmp_path / "empty")
    with pytest.raises(NoInputError, match="does not exist"):
        find_scans(tmp_path / "nope")
    (tmp_path / "nodesc").mkdir()
    with pytest.raises(NoInputError, match="dataset_description.json"):
        find_scans(tmp_path / "nodesc")


def test_invalid_description_is_a_validation_error(tmp_path):
    root = write_bids_dataset(
        tmp_path / "ds", np.random.default_rng(1), subjects=("01",), n_coils=1, n_transients=2
    )
    (root / "dataset_description.json").write_text(json.dumps({"Name": "no version"}))
    with pytest.raises(BIDSValidationError):
        find_scans(root)
    assert len(find_scans(root, validate=False)) == 1


def test_database_dir_is_created_and_reused(dataset, tmp_path):
    db = tmp_path / "db"
    first = find_scans(dataset, database_dir=db)
    assert any(db.iterdir())
    assert [s.path for s in find_scans(dataset, database_dir=db)] == [s.path for s in first]


def test_filter_file_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        read_filter_file(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError):
        read_filter_file(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text('{"svs": {"acquisition": "megapress68"}}')
    assert read_filter_file(tmp_path / "ok.json") == {"svs": {"acquisition": "megapress68"}}


def test_big_gaba_sidecars_discovered_with_entities(shared_data, tmp_path):
    """Real Big GABA sidecars (CC BY-NC: copied to tmp only, never into the repo) paired with
    generated NIfTI-MRS files at the sidecar's frequency; entities and sidecars are read."""
    src = shared_data / "bids_examples_mrs_biggaba"
    root = tmp_path / "biggaba"
    shutil.copytree(src, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    rng = np.random.default_rng(5)
    acq = Acquisition(f0_mhz=127.751, dwell_s=1 / 2000, n_points=2048, te_s=0.068)
    for sub in ("01", "02"):
        for side in (root / f"sub-{sub}" / "mrs").glob("*.json"):
            target = side.with_name(side.name.replace(".json", ".nii.gz"))
            if side.name.endswith("_svs.json"):
                write_mega_nifti_mrs(
                    target, make_mega_fids(rng, n_coils=2, n_transients=2, acquisition=acq)
                )
            else:
                save_nifti_mrs(target, make_water_fids(rng, n_coils=2, acquisition=acq))
    scans = find_scans(root, bids_filters={"svs": {"acquisition": "megapress68"}})
    assert [(s.subject, s.entities["acquisition"]) for s in scans] == [
        ("01", "megapress68"),
        ("02", "megapress68"),
    ]
    for scan in scans:
        assert scan.sidecar["PulseSequenceType"] == "MEGA-PRESS"
        assert scan.sidecar["EditPulse"]["ON"]["FrequencyOffset"] == 1.9
        assert scan.water_path.name == f"sub-{scan.subject}_acq-megapress68_mrsref.nii.gz"
        fids = load_nifti_mrs(scan.path, sidecar=scan.sidecar, require_edit=True)
        assert fids.acquisition.f0_mhz == pytest.approx(127.751)
    assert len(find_scans(root)) == 6  # 2 subjects x (megapress68, megapress80, press)
