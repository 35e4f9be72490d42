"""NIfTI-MRS loading/saving on generated MEGA-PRESS fixtures: edit order, layouts, bad files."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
from nifti_mrs import validator
from nifti_mrs.nifti_mrs import NIFTI_MRS

from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME, NAA_PPM
from gabaapp.errors import DataError, NoInputError
from gabaapp.io.nifti_mrs import load_nifti_mrs, read_header_extension, save_nifti_mrs
from gabaapp.spectra import FIDs, fid_to_spectrum
from gabaapp.testing import make_mega_fids, make_water_fids, write_mega_nifti_mrs


@pytest.fixture
def mega() -> FIDs:
    return make_mega_fids(np.random.default_rng(3), n_coils=2, n_transients=4)


def _canonical(fids: FIDs) -> np.ndarray:
    """Return data as (coil, dyn, edit, time) whatever the axis order."""
    axes = [fids.axis(t) for t in (DIM_COIL, DIM_DYN, DIM_EDIT)]
    return np.moveaxis(fids.data, axes, [0, 1, 2])


def _peak_ppm(fids: FIDs, spectrum: np.ndarray, lo: float, hi: float) -> float:
    ppm = fids.acquisition.ppm_axis()
    window = (ppm > lo) & (ppm < hi)
    return float(ppm[window][np.argmax(np.abs(spectrum[window]))])


@pytest.mark.parametrize("order", [("ON", "OFF"), ("OFF", "ON")])
@pytest.mark.parametrize(
    "dims_order",
    [None, (DIM_EDIT, DIM_COIL, DIM_DYN), (DIM_COIL, DIM_EDIT, DIM_DYN)],
    ids=["edit-dim7", "edit-dim5", "edit-dim6"],
)
def test_edit_order_and_dim_position_load_to_off_on(tmp_path, mega, order, dims_order):
    path = write_mega_nifti_mrs(
        tmp_path / "m.nii.gz", mega, edit_condition=order, dims_order=dims_order
    )
    assert read_header_extension(path)[f"dim_{5 + (dims_order or mega.dims).index(DIM_EDIT)}"]
    loaded = load_nifti_mrs(path, require_edit=True)
    np.testing.assert_allclose(_canonical(loaded), mega.data, atol=1e-6)
    assert loaded.meta["edit_condition_in_file"] == order


def test_edit_on_carries_the_edited_signal_and_naa_sits_at_2_01(tmp_path, mega):
    """Physics, not bookkeeping: DIFF = ON - OFF keeps the 3.0 ppm edited triplet and cancels
    NAA; NAA lies at 2.01 ppm in OFF under gabaapp's spectrum convention."""
    a = load_nifti_mrs(
        write_mega_nifti_mrs(tmp_path / "a.nii.gz", mega, edit_condition=("ON", "OFF"))
    )
    b = load_nifti_mrs(
        write_mega_nifti_mrs(tmp_path / "b.nii.gz", mega, edit_condition=("OFF", "ON"))
    )
    for fids in (a, b):
        coil = fids.axis(DIM_COIL)
        # coil-combine with the conjugate sensitivity of the first point (sign-safe)
        w = np.conj(fids.data[..., :1].mean(axis=fids.axis(DIM_DYN), keepdims=True))
        combined = (fids.data * w).sum(axis=coil).mean(axis=fids.axis(DIM_DYN) - 1)
        off, on = np.take(combined, 0, axis=-2), np.take(combined, 1, axis=-2)
        s_off, s_diff = fid_to_spectrum(off), fid_to_spectrum(on - off)
        assert abs(_peak_ppm(fids, s_off, 1.8, 2.3) - NAA_PPM) < 0.01
        assert abs(_peak_ppm(fids, s_diff, 1.5, 4.2) - 3.01) < 0.05
        ppm = fids.acquisition.ppm_axis()
        naa = np.abs(s_diff[np.abs(ppm - NAA_PPM) < 0.05]).max()
        assert naa < 0.05 * np.abs(s_off[np.abs(ppm - NAA_PPM) < 0.05]).max()


