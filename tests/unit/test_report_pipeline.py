"""Pipeline steps after pre-processing, on synthetic averaged spectra and a small YAE saved in
tmp_path: quantify -> QC -> derivatives -> report fragment -> participant report."""

from __future__ import annotations

import hashlib
import json
import math

import nibabel as nib
import numpy as np
import pytest

from gabaapp import pipeline
from gabaapp.constants import METABOLITES
from gabaapp.errors import UsageError
from gabaapp.io.nifti_mrs import read_header_extension
from gabaapp.report import tables
from gabaapp.spectra import Acquisition, fid_to_spectrum

ACQ = Acquisition(f0_mhz=123.2, dwell_s=1 / 2000, n_points=2048, te_s=0.068)
LW_HZ = 6.0
ENTITIES = {"subject": "01", "acquisition": "megapress", "suffix": "svs", "datatype": "mrs"}


def _fid(lines, shift_hz=0.0):
    t = ACQ.time_axis()
    out = np.zeros_like(t, dtype=complex)
    for ppm, amp in lines:
        f = (ppm - ACQ.centre_ppm) * ACQ.f0_mhz + shift_hz
        out += amp * np.exp(2j * np.pi * f * t - np.pi * LW_HZ * t)
    return out


def _preprocessed(n_transients=16):
    common = [(2.01, 1.0), (3.03, 0.8), (3.92, 0.5)]
    gaba = [(3.01 - 0.06, 0.05), (3.01, -0.1), (3.01 + 0.06, 0.05)]
    off, on = _fid(common), _fid(common + gaba)
    rng = np.random.default_rng(0)
    shifts = rng.normal(0, 2, n_transients)
    before = fid_to_spectrum(np.array([_fid(common, s) for s in shifts]))
    after = fid_to_spectrum(np.array([_fid(common) for _ in shifts]))
    rejected = np.zeros(n_transients, bool)
    rejected[5] = True
    return pipeline.preprocessed_from_arrays(
        ACQ,
        off,
        on,
        transients_before=before,
        transients_after=after,
        shift_hz=shifts,
        rejected=rejected,
        rejection_metric=np.abs(shifts),
        rejection_threshold=3.0,
        processing_applied=[
            {
                "Time": "2026-01-01T00:00:00",
                "Program": "gabaapp",
                "Version": "test",
                "Method": "Signal averaging",
                "Details": "test",
            }
        ],
        settings={"alignment": "test"},
    )


