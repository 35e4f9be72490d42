"""End to end: a synthetic MEGA-PRESS phantom BIDS dataset (Big GABA-like names and sidecars,
truth in participants.tsv) through the nipype participant level and the group level."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("gabaapp.preproc.chain", reason="pre-processing chain not available yet")

from gabaapp import testing  # noqa: E402
from gabaapp.constants import METABOLITES  # noqa: E402
from gabaapp.report import tables  # noqa: E402
from gabaapp.workflows.base import run_group_level, run_participant_level  # noqa: E402

SUBJECTS = ("01", "02", "03")  # good scans
BAD = "04"  # its metabolite file is corrupt
MODELS = ("yae", "lcm")  # run side by side (lcm uses the bundled default basis)
TRUTH = {  # mM, NAA 15 / Cr 8 / Glu 12 / Gln 3 background with stepped GABA (paper-notes §5.3)
    "01": (8.0, 0.0, 3.0, 12.0, 15.0),
    "02": (8.0, 2.0, 3.0, 12.0, 15.0),
    "03": (8.0, 6.0, 3.0, 12.0, 15.0),
    "04": (8.0, 4.0, 3.0, 12.0, 15.0),
}


@pytest.fixture(scope="module")
def yae_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from gabaapp.models.card import save_model
    from gabaapp.models.registry import build_model, model_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "yae"
    save_model(folder, "yae", build_model("yae", model_config("yae", lin=3, lout=3, units=32)))
    return folder


def _phantom_dataset(root, subjects=SUBJECTS):
    testing.write_bids_dataset(
        root,
        np.random.default_rng(42),
        subjects=subjects,
        acq="megapress68",
        n_coils=4,
        n_transients=8,
    )
    lines = ["participant_id\tcr\tgaba\tgln\tglu\tnaa"]
    lines += [f"sub-{s}\t" + "\t".join(f"{v:g}" for v in TRUTH[s]) for s in subjects if s in TRUTH]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    described = {
        m.lower(): {"Description": f"true {m} concentration", "Units": "mM"} for m in METABOLITES
    }
    (root / "participants.json").write_text(json.dumps(described))
    return root


def _tables(out_dir):
    return {p.relative_to(out_dir): p.read_bytes() for p in sorted(out_dir.rglob("*.tsv"))}


def _run_options(yae_dir) -> dict:
    # bfloat16 here (float32 is the default everywhere else): checks --precision reaches the
    # quantify nodes through the nipype workflow.
    return {
        "models": MODELS,
        "model_dirs": {"yae": yae_dir},
        "validate": False,
        "precision": "bfloat16",
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, yae_dir):
    """One participant-level run over three good scans and one corrupt scan."""
    base = tmp_path_factory.mktemp("e2e")
    bids, out, work = _phantom_dataset(base / "bids", (*SUBJECTS, BAD)), base / "out", base / "work"
    bad = bids / f"sub-{BAD}" / "mrs" / f"sub-{BAD}_acq-megapress68_svs.nii.gz"
    bad.write_bytes(gzip.compress(b"this is not a NIfTI file"))
    code = run_participant_level(bids, out, work_dir=work, **_run_options(yae_dir))
    return bids, out, work, code


def test_participant_level_writes_every_expected_file(finished_run):
    bids, out, _, code = finished_run
    assert code == 65  # the corrupt scan: DataError (BEP027 "bad data"); the others finished
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    for sub in SUBJECTS:
        mrs = out / f"sub-{sub}" / "mrs"
        stem = f"sub-{sub}_acq-megapress68"
        assert (mrs / f"{stem}_desc-preproc_svs.nii.gz").is_file()
        for model in MODELS:
            tsv = mrs / f"{stem}_desc-{model}_concentrations.tsv"
            rows = tables.parse_tsv(tsv.read_text())
            assert [r["metabolite"] for r in rows] == [*METABOLITES, "Glx"]
            assert all(math.isfinite(r["concentration"]) for r in rows)
        sidecar = json.loads((mrs / f"{stem}_desc-yae_concentrations.json").read_text())
        assert sidecar["Quantifier"]["WeightsSHA256"] and sidecar["QC"]["metrics"]
        assert sidecar["Quantifier"]["Precision"] == "bfloat16"
        page = (out / f"sub-{sub}.html").read_text()
        assert "data:image/png;base64," in page and stem in page
    assert (out / "logs" / "CITATION.md").is_file() and (out / "logs" / "CITATION.bib").is_file()
    assert not list(out.rglob(".tmp-*"))
    assert not list(bids.rglob("*desc-*"))  # nothing written into the input dataset


def test_group_level_has_one_row_per_scan_and_a_matching_accuracy_table(finished_run):
    bids, out, _, _ = finished_run
    assert run_group_level(bids, out) == 0
    all_rows = tables.parse_tsv((out / "group_concentrations.tsv").read_text())
    assert len(all_rows) == len(SUBJECTS) * len(MODELS)  # one row per scan and model
    rows = [r for r in all_rows if r["model"] == "yae"]
    assert sorted(r["participant_id"] for r in rows) == [f"sub-{s}" for s in SUBJECTS]
    assert len(tables.parse_tsv((out / "group_qc.tsv").read_text())) == len(SUBJECTS)
    # independent recomputation of the accuracy table from the participant TSVs
    true, pred = [], []
    for sub in SUBJECTS:
        tsv = out / f"sub-{sub}" / "mrs" / f"sub-{sub}_acq-megapress68_desc-yae_concentrations.tsv"
        by_name = {r["metabolite"]: r["concentration"] for r in tables.parse_tsv(tsv.read_text())}
        pred.append([by_name[m] for m in METABOLITES])
        true.append(TRUTH[sub])
    t = np.array(true) / np.max(true, axis=1, keepdims=True)
    p = np.array(pred) / np.max(pred, axis=1, keepdims=True)
    acc_rows = tables.parse_tsv((out / "group_accuracy.tsv").read_text())
    assert {r["model"] for r in acc_rows} == set(MODELS)
    acc = {r["metabolite"]: r for r in acc_rows if r["model"] == "yae"}
    for j, m in enumerate(METABOLITES):
        assert acc[m]["mae"] == pytest.approx(
            np.mean(np.abs(p[:, j] - t[:, j])), rel=1e-4, abs=1e-6
        )
    slope, intercept = np.polyfit(t[:, 1], p[:, 1], 1)
    assert acc["GABA"]["slope"] == pytest.approx(slope, rel=1e-4, abs=1e-6)
    assert acc["GABA"]["intercept"] == pytest.approx(intercept, rel=1e-4, abs=1e-6)
    assert acc["Cr"]["slope"] is None  # constant truth: the line is undefined, written n/a
    page = (out / "group.html").read_text()
    assert "Predicted vs true" in page
    # the corrupt scan is listed with its error in the group and participant reports
    assert "Failed scans" in page and f"sub-{BAD}_acq-megapress68" in page
    assert "DataError" in page and "DataError" in (out / f"sub-{BAD}.html").read_text()


def test_rerun_gives_identical_tables_without_redoing_work(finished_run, yae_dir):
    bids, out, work, _ = finished_run
    before = _tables(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*_concentrations.tsv")}
    # the first run's options: same node inputs, so nipype's cache is used
    code = run_participant_level(bids, out, work_dir=work, **_run_options(yae_dir))
    assert code == 65  # the corrupt scan still fails; the finished ones are not redone
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # cached nodes: not rewritten
    after = _tables(out)
    assert {k: v for k, v in after.items() if k.name.startswith("sub-")} == {
        k: v for k, v in before.items() if k.name.startswith("sub-")
    }


@pytest.mark.slow
def test_killed_run_resumes_and_leaves_no_half_written_file(tmp_path, yae_dir):
    import subprocess
    import sys
    import time

    bids = _phantom_dataset(tmp_path / "bids")
    out, work = tmp_path / "out", tmp_path / "work"
    script = (
        "import sys; from pathlib import Path; from gabaapp.workflows.base import "
        "run_participant_level as r; sys.exit(r(Path(sys.argv[1]), Path(sys.argv[2]), "
        "work_dir=Path(sys.argv[3]), model_dirs={'yae': sys.argv[4]}, validate=False))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, bids, out, work, str(yae_dir)])
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.rglob("*_concentrations.tsv")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    for p in out.rglob("*"):  # whatever exists under a final name is complete
        if p.suffix == ".tsv" and not p.name.startswith(".tmp-"):
            assert tables.parse_tsv(p.read_text())
    code = run_participant_level(
        bids, out, work_dir=work, models=("yae",), model_dirs={"yae": yae_dir}, validate=False
    )
    assert code == 0
    assert not list(out.rglob(".tmp-*"))
    assert len(list(out.rglob("*_concentrations.tsv"))) == len(SUBJECTS)
    shutil.rmtree(work)
    assert os.path.isdir(out)
