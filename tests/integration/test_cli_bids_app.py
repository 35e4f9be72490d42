"""`gabaapp bids_dir output_dir participant|group` in-process: the happy path and every bad
input of issue 3 (one-line error, non-zero BEP027 code, no traceback, nothing written)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gabaapp.cli.run import main
from gabaapp.constants import DIM_TIME
from gabaapp.io.nifti_mrs import save_nifti_mrs
from gabaapp.spectra import FIDs
from gabaapp.testing import make_mega_fids, write_bids_dataset, write_mega_nifti_mrs


def snapshot(root: Path) -> dict[str, float]:
    """Return {relative path: mtime} of everything under root."""
    return {str(p.relative_to(root)): p.stat().st_mtime for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tpl") / "bids"
    rng = np.random.default_rng(11)
    write_bids_dataset(root, rng, subjects=("01", "02"), n_coils=2, n_transients=2)
    write_bids_dataset(
        root, rng, subjects=("03",), n_coils=2, n_transients=2, edit_condition=("OFF", "ON")
    )
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\nsub-03\n")
    return root


@pytest.fixture
def bids(template, tmp_path) -> Path:
    root = tmp_path / "bids"
    shutil.copytree(template, root)
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gabaapp: error:"), err
    assert "Traceback" not in err


def concentration_tables(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.glob("sub-*/mrs/*_concentrations.tsv"))


def test_participant_then_group(capsys, bids, tmp_path):
    before = snapshot(bids)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, bids, out_dir, "participant", "--model", "lcm")
    assert code == 0, err
    assert all(f"sub-0{i}.html" in out for i in (1, 2, 3))
    desc = json.loads((out_dir / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "gabaapp"
    assert concentration_tables(out_dir) == [
        f"sub-0{i}_acq-megapress_desc-lcm_concentrations.tsv" for i in (1, 2, 3)
    ]
    # the ["OFF","ON"] file of sub-03 and the ["ON","OFF"] files give the same kind of result
    preproc = sorted(out_dir.glob("sub-*/mrs/*_desc-preproc_svs.nii.gz"))
    assert len(preproc) == 3
    code, out, err = run(capsys, bids, out_dir, "group")
    assert code == 0, err
    lines = (out_dir / "group_concentrations.tsv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("participant_id\tsession_id")
    assert (out_dir / "group.html").is_file() and "group.html" in out
    assert snapshot(bids) == before  # nothing written in bids_dir


def test_participant_label_with_prefix_and_filter_file(capsys, bids, tmp_path):
    args = ("participant", "--model", "lcm")
    code, out, _ = run(capsys, bids, tmp_path / "o", *args, "--participant-label", "sub-02")
    assert code == 0 and "sub-02.html" in out and "sub-01" not in out
    flt = tmp_path / "f.json"
    flt.write_text(json.dumps({"svs": {"subject": "03"}}))
    code, out, _ = run(capsys, bids, tmp_path / "o2", *args, "--bids-filter-file", flt)
    assert code == 0 and "sub-03.html" in out and "sub-01" not in out


def test_output_under_bids_derivatives_is_allowed(capsys, bids):
    code, _, err = run(
        capsys,
        bids,
        bids / "derivatives" / "gabaapp",
        "participant",
        "--participant-label",
        "01",
        "--model",
        "lcm",
    )
    assert code == 0, err
    assert (bids / "derivatives" / "gabaapp" / "dataset_description.json").is_file()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("missing", 66),
        ("not-a-dir", 66),
        ("no-description", 66),
        ("out-equals-bids", 73),
        ("out-inside-bids", 73),
        ("label-matches-nothing", 18),
        ("no-mrs-data", 66),
        ("filter-selects-nothing", 18),
        ("filter-bad-query", 64),
        ("invalid-description", 16),
        ("database-inside-bids", 73),
    ],
)
def test_bad_input(capsys, bids, tmp_path, case, code):
    out_dir = tmp_path / "out"
    bids_dir, extra = bids, []
    if case == "missing":
        bids_dir = tmp_path / "nope"
    elif case == "not-a-dir":
        bids_dir = tmp_path / "file.txt"
        bids_dir.write_text("x")
    elif case == "no-description":
        (bids / "dataset_description.json").unlink()
    elif case == "out-equals-bids":
        out_dir = bids
    elif case == "out-inside-bids":
        out_dir = bids / "sub-01" / "out"
    elif case == "label-matches-nothing":
        extra = ["--participant-label", "99"]
    elif case == "no-mrs-data":
        for p in bids.rglob("*.nii.gz"):
            p.unlink()
    elif case in ("filter-selects-nothing", "filter-bad-query"):
        flt = tmp_path / "f.json"
        query = (
            {"svs": {"acquisition": "press"}} if case == "filter-selects-nothing" else {"bold": {}}
        )
        flt.write_text(json.dumps(query))
        extra = ["--bids-filter-file", flt]
    elif case == "invalid-description":
        (bids / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    elif case == "database-inside-bids":
        extra = ["--bids-database-dir", bids / "db"]
    before = snapshot(bids) if bids.exists() else None
    got, out, err = run(capsys, bids_dir, out_dir, "participant", *extra)
    assert got == code, err
    assert_one_line_error(err)
    assert not out_dir.exists() or out_dir == bids
    if before is not None:
        assert snapshot(bids) == before


def _break(bids: Path, sub: str, how: str) -> None:
    """Replace sub-<sub>'s metabolite file by a bad one."""
    path = bids / f"sub-{sub}" / "mrs" / f"sub-{sub}_acq-megapress_svs.nii.gz"
    fids = make_mega_fids(np.random.default_rng(1), n_coils=2, n_transients=2)
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif how == "no-edit":
        save_nifti_mrs(
            path, FIDs(fids.data[:, :, 0], ("DIM_COIL", "DIM_DYN", DIM_TIME), fids.acquisition)
        )
    elif how == "31P":
        write_mega_nifti_mrs(path, fids, header_extra={"ResonantNucleus": ["31P"]})
    elif how == "nan":
        data = fids.data.copy()
        data[0, 0, 0, 5] = np.nan
        write_mega_nifti_mrs(path, FIDs(data, fids.dims, fids.acquisition))
    elif how == "sidecar-f0":
        side = path.with_name(path.name.replace(".nii.gz", ".json"))
        meta = json.loads(side.read_text())
        meta["SpectrometerFrequency"] = 297.2
        side.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "truncated or corrupt"),
        ("no-edit", r"not an edited \(MEGA\) acquisition"),
        ("31P", "31P"),
        ("nan", "NaN or Inf"),
        ("sidecar-f0", "disagrees"),
    ],
)
def test_bad_file_is_reported_and_others_still_run(capsys, bids, tmp_path, how, message):
    _break(bids, "02", how)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, bids, out_dir, "participant", "--model", "lcm")
    assert code == 65
    assert_one_line_error(err)
    assert "sub-02_acq-megapress" in err
    import re

    assert re.search(message, err)
    assert concentration_tables(out_dir) == [
        "sub-01_acq-megapress_desc-lcm_concentrations.tsv",
        "sub-03_acq-megapress_desc-lcm_concentrations.tsv",
    ]
    assert "FAILED" in out
    # the failure is recorded for the reports and the group level
    (record,) = (out_dir / "logs" / "errors").glob("*.json")
    assert "sub-02" in record.name


