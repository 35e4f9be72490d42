"""The one atomic writer every package uses (gabaapp.atomic): all or nothing under the final name."""

import numpy as np
import pytest

from gabaapp.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from gabaapp.errors import OutputWriteError
from gabaapp.physics.basis import load_basis, save_basis
from gabaapp.physics.lcmodel import read_lcmodel_basis, write_lcmodel_basis
from gabaapp.spectra import Acquisition, Basis


def test_bytes_and_text_round_trip_and_leave_no_temporary_file(tmp_path):
    data = bytes(range(256)) * 10
    assert write_bytes_atomic(tmp_path / "sub" / "w.bin", data).read_bytes() == data
    assert write_text_atomic(tmp_path / "t.txt", "µ-ppm\n").read_text(encoding="utf-8") == "µ-ppm\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "t.txt", "w.bin"]


def test_a_failed_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_an_unwritable_place_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder is needed
    with pytest.raises(OutputWriteError, match="cannot write"):
        write_bytes_atomic(blocker / "w.bin", b"1")


def _basis() -> Basis:
    acq = Acquisition(f0_mhz=123.2, dwell_s=5e-4, n_points=64)
    rng = np.random.default_rng(0)
    fids = rng.normal(size=(2, 2, 64)) + 1j * rng.normal(size=(2, 2, 64))
    return Basis(("Cr", "NAA"), fids[0], fids[1], acq, "test")


def test_basis_writers_go_through_the_atomic_writer(tmp_path):
    basis = _basis()
    back = load_basis(save_basis(basis, tmp_path / "b.npz"))
    np.testing.assert_array_equal(back.off, basis.off)
    write_lcmodel_basis(basis, tmp_path / "b.BASIS")
    assert set(read_lcmodel_basis(tmp_path / "b.BASIS")) == {"Cr", "NAA"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.BASIS", "b.npz"]