@pytest.mark.parametrize("order", [("ON", "OFF"), ("OFF", "ON")])
def test_philips_style_interleaved_dyn_is_split_into_edit(tmp_path, mega, order):
    path = write_mega_nifti_mrs(tmp_path / "p.nii.gz", mega, edit_condition=order, interleaved=True)
    hdr = read_header_extension(path)
    assert DIM_EDIT not in hdr.values() and hdr["EditCondition"] == list(order)
    loaded = load_nifti_mrs(path, require_edit=True)
    assert loaded.meta["edit_layout"] == "interleaved"
    np.testing.assert_allclose(_canonical(loaded), mega.data, atol=1e-6)


def test_per_transient_edit_labels_in_dyn_header(tmp_path, mega):
    data = mega.data.reshape(2, 8, -1)  # dyn index = 2 * transient + edit
    labels = ["OFF", "ON"] * 4
    fids = FIDs(data, (DIM_COIL, DIM_DYN, DIM_TIME), mega.acquisition)
    path = save_nifti_mrs(
        tmp_path / "l.nii.gz", fids, header_extra={"dim_6_header": {"EditCondition": labels}}
    )
    loaded = load_nifti_mrs(path, require_edit=True)
    np.testing.assert_allclose(_canonical(loaded), mega.data, atol=1e-6)


def test_condition_labels_a_b_resolved_by_edit_pulse_offsets(tmp_path, mega):
    # "B" carries the 1.9 ppm pulse: B is ON, stored first.
    pulses = {"A": {"PulseOffset": 7.5}, "B": {"PulseOffset": 1.9}}
    path = write_mega_nifti_mrs(tmp_path / "ab.nii.gz", mega, edit_condition=("ON", "OFF"))
    img = nib.load(path)
    hdr = read_header_extension(path)
    hdr["dim_7_header"] = {"EditCondition": ["B", "A"]}
    hdr["EditPulse"] = pulses
    img.header.extensions.clear()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(hdr).encode()))
    nib.save(
        nib.Nifti2Image(np.asanyarray(img.dataobj), img.affine, img.header), tmp_path / "x.nii.gz"
    )
    loaded = load_nifti_mrs(tmp_path / "x.nii.gz")
    np.testing.assert_allclose(_canonical(loaded), mega.data, atol=1e-6)
    # Without pulses the order cannot be known.
    del hdr["EditPulse"]
    img.header.extensions.clear()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(hdr).encode()))
    nib.save(
        nib.Nifti2Image(np.asanyarray(img.dataobj), img.affine, img.header), tmp_path / "y.nii.gz"
    )
    with pytest.raises(DataError, match="cannot tell edit-ON from edit-OFF"):
        load_nifti_mrs(tmp_path / "y.nii.gz")


def test_hermes_four_conditions_refused_politely(tmp_path, mega):
    data = np.concatenate([mega.data, mega.data], axis=2)
    fids = FIDs(data, mega.dims, mega.acquisition)
    path = save_nifti_mrs(tmp_path / "h.nii.gz", fids, edit_condition=["A", "B", "C", "D"])
    with pytest.raises(DataError, match="HERMES/HERCULES"):
        load_nifti_mrs(path)


def test_dim_edit_without_edit_condition_is_an_error(tmp_path, mega):
    path = save_nifti_mrs(tmp_path / "n.nii.gz", mega)
    hdr = read_header_extension(path)
    del hdr["dim_7_header"]
    img = nib.load(path)
    img.header.extensions.clear()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(hdr).encode()))
    nib.save(img, tmp_path / "m.nii.gz")
    with pytest.raises(DataError, match="no EditCondition"):
        load_nifti_mrs(tmp_path / "m.nii.gz")


def test_combined_data_load_with_size_one_dims(tmp_path, mega):
    fid = mega.data[0, 0, 0]
    path = save_nifti_mrs(tmp_path / "c.nii.gz", FIDs(fid, (DIM_TIME,), mega.acquisition))
    loaded = load_nifti_mrs(path)
    assert loaded.size(DIM_COIL) == 1 and loaded.size(DIM_DYN) == 1
    assert DIM_EDIT not in loaded.dims
    np.testing.assert_allclose(loaded.data.reshape(-1), fid, atol=1e-6)
    with pytest.raises(DataError, match=r"not an edited \(MEGA\) acquisition"):
        load_nifti_mrs(path, require_edit=True)


