"""Real scanner data (../shared/data, each with SOURCE.md): spec2nii conversion, header facts,
and the FFT/ppm convention: NAA at 2.01 ppm on every in vivo spectrum."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gabaapp.constants import DIM_COIL, DIM_DYN, NAA_PPM
from gabaapp.errors import DataError
from gabaapp.io.nifti_mrs import load_nifti_mrs
from gabaapp.spectra import FIDs, fid_to_spectrum

SPEC2NII = Path(sys.executable).with_name("spec2nii")

# name -> (spec2nii arguments relative to shared data, facts from SOURCE.md)
CONVERSIONS = {
    "siemens_rda": (
        ["rda", "suspect_siemens_press/SVS_30.rda"],
        {"f0_mhz": 123.234655, "dwell_s": 0.000833, "n_points": 1024, "te_s": 0.030},
    ),
    "siemens_ima": (
        ["dicom", "suspect_siemens_press/SVS_30.IMA"],
        {"f0_mhz": 123.234655, "dwell_s": 0.000833, "n_points": 1024, "te_s": 0.030},
    ),
    "siemens_xa60": (
        ["dicom", "suspect_siemens_press/SVS_XA60.dcm"],
        {"f0_mhz": 123.255089, "dwell_s": 0.000833, "n_points": 1024, "te_s": 0.030},
    ),
    "philips_sdat": (
        [
            "philips",
            "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.sdat",
            "osprey_philips/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.spar",
        ],
        {"f0_mhz": 127.750896, "dwell_s": 0.0005, "n_points": 2048, "te_s": 0.035},
    ),
}
# In vivo spectra with an NAA singlet (SVS_XA60 is a phantom without NAA; the water/ECC
# references have none either).
IN_VIVO = ["siemens_rda", "siemens_ima", "philips_sdat"]


@pytest.fixture(scope="module")
def converted(shared_data, tmp_path_factory) -> dict[str, Path]:
    """Convert the vendor files with the spec2nii CLI (as docs/spec2nii.md shows)."""
    out = tmp_path_factory.mktemp("spec2nii")
    paths = {}
    for name, (args, _) in CONVERSIONS.items():
        fmt, *files = args
        cmd = [
            str(SPEC2NII),
            fmt,
            "-o",
            str(out),
            "-f",
            name,
            *(str(shared_data / f) for f in files),
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        paths[name] = out / f"{name}.nii.gz"
    return paths


def naa_ppm(fids: FIDs) -> float:
    """Return the ppm of the largest line in 1.8-2.2 ppm of the magnitude spectrum averaged
    over coils and transients, refined by a parabola through the peak and its neighbours."""
    spec = np.abs(fid_to_spectrum(fids.data)).reshape(-1, fids.acquisition.n_points).mean(axis=0)
    ppm = fids.acquisition.ppm_axis()
    idx = np.flatnonzero((ppm > 1.8) & (ppm < 2.2))
    k = idx[np.argmax(spec[idx])]
    a, b, c = spec[k - 1], spec[k], spec[k + 1]
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float(ppm[k] + delta * (ppm[1] - ppm[0]))


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_converted_header_facts_match_source_md(converted, name):
    fids = load_nifti_mrs(converted[name])
    facts = CONVERSIONS[name][1]
    acq = fids.acquisition
    assert acq.f0_mhz == pytest.approx(facts["f0_mhz"], abs=1e-5)
    assert acq.dwell_s == pytest.approx(facts["dwell_s"], rel=1e-3)
    assert acq.n_points == facts["n_points"]
    assert acq.te_s == pytest.approx(facts["te_s"])
    assert acq.nucleus == "1H"
    # scanner-averaged and coil-combined: size-1 coil and transient dims
    assert fids.size(DIM_COIL) == 1 and fids.size(DIM_DYN) == 1


@pytest.mark.parametrize("name", IN_VIVO)
def test_naa_at_2_01_ppm_on_converted_vendor_data(converted, name):
    fids = load_nifti_mrs(converted[name])
    assert abs(naa_ppm(fids) - NAA_PPM) <= 0.05


def test_without_conjugation_naa_would_be_misplaced(converted):
    """The conjugation on load is what puts NAA at 2.01 ppm (not a coincidence of the data)."""
    fids = load_nifti_mrs(converted["siemens_rda"])
    stored = FIDs(np.conj(fids.data), fids.dims, fids.acquisition)
    assert abs(naa_ppm(stored) - NAA_PPM) > 0.05


def test_7t_steam_raw_coils_transients_and_naa(shared_data):
    """SOURCE.md: metab_raw (1,1,1,4096,4,16) DIM_COIL x DIM_DYN, 297.22 MHz, 4096 points."""
    folder = shared_data / "nifti_mrs_tools_steam7t"
    fids = load_nifti_mrs(folder / "metab_raw.nii.gz")
    assert fids.size(DIM_COIL) == 4 and fids.size(DIM_DYN) == 16
    assert fids.acquisition.n_points == 4096
    assert fids.acquisition.f0_mhz == pytest.approx(297.22, abs=0.01)
    assert fids.acquisition.dwell_s == pytest.approx(8.33e-5, rel=1e-3)
    assert fids.acquisition.te_s == pytest.approx(0.011)
    assert abs(naa_ppm(fids) - NAA_PPM) <= 0.05
    wref = load_nifti_mrs(folder / "wref_raw.nii.gz")
    assert wref.size(DIM_COIL) == 4 and wref.size(DIM_DYN) == 2
    for averaged in ("metab.nii.gz", "metab_int_freq.nii.gz"):
        fids = load_nifti_mrs(folder / averaged)  # int SpectrometerFrequency tolerated
        assert fids.size(DIM_COIL) == 1 and fids.size(DIM_DYN) == 1
        assert abs(naa_ppm(fids) - NAA_PPM) <= 0.05


def test_non_conforming_header_is_tolerated(shared_data, caplog):
    """ "InversionTime": null fails strict nifti_mrs validation; gabaapp drops null optional
    keys with a warning and loads the file (documented in docs/spec2nii.md)."""
    path = shared_data / "osprey_nifti_mrs_press_invalid_hdr" / "svs_preprocessed.nii.gz"
    fids = load_nifti_mrs(path)
    assert "InversionTime" in caplog.text
    assert fids.acquisition.dwell_s == pytest.approx(8.33e-5, rel=1e-3)
    assert fids.acquisition.n_points == 4096
    assert abs(naa_ppm(fids) - NAA_PPM) <= 0.05


@pytest.mark.parametrize("name", ["philips_sdat", "siemens_rda"])
def test_real_non_edited_data_refused_when_edit_required(converted, name):
    with pytest.raises(DataError, match=r"not an edited \(MEGA\) acquisition"):
        load_nifti_mrs(converted[name], require_edit=True)


def test_philips_mega_spar_with_interleaved_transients(shared_data, tmp_path):
    """The real MEGA-PRESS .spar (320 rows, ON/OFF interleaved) with a zero-filled .sdat of the
    right size (the real one is not public): `spec2nii philips -s 2 160 -t DIM_EDIT DIM_DYN`
    makes DIM_EDIT; the BIDS sidecar's EditCondition (Big GABA: ["ON","OFF"]) names it."""
    spar = (
        shared_data
        / "osprey_philips/MEGA/sub-01/ses-01/mrs/sub-01_ses-01_megapress/sub-01_megapress_act.spar"
    )
    (tmp_path / "x.spar").write_bytes(spar.read_bytes())
    (tmp_path / "x.sdat").write_bytes(bytes(320 * 2048 * 8))
    cmd = [str(SPEC2NII), "philips", "-s", "2", "160", "-t", "DIM_EDIT", "DIM_DYN"]
    cmd += ["-f", "mega", "-o", str(tmp_path), str(tmp_path / "x.sdat"), str(tmp_path / "x.spar")]
    subprocess.run(cmd, check=True, capture_output=True)
    fids = load_nifti_mrs(
        tmp_path / "mega.nii.gz", sidecar={"EditCondition": ["ON", "OFF"]}, require_edit=True
    )
    assert fids.size("DIM_EDIT") == 2 and fids.size(DIM_DYN) == 160
    assert fids.acquisition.f0_mhz == pytest.approx(127.75092)
    assert fids.acquisition.te_s == pytest.approx(0.068)
    assert fids.acquisition.n_points == 2048 and fids.acquisition.dwell_s == pytest.approx(5e-4)
    assert fids.meta["edit_condition_in_file"] == ("ON", "OFF")
    with pytest.raises(DataError, match="no EditCondition"):
        load_nifti_mrs(tmp_path / "mega.nii.gz")