@pytest.fixture(scope="module")
def small_yae(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from gabaapp.models.card import save_model
    from gabaapp.models.registry import build_model, model_config

    torch.manual_seed(0)
    net = build_model("yae", model_config("yae", lin=3, lout=3, units=32))
    folder = tmp_path_factory.mktemp("models") / "yae"
    save_model(folder, "yae", net)
    return folder


def test_fwhm_of_a_lorentzian_is_its_linewidth_in_ppm():
    pre = _preprocessed()
    metrics = pipeline.scan_qc(pre)
    expected = LW_HZ / ACQ.f0_mhz  # Lorentzian FWHM = linewidth (Hz) / f0 (MHz)
    assert metrics["naa_fwhm_ppm"] == pytest.approx(expected, rel=0.05)
    assert metrics["rejected_fraction"] == pytest.approx(1 / 16)
    assert metrics["drift_range_hz"] == pytest.approx(np.ptp(pre.shift_hz))


def test_quantify_network_returns_concentrations_sd_and_reconstruction(small_yae):
    pre = _preprocessed()
    x = pipeline.network_grid(pre)
    assert x.shape == (1, 4, 2048)
    q = pipeline.quantify_network(x, "yae", model_dir=small_yae, n_samples=8)
    assert q.names == METABOLITES and q.concentrations.shape == (5,)
    assert np.all(np.isfinite(q.concentrations)) and np.all(q.sd > 0)  # dropout is active
    assert q.reconstruction.shape == (4, 2048)
    digest = hashlib.sha256((small_yae / "weights.safetensors").read_bytes()).hexdigest()
    assert q.info["WeightsSHA256"] == digest
    again = pipeline.quantify_network(x, "yae", model_dir=small_yae, n_samples=8)
    np.testing.assert_array_equal(q.concentrations, again.concentrations)  # seeded MC dropout


def test_bfloat16_quantification_is_close_to_float32_and_says_so(small_yae):
    x = pipeline.network_grid(_preprocessed())
    full = pipeline.quantify_network(x, "yae", model_dir=small_yae, n_samples=1)
    half = pipeline.quantify_network(
        x, "yae", model_dir=small_yae, n_samples=1, precision="bfloat16"
    )
    assert full.info["Precision"] == "float32" and half.info["Precision"] == "bfloat16"
    # bfloat16 keeps 8 significant bits: relative rounding 2**-8 per operand, so outputs move by
    # about 1e-2 of their scale at most, but they do move (autocast is really on).
    scale = np.abs(full.concentrations).max()
    diff = np.abs(half.concentrations - full.concentrations)
    assert diff.max() <= 0.02 * scale and diff.max() > 0
    with pytest.raises(UsageError, match="precision must be one of"):
        pipeline.quantify_network(x, "yae", model_dir=small_yae, precision="float16")


def test_scan_outputs_and_participant_report(small_yae, tmp_path):
    pre = _preprocessed()
    q = pipeline.quantify_network(pipeline.network_grid(pre), "yae", model_dir=small_yae)
    source = "sub-01/mrs/sub-01_acq-megapress_svs.nii.gz"
    frag = pipeline.write_scan_outputs(tmp_path, ENTITIES, source, pre, [q])
    mrs = tmp_path / "sub-01" / "mrs"
    tsv = mrs / "sub-01_acq-megapress_desc-yae_concentrations.tsv"
    rows = {r["metabolite"]: r for r in tables.parse_tsv(tsv.read_text())}
    assert list(rows) == [*METABOLITES, "Glx"]
    total = sum(rows[m]["concentration"] for m in METABOLITES)
    assert total == pytest.approx(1.0, abs=1e-5)
    expected = q.concentrations / q.concentrations.sum()
    for m, value in zip(METABOLITES, expected, strict=True):
        assert rows[m]["concentration"] == pytest.approx(value, rel=1e-5)
    sidecar = json.loads(tsv.with_suffix(".json").read_text())
    assert sidecar["Quantifier"]["WeightsSHA256"] == q.info["WeightsSHA256"]
    assert sidecar["QC"]["metrics"]["naa_fwhm_ppm"] == pytest.approx(LW_HZ / ACQ.f0_mhz, rel=0.05)
    assert sidecar["QC"]["status"] in ("pass", "warn", "fail")
    for column in tables.CONCENTRATION_COLUMNS:
        assert "Description" in sidecar[column]
    # preprocessed NIfTI-MRS: OFF, ON, DIFF with a ProcessingApplied entry per step
    nii = mrs / "sub-01_acq-megapress_desc-preproc_svs.nii.gz"
    hdr = read_header_extension(nii)
    assert hdr["dim_5"] == "DIM_EDIT"
    assert hdr["dim_5_header"]["EditCondition"] == ["OFF", "ON", "DIFF"]
    assert [p["Method"] for p in hdr["ProcessingApplied"]] == [
        "Signal averaging",
        "Sub-spectrum difference",
    ]
    data = np.asarray(nib.load(nii).dataobj).reshape(2048, 3)
    np.testing.assert_allclose(data[:, 2], data[:, 1] - data[:, 0], atol=1e-5)
    # the report fragment and the participant report
    assert frag["status"] == "ok" and len(frag["figures"]) == 5
    page_path = pipeline.write_participant_report(tmp_path, "01", ["yae"])
    page = page_path.read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "YAE reconstruction" in page and "GABA+" in page
    # identical bytes on a rerun
    first = {p: p.read_bytes() for p in (tsv, tsv.with_suffix(".json"), page_path)}
    pipeline.write_scan_outputs(tmp_path, ENTITIES, source, pre, [q])
    pipeline.write_participant_report(tmp_path, "01", ["yae"])
    assert {p: p.read_bytes() for p in first} == first
    assert not list(tmp_path.rglob(".tmp-*"))


def test_failure_record_is_written_and_cleared_by_a_later_success(small_yae, tmp_path):
    key = pipeline.scan_key(ENTITIES)
    with pytest.raises(ValueError), pipeline.recording_failure(tmp_path, key, "src.nii.gz"):
        raise ValueError("broken transients")
    (failure,) = pipeline.read_failures(tmp_path)
    assert failure == {
        "scan": key,
        "source": "src.nii.gz",
        "error": "ValueError: broken transients",
        "exit_code": 1,
    }
    page = pipeline.write_participant_report(tmp_path, "01", ["yae"], [failure]).read_text()
    assert "broken transients" in page
    pre = _preprocessed()
    q = pipeline.quantify_network(pipeline.network_grid(pre), "yae", model_dir=small_yae)
    pipeline.write_scan_outputs(tmp_path, ENTITIES, "src.nii.gz", pre, [q])
    assert pipeline.read_failures(tmp_path) == []


def test_citation_files_are_written(tmp_path):
    md, bib = pipeline.write_citations(tmp_path, ["yae", "lcm"])
    assert md.name == "CITATION.md" and bib.name == "CITATION.bib"
    assert "[near2021consensus]" in md.read_text() and "@article{klose1990ecc," in bib.read_text()


def test_quantification_from_fit_keeps_metabolite_order_and_nan_for_missing():
    q = pipeline.quantification_from_fit(
        "lcm", ("NAA", "Cr"), {"NAA": 2.0, "Cr": 1.0}, {"NAA": 0.1, "Cr": 0.1}, gaba_label="GABA+"
    )
    assert q.concentrations[METABOLITES.index("NAA")] == 2.0
    assert math.isnan(q.concentrations[METABOLITES.index("GABA")])


def test_notebook_api_quantifies_a_nifti_mrs_file(small_yae, tmp_path):
    pytest.importorskip("gabaapp.preproc.chain")
    import gabaapp
    from gabaapp import testing

    rng = np.random.default_rng(5)
    path = tmp_path / "sub-01_acq-megapress_svs.nii.gz"
    testing.write_mega_nifti_mrs(path, testing.make_mega_fids(rng, n_coils=2, n_transients=8))
    sidecar = testing.mega_sidecar(testing.DEFAULT_ACQUISITION, 16, ("ON", "OFF"))
    path.with_name("sub-01_acq-megapress_svs.json").write_text(json.dumps(sidecar))
    records = gabaapp.quantify(path, model_dirs={"yae": small_yae})
    assert [r["metabolite"] for r in records] == [*METABOLITES, "Glx"]
    assert all(r["model"] == "yae" and math.isfinite(r["concentration"]) for r in records)
    assert sum(r["concentration"] for r in records[:5]) == pytest.approx(1.0)
    # the synthetic lines have 5 Hz linewidth at 123.2 MHz: NAA FWHM about 0.04 ppm
    assert records[0]["naa_fwhm_ppm"] == pytest.approx(5.0 / 123.2, rel=0.25)
    with pytest.raises(gabaapp.errors.UsageError, match="unknown model"):
        gabaapp.quantify(path, models=("svm",))


def test_batched_mc_dropout_pools_mean_and_sd_exactly():
    # draws[i, k, p]: spectrum i, copy k, pass p -> output vector; stand-in for predict that
    # returns per-copy mean/sd over the passes, as models.inference.predict does
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(2, 16, 2, 5))

    def per_copy_predict(net, x, n_samples, seed):
        assert n_samples == 2 and len(x) == 32
        flat = draws.reshape(32, 2, 5)
        return flat.mean(1), flat.std(1, ddof=1)

    mean, sd = pipeline._mc_dropout(per_copy_predict, None, np.zeros((2, 4, 8)), 32, 0)
    pooled = draws.reshape(2, 32, 5)
    np.testing.assert_allclose(mean, pooled.mean(1), rtol=1e-6)
    np.testing.assert_allclose(sd, pooled.std(1, ddof=1), rtol=1e-5)


