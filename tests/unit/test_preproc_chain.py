"""The MEGA-PRESS chain end to end on synthetic scans, and its handling of bad input."""

import numpy as np
import pytest
from test_preproc_synth import ACQ, make_scan

from gabaapp.config import PreprocConfig
from gabaapp.constants import DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME
from gabaapp.errors import DataError, UsageError
from gabaapp.preproc.chain import preprocess_megapress, preprocess_unedited, stack_edit
from gabaapp.preproc.qc import peak_ppm
from gabaapp.spectra import FIDs

QC_KEYS = {
    "snr", "naa_fwhm_hz", "naa_fwhm_ppm", "cr_fwhm_ppm", "water_fwhm_hz", "drift_range_hz",
    "drift_sd_hz", "n_rejected", "rejected_fraction", "diff_cr30_residual", "diff_cr39_residual",
}  # fmt: skip


@pytest.fixture(scope="module")
def scan():
    return make_scan(np.random.default_rng(10), n_coils=4, n_dyn=48, snr=25.0, n_corrupted=3)


@pytest.fixture(scope="module")
def result(scan):
    return preprocess_megapress(scan.metab, scan.water)


def test_outputs_shapes_and_order(result, scan):
    n_tr = scan.metab.data.shape[1] * 2
    assert result.off.shape == result.on.shape == result.diff.shape == (ACQ.n_points,)
    np.testing.assert_allclose(result.diff, result.on - result.off)
    for name in ("shift_hz", "phase_deg", "rejected", "rejection_metric", "edit_index"):
        assert getattr(result, name).shape == (n_tr,)
    assert result.transients_before.shape == result.transients_after.shape == (n_tr, ACQ.n_points)
    assert result.as_fids().dims == (DIM_EDIT, DIM_TIME)


def test_physics_of_the_result(result, scan):
    assert peak_ppm(result.off, ACQ, (1.9, 2.1)) == pytest.approx(2.01, abs=0.005)
    # DIFF holds the edited doublet at 2.96/3.06 ppm; Cr (3.93) cancels.
    assert peak_ppm(result.diff, ACQ, (2.9, 3.12)) == pytest.approx(3.01, abs=0.07)
    # Every corrupted transient is rejected (with its partner), few others are.
    assert result.rejected[scan.corrupted.reshape(-1)].all()
    assert result.qc["n_rejected"] <= scan.corrupted.sum() + 0.05 * result.rejected.size
    assert set(result.qc) >= QC_KEYS
    assert all(isinstance(v, float) for v in result.qc.values())


def test_cr_cancels_in_diff_at_high_snr():
    # Noise would dominate the peak-to-peak residual; at high SNR only misalignment remains.
    scan = make_scan(np.random.default_rng(11), n_coils=2, n_dyn=16, snr=2000.0, drift_step_hz=1.0)
    r = preprocess_megapress(scan.metab, scan.water)
    assert r.qc["diff_cr39_residual"] < 0.02
    assert np.ptp(scan.drift_hz) > 3


def test_alignment_reduces_the_frequency_spread(result):
    ok = ~result.rejected
    assert np.std(result.shift_hz_after[ok]) < 0.1 * np.std(result.shift_hz[ok])


def test_processing_records_follow_nifti_mrs(result):
    methods = [r["Method"] for r in result.processing_applied]
    for expected in ("RF coil combination", "Eddy current correction", "Frequency and phase correction",
                     "Outlier removal", "Signal averaging", "Alignment of subtraction sub-spectra",
                     "Subtraction of sub-spectra"):  # fmt: skip
        assert expected in methods
    assert set(result.processing_applied[0]) == {"Time", "Program", "Version", "Method", "Details"}


def test_already_combined_and_averaged_data(scan):
    one = FIDs(scan.metab.data[:1, :1], scan.metab.dims, ACQ)
    r = preprocess_megapress(one, None)
    assert r.off.shape == (ACQ.n_points,) and not r.rejected.any()
    assert r.qc["water_reference_used"] == 0.0
    # No COIL/DYN axes at all.
    bare = FIDs(scan.metab.data[0, 0], (DIM_EDIT, DIM_TIME), ACQ)
    assert preprocess_megapress(bare).off.shape == (ACQ.n_points,)


def test_bad_transients_are_excluded_and_noted(scan):
    data = scan.metab.data.copy()
    data[:, 3, 0] = 0
    data[1, 7, 1, 100] = np.nan
    r = preprocess_megapress(FIDs(data, scan.metab.dims, ACQ), scan.water)
    assert r.invalid[3 * 2 + 0] and r.invalid[7 * 2 + 1]
    assert r.rejected[3 * 2 + 1]  # the partner of an invalid transient goes too (pairs)
    assert r.qc["n_invalid_transients"] == 2.0
    assert any("all-zero or non-finite" in n for n in r.notes)
    assert np.isfinite(r.off).all() and np.isfinite(r.diff).all()


def test_unusable_input_raises_data_error(scan):
    data = scan.metab.data.copy()
    data[..., 0, :] = np.nan
    with pytest.raises(DataError, match="every transient"):
        preprocess_megapress(FIDs(data, scan.metab.dims, ACQ))
    with pytest.raises(DataError, match="DIM_EDIT"):
        preprocess_megapress(FIDs(scan.metab.data[:, :, 0], (DIM_COIL, DIM_DYN, DIM_TIME), ACQ))
    with pytest.raises(DataError, match="exactly 2"):
        three = np.concatenate([scan.metab.data, scan.metab.data[:, :, :1]], axis=2)
        preprocess_megapress(FIDs(three, scan.metab.dims, ACQ))


def test_water_reference_of_another_length_or_coils(scan):
    short = FIDs(
        scan.water.data[..., :1024],
        scan.water.dims,
        ACQ.__class__(**{**ACQ.__dict__, "n_points": 1024}),
    )
    r = preprocess_megapress(scan.metab, short)
    assert r.qc["eddy_current_corrected"] == 0.0
    assert any("eddy-current correction skipped" in n for n in r.notes)
    wrong = FIDs(scan.water.data[:2], scan.water.dims, ACQ)
    r = preprocess_megapress(scan.metab, wrong)
    assert r.qc["water_reference_used"] == 0.0 and any("coils" in n for n in r.notes)


def test_mismatched_on_off_counts_are_paired_with_a_note(scan):
    dims = (DIM_COIL, DIM_DYN, DIM_TIME)
    off = FIDs(scan.metab.data[:, :, 0], dims, ACQ)
    on = FIDs(scan.metab.data[:, :-3, 1], dims, ACQ)
    stacked, notes = stack_edit(off, on)
    assert stacked.data.shape[1] == scan.metab.data.shape[1] - 3
    assert stacked.dims == (DIM_COIL, DIM_DYN, DIM_EDIT, DIM_TIME)
    assert "unpaired" in notes[0]


def test_unedited_chain_and_options(scan):
    off = FIDs(scan.metab.data[:, :, 0], (DIM_COIL, DIM_DYN, DIM_TIME), ACQ)
    r = preprocess_unedited(off, scan.water)
    assert r.on is None and r.diff is None and r.as_fids().data.shape == (1, ACQ.n_points)
    with pytest.raises(UsageError):
        PreprocConfig(align_method="magic")
    with pytest.raises(UsageError):
        PreprocConfig(on_off_ppm=((3.3, 3.1),))
