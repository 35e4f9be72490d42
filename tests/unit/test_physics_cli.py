"""`gabaapp simulate basis`: outputs, exports, bad input -> exit code 64."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gabaapp.cli.run import main
from gabaapp.physics.basis import load_basis
from gabaapp.physics.lcmodel import read_lcmodel_basis
from gabaapp.spectra import fid_to_spectrum

ARGS = ["--ideal-refocusing", "--n-points", "1024", "--metabolites", "Cr", "NAA", "--no-progress"]


def test_simulate_basis_writes_npz_nifti_and_lcmodel(tmp_path):
    out = tmp_path / "basis"
    assert main(["simulate", "basis", "--out", str(out), *ARGS, "--nifti", "--lcmodel"]) == 0
    basis = load_basis(out / "basis.npz")
    assert basis.names == ("Cr", "NAA") and basis.acquisition.n_points == 1024
    info = json.loads((out / "sequence.json").read_text())
    assert info["hash"] == basis.sequence_hash and info["sequence"]["ideal_refocusing"] is True
    # NIfTI-MRS export read back by gabaapp's own loader: same FIDs, NAA still at 2.01 ppm
    from gabaapp.constants import DIM_EDIT
    from gabaapp.io.nifti_mrs import load_nifti_mrs

    fids = load_nifti_mrs(out / "nifti" / "NAA.nii.gz", require_edit=True)
    data = np.moveaxis(fids.data, fids.axis(DIM_EDIT), 0).reshape(2, -1)
    np.testing.assert_allclose(data[0], basis.off[1], atol=1e-5 * np.abs(basis.off[1]).max())
    ppm = fids.acquisition.ppm_axis()
    spec = fid_to_spectrum(data[0] * np.exp(-np.pi * 2.0 * fids.acquisition.time_axis())).real
    assert ppm[np.argmax(spec)] == pytest.approx(2.008, abs=0.02)
    # LCModel .BASIS round trip (values written with 7 significant digits)
    for cond, ref in (("off", basis.off), ("diff", basis.diff)):
        back = read_lcmodel_basis(out / "lcmodel" / f"basis_{cond}.BASIS")
        assert list(back) == ["Cr", "NAA"]
        np.testing.assert_allclose(back["NAA"], ref[1], atol=1e-5 * np.abs(basis.off[1]).max())


def test_press_option_and_te(tmp_path):
    out = tmp_path / "press"
    assert (
        main(["simulate", "basis", "--out", str(out), *ARGS, "--no-editing", "--te-ms", "30"]) == 0
    )
    basis = load_basis(out / "basis.npz")
    np.testing.assert_array_equal(basis.on, basis.off)
    assert basis.acquisition.te_s == pytest.approx(0.030)


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        (["--metabolites", "Foo"], "Foo"),
        (["--edit-on-ppm", "30"], "edit_on_ppm"),
        (["--delays-ms", "-1", "17", "17", "17", "12"], "delays_ms"),
        (["--delays-ms", "5", "17", "17", "17", "12", "--te-ms", "30"], "--te-ms"),
    ],
)
def test_bad_input_exits_64_with_one_line(tmp_path, capsys, extra, word):
    argv = [
        "simulate",
        "basis",
        "--out",
        str(tmp_path / "x"),
        "--ideal-refocusing",
        "--no-progress",
        *extra,
    ]
    assert main(argv) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