def _toy_basis():
    """Singlet/multiplet basis on ACQ (zero linewidth): Cr, GABA (edited 3.01 ppm triplet whose
    centre line inverts in edit-OFF), Gln, Glu (partly edited at 3.75 ppm), NAA."""
    from gabaapp.spectra import Basis

    t = ACQ.time_axis()
    j = 7.3 / ACQ.f0_mhz

    def lines(spec):
        return sum(a * np.exp(2j * np.pi * (p - ACQ.centre_ppm) * ACQ.f0_mhz * t) for p, a in spec)

    off = {
        "Cr": [(3.03, 1), (3.92, 1)],
        "GABA": [(3.01 - j, 0.5), (3.01, -1), (3.01 + j, 0.5), (2.28, 1), (1.89, 1)],
        "Gln": [(3.75, 1), (2.45, 1), (2.13, 1)],
        "Glu": [(3.75, 1), (2.35, 1), (2.05, 1)],
        "NAA": [(2.01, 3), (2.6, 0.5)],
    }
    on = dict(off)
    on["GABA"] = [(3.01 - j, 0.5), (3.01 + j, 0.5), (2.28, 1)]
    on["Glu"] = [(3.75, 0.6), (2.35, 1), (2.05, 1)]
    on["Gln"] = [(3.75, 0.6), (2.45, 1), (2.13, 1)]
    rows_off = np.array([lines(off[n]) for n in METABOLITES])
    rows_on = np.array([lines(on[n]) for n in METABOLITES])
    return Basis(METABOLITES, rows_off, rows_on, ACQ, "toy")


def test_lcm_quantifier_recovers_known_relative_concentrations():
    basis = _toy_basis()
    truth = np.array([8.0, 2.0, 3.0, 12.0, 15.0])
    decay = np.exp(-np.pi * 5.0 * ACQ.time_axis())
    rng = np.random.default_rng(0)
    off, on = (truth @ basis.off) * decay, (truth @ basis.on) * decay
    noisy = [
        s + rng.normal(0, 0.05, s.shape) + 1j * rng.normal(0, 0.05, s.shape) for s in (off, on)
    ]
    q = pipeline.quantify_lcm(pipeline.preprocessed_from_arrays(ACQ, *noisy), basis=basis)
    assert q.model == "lcm" and q.gaba_label == "GABA+" and q.info["Converged"]
    rel = q.concentrations / q.concentrations.sum()
    np.testing.assert_allclose(rel, truth / truth.sum(), atol=0.01)
    assert np.all(q.sd > 0) and np.all(q.sd < 0.1 * q.concentrations)
    rows = {r["metabolite"]: r for r in tables.concentration_rows(q.concentrations, q.sd)}
    assert rows["GABA"]["ratio_cr"] == pytest.approx(2.0 / 8.0, rel=0.1)