def test_saved_file_is_valid_nifti_mrs_and_nifti_mrs_package_agrees(tmp_path, mega):
    """The nifti_mrs package conjugates at access; so do we: both views must agree."""
    steps = [{"Time": "2026-01-01T00:00:00", "Program": "gabaapp", "Method": "test"}]
    path = save_nifti_mrs(tmp_path / "v.nii.gz", mega, processing_applied=steps)
    img = NIFTI_MRS(str(path))  # validates on creation
    validator.validate_nifti_mrs(img)
    assert img.dim_tags == [DIM_COIL, DIM_DYN, DIM_EDIT]
    np.testing.assert_allclose(np.moveaxis(img[:][0, 0, 0], 0, -1), mega.data, atol=1e-6)
    hdr = read_header_extension(path)
    assert hdr["ProcessingApplied"] == steps and hdr["dim_7_header"]["EditCondition"] == [
        "OFF",
        "ON",
    ]
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write leaves no temporary file
    again = load_nifti_mrs(path)
    assert again.acquisition == mega.acquisition
    np.testing.assert_allclose(again.data, mega.data, atol=1e-6)


def test_save_rejects_user_keys_without_description(tmp_path, mega):
    with pytest.raises(ValueError, match="invalid NIfTI-MRS header"):
        save_nifti_mrs(tmp_path / "bad.nii.gz", mega, header_extra={"MyKey": 3})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------- bad files
def test_truncated_and_corrupt_files(tmp_path, mega):
    good = save_nifti_mrs(tmp_path / "g.nii.gz", mega).read_bytes()
    (tmp_path / "t.nii.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_nifti_mrs(tmp_path / "t.nii.gz")
    (tmp_path / "r.nii.gz").write_bytes(gzip.compress(b"not a nifti at all" * 40))
    with pytest.raises(DataError):
        load_nifti_mrs(tmp_path / "r.nii.gz")
    with pytest.raises(NoInputError):
        load_nifti_mrs(tmp_path / "missing.nii.gz")


def test_plain_nifti_is_not_nifti_mrs(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    with pytest.raises(DataError, match="not NIfTI-MRS"):
        load_nifti_mrs(tmp_path / "a.nii.gz")


def test_nucleus_other_than_1h(tmp_path, mega):
    path = save_nifti_mrs(tmp_path / "p.nii.gz", mega, header_extra={"ResonantNucleus": ["31P"]})
    with pytest.raises(DataError, match="31P"):
        load_nifti_mrs(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_data(tmp_path, mega, bad):
    data = mega.data.copy()
    data[1, 2, 0, 100] = bad
    path = save_nifti_mrs(tmp_path / "n.nii.gz", FIDs(data, mega.dims, mega.acquisition))
    with pytest.raises(DataError, match="NaN or Inf"):
        load_nifti_mrs(path)


@pytest.mark.parametrize(
    ("sidecar", "ok"),
    [
        ({"ResonantNucleus": ["1H"], "SpectrometerFrequency": [123.2]}, True),
        ({"ResonantNucleus": "1H", "SpectrometerFrequency": 123.2004}, True),  # scalars, rounding
        ({"SpectrometerFrequency": [127.75]}, False),
        ({"ResonantNucleus": ["31P"]}, False),
    ],
)
def test_sidecar_cross_check(tmp_path, mega, sidecar, ok):
    path = save_nifti_mrs(tmp_path / "s.nii.gz", mega)
    if ok:
        load_nifti_mrs(path, sidecar=sidecar)
    else:
        with pytest.raises(DataError, match="sidecar .* disagrees"):
            load_nifti_mrs(path, sidecar=sidecar)


def test_water_reference_round_trip(tmp_path):
    water = make_water_fids(np.random.default_rng(0))
    loaded = load_nifti_mrs(save_nifti_mrs(tmp_path / "w.nii.gz", water))
    spec = fid_to_spectrum(loaded.data[0, 0])
    assert abs(_peak_ppm(loaded, spec, 0, 9) - 4.65) < 0.01