def test_all_files_failing_write_no_results(capsys, bids, tmp_path):
    _break(bids, "02", "truncated")
    out_dir = tmp_path / "out"
    args = ("participant", "--participant-label", "02", "--model", "lcm")
    code, _, err = run(capsys, bids, out_dir, *args)
    assert code == 65 and "truncated" in err
    assert_one_line_error(err)
    assert concentration_tables(out_dir) == []
    assert not list(out_dir.glob("sub-*/mrs/*.nii.gz"))


def test_group_without_participant_outputs(capsys, bids, tmp_path):
    code, _, err = run(capsys, bids, tmp_path / "out", "group")
    assert code == 66 and "participant level first" in err
    assert_one_line_error(err)


def test_real_non_edited_data_at_participant_level(capsys, shared_data, tmp_path):
    """Real Philips PRESS (spec2nii-converted) in a BIDS dataset: the clear MEGA error."""
    root = tmp_path / "bids"
    mrs = root / "sub-01" / "mrs"
    mrs.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "real", "BIDSVersion": "1.10.0"})
    )
    folder = shared_data / "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("spec2nii")),
            "philips",
            "-o",
            str(mrs),
            "-f",
            "sub-01_acq-press_svs",
            str(folder / "sub-01_PRESS_35_act.sdat"),
            str(folder / "sub-01_PRESS_35_act.spar"),
        ],
        check=True,
        capture_output=True,
    )
    for extra in mrs.glob("*.json"):  # spec2nii may write a JSON sidecar copy; keep BIDS clean
        extra.unlink()
    code, _, err = run(capsys, root, tmp_path / "out", "participant", "--model", "lcm")
    assert code == 65
    assert_one_line_error(err)
    assert "not an edited (MEGA) acquisition" in err
    assert concentration_tables(tmp_path / "out") == []
