"""Synthetic BIDS datasets: valid BIDS and NIfTI-MRS, truth in participants.tsv, realistic QC."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_simulate_generator import singlet_basis

from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, METABOLITES
from gabaapp.errors import CannotCreateOutputError, UsageError
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.preproc.chain import preprocess_megapress
from gabaapp.simulate.bids_dataset import (
    PHANTOM_BACKGROUND_MM,
    PHANTOM_GABA_MM,
    ScanSettings,
    write_synthetic_bids,
)


@pytest.fixture(scope="module")
def phantom_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("bids") / "phantom"
    write_synthetic_bids(out, 3, singlet_basis(), phantom=True, seed=7, n_coils=4, n_transients=16)
    return out


def test_phantom_dataset_passes_pybids_validation(phantom_ds):
    import bids

    layout = bids.BIDSLayout(phantom_ds, validate=True)
    on_disk = {p for p in phantom_ds.rglob("*") if p.is_file()}
    indexed = {p for p in map(__import__("pathlib").Path, layout.get(return_type="filename"))}
    assert on_disk == indexed  # the validator rejected nothing
    from bids_validator import BIDSValidator

    validator = BIDSValidator()
    for path in on_disk:
        assert validator.is_bids("/" + path.relative_to(phantom_ds).as_posix()), path
    svs = layout.get(suffix="svs", extension=".nii.gz")
    ref = layout.get(suffix="mrsref", extension=".nii.gz")
    assert len(svs) == len(ref) == 3
    assert {f.entities["acquisition"] for f in svs} == {"megapress68"}
    side = svs[0].get_metadata()
    assert side["EditCondition"] == ["ON", "OFF"]
    assert side["EditPulse"]["ON"]["FrequencyOffset"] == 1.9
    assert side["NumberOfTransients"] == 16
    desc = json.loads((phantom_ds / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and desc["BIDSVersion"]


def test_nifti_mrs_files_pass_the_nifti_mrs_validator(phantom_ds):
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    from nifti_mrs.validator import validate_nifti_mrs

    for path in sorted(phantom_ds.rglob("*.nii.gz")):
        img = NIFTI_MRS(str(path))
        validate_nifti_mrs(img)  # raises on any violation
        if path.name.endswith("_svs.nii.gz"):
            assert img.shape == (1, 1, 1, 2048, 4, 8, 2)
            assert img.dim_tags == ["DIM_COIL", "DIM_DYN", "DIM_EDIT"]
        else:
            assert img.shape == (1, 1, 1, 2048, 4, 8)


def test_phantom_truth_is_in_participants_tsv(phantom_ds):
    lines = (phantom_ds / "participants.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert header == ["participant_id", "cr", "gaba", "gln", "glu", "naa"]
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert [r["participant_id"] for r in rows] == ["sub-01", "sub-02", "sub-03"]
    assert [float(r["gaba"]) for r in rows] == list(PHANTOM_GABA_MM[:3])
    assert all(float(r["naa"]) == PHANTOM_BACKGROUND_MM["NAA"] for r in rows)
    desc = json.loads((phantom_ds / "participants.json").read_text())
    assert all(desc[m.lower()]["Units"] == "mM" for m in METABOLITES)


def test_raw_data_load_with_edit_order_and_water_reference(phantom_ds):
    mrs = phantom_ds / "sub-02" / "mrs"
    side = json.loads((mrs / "sub-02_acq-megapress68_svs.json").read_text())
    fids = load_nifti_mrs(mrs / "sub-02_acq-megapress68_svs.nii.gz", sidecar=side)
    assert fids.dims == (DIM_COIL, DIM_DYN, DIM_EDIT, "time")
    assert fids.data.shape == (4, 8, 2, 2048)
    water = load_nifti_mrs(mrs / "sub-02_acq-megapress68_mrsref.nii.gz")
    assert water.size(DIM_DYN) == 8
    # water reference is far stronger than the metabolite signal, as unsuppressed water is
    assert np.abs(water.data).max() > 100 * np.abs(fids.data[..., :64]).mean()


def test_in_vivo_scan_has_realistic_qc_after_preprocessing(tmp_path):
    scan = ScanSettings(snr=(150.0, 150.0))
    out = write_synthetic_bids(
        tmp_path / "invivo", 1, singlet_basis(), seed=3, n_coils=8, n_transients=64, scan=scan
    )
    mrs = out / "sub-01" / "mrs"
    side = json.loads((mrs / "sub-01_acq-megapress68_svs.json").read_text())
    metab = load_nifti_mrs(mrs / "sub-01_acq-megapress68_svs.nii.gz", sidecar=side)
    water = load_nifti_mrs(mrs / "sub-01_acq-megapress68_mrsref.nii.gz")
    result = preprocess_megapress(metab, water)
    qc = result.qc
    # target SNR 150 of the coil-combined average; combination and drift cost a little
    assert 90 < qc["snr"] < 200
    assert 4.5 < qc["naa_fwhm_hz"] < 11.0  # in vivo 3 T range (Big GABA ~6-9 Hz)
    assert abs(qc["naa_ppm"] - 2.01) < 0.01
    assert qc["drift_range_hz"] > 0.2  # drift was simulated and seen by the chain
    assert "cr" not in (out / "participants.tsv").read_text()  # no truth for in vivo data


def test_same_seed_gives_the_same_data(tmp_path):
    kw = {"n_coils": 2, "n_transients": 4, "seed": 11}
    a = write_synthetic_bids(tmp_path / "a", 1, singlet_basis(), **kw)
    b = write_synthetic_bids(tmp_path / "b", 1, singlet_basis(), **kw)
    name = "sub-01/mrs/sub-01_acq-megapress68_svs.nii.gz"
    np.testing.assert_array_equal(load_nifti_mrs(a / name).data, load_nifti_mrs(b / name).data)


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="n-transients"):
        write_synthetic_bids(tmp_path / "x", 1, singlet_basis(), n_transients=5)
    with pytest.raises(UsageError, match="n-participants"):
        write_synthetic_bids(tmp_path / "x", 0, singlet_basis())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(CannotCreateOutputError, match="not empty"):
        write_synthetic_bids(tmp_path / "full", 1, singlet_basis(), n_coils=1, n_transients=2)


def test_cli_writes_a_phantom_dataset(tmp_path):
    basis_module = pytest.importorskip("gabaapp.physics.basis", reason="no physics basis yet")
    if not basis_module.default_basis_path().is_file():
        pytest.skip("the bundled default basis has not been built yet")
    from gabaapp.cli.run import main

    out = tmp_path / "cli"
    argv = ["simulate", "bids", str(out), "--n-participants", "1", "--phantom"]
    argv += ["--n-coils", "2", "--n-transients", "4", "--seed", "1"]
    assert main(argv) == 0
    assert (out / "sub-01" / "mrs" / "sub-01_acq-megapress68_svs.nii.gz").is_file()
    assert "gaba" in (out / "participants.tsv").read_text()
    assert main(["simulate", "bids", str(out), "--n-participants", "1"]) == 73  # not empty


def test_cli_parses_the_documented_options(tmp_path):
    from gabaapp.cli.simulate import build_parser

    args = build_parser().parse_args(
        ["bids", str(tmp_path / "o"), "--n-participants", "3", "--phantom", "--seed", "5"]
    )
    assert args.n_participants == 3 and args.phantom and args.seed == 5
    assert (args.n_coils, args.n_transients, args.n_points) == (32, 320, 2048)


def test_cli_without_n_participants_is_a_usage_error(tmp_path, capsys):
    from gabaapp.cli.run import main

    assert main(["simulate", "bids", str(tmp_path / "o")]) == 64
    assert "--n-participants" in capsys.readouterr().err
