"""Workflow wiring and execution settings (no execution: graph structure and plugin choice)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gabaapp.errors import UsageError
from gabaapp.io.bids import Scan
from gabaapp.workflows.base import init_participant_wf, plugin_settings, remove_stale_temporaries


def _scan(root: Path, sub: str, acq: str) -> Scan:
    path = root / f"sub-{sub}" / "mrs" / f"sub-{sub}_acq-{acq}_svs.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()  # the graph is only built, never run
    entities = {"subject": sub, "acquisition": acq, "suffix": "svs", "datatype": "mrs"}
    return Scan(path=path, entities=entities, water_path=None, sidecar={})


def test_participant_workflow_has_one_subworkflow_per_scan_and_a_node_per_model(tmp_path):
    scans = [
        _scan(tmp_path, "01", "megapress68"),
        _scan(tmp_path, "01", "megapress80"),
        _scan(tmp_path, "02", "megapress68"),
    ]
    wf = init_participant_wf(scans, tmp_path / "out", tmp_path / "work", ("yae", "lcm"))
    names = set(wf.list_node_names())
    for scan in ("sub_01_acq_megapress68", "sub_01_acq_megapress80"):
        for node in ("preprocess", "quantify_yae", "quantify_lcm", "write_outputs"):
            assert f"sub_01_wf.scan_{scan}_wf.{node}" in names
    assert "sub_02_wf.scan_sub_02_acq_megapress68_wf.quantify_yae" in names
    assert len([n for n in names if n.endswith(".preprocess")]) == 3


def test_plugin_settings_map_nprocs_and_pass_cluster_arguments_through(tmp_path):
    assert plugin_settings(1) == ("Linear", {})
    assert plugin_settings(4) == (
        "MultiProc",
        {"n_procs": 4, "raise_insufficient": False, "mp_context": "forkserver"},
    )
    plugin, args = plugin_settings(1, "SLURM", '{"sbatch_args": "-p short --mem=4G"}')
    assert plugin == "SLURM" and args == {"sbatch_args": "-p short --mem=4G"}
    settings = tmp_path / "plugin.yml"
    settings.write_text("plugin: SGE\nplugin_args:\n  qsub_args: -q all.q\n")
    assert plugin_settings(1, plugin_file=settings) == ("SGE", {"qsub_args": "-q all.q"})
    (tmp_path / "p.json").write_text(json.dumps({"plugin": "PBS", "plugin_args": {"a": 1}}))
    assert plugin_settings(2, plugin_file=tmp_path / "p.json", plugin_args={"b": 2}) == (
        "PBS",
        {"a": 1, "b": 2},
    )
    with pytest.raises(UsageError, match="not valid JSON"):
        plugin_settings(1, "SLURM", "{oops")
    with pytest.raises(UsageError, match="unknown --plugin"):
        plugin_settings(1, "Kubernetes")


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    (tmp_path / "sub-01" / "mrs").mkdir(parents=True)
    stale = tmp_path / "sub-01" / "mrs" / ".tmp-1234abcd-sub-01_desc-yae_concentrations.tsv"
    stale.write_text("half")
    keep = tmp_path / "sub-01" / "mrs" / "sub-01_desc-yae_concentrations.tsv"
    keep.write_text("whole")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and keep.exists()
