"""Participant and group levels as nipype workflows (wiring only; science in gabaapp.pipeline).

One sub-workflow per MEGA-PRESS scan: preprocess -> quantify (one node per model) -> write
derivatives and the report fragment. Scans run in parallel with MultiProc (`--nprocs`) or on a
cluster (`--plugin SLURM|SGE|PBS --plugin-args ...`); the work directory caches every node, so a
rerun skips finished scans and an interrupted run resumes. Participant reports, citations and
the exit code are made after the graph ran, from what the scans wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")  # no version check over the network

from nipype import config as nipype_config  # noqa: E402
from nipype import logging as nipype_logging  # noqa: E402
from nipype.pipeline import engine as pe  # noqa: E402

from gabaapp import group, pipeline  # noqa: E402
from gabaapp.__about__ import __version__  # noqa: E402
from gabaapp.errors import UsageError  # noqa: E402
from gabaapp.interfaces.scan import PreprocessScan, QuantifyScan, WriteScanOutputs  # noqa: E402
from gabaapp.io.bids import Scan, find_scans  # noqa: E402
from gabaapp.io.derivatives import write_dataset_description  # noqa: E402

log = logging.getLogger(__name__)

CLUSTER_PLUGINS = ("SLURM", "SLURMGraph", "SGE", "SGEGraph", "PBS", "PBSGraph", "LSF", "Condor")
LOCAL_PLUGINS = ("Linear", "MultiProc")


def _node_name(text: str) -> str:
    """Return a valid nipype node/workflow name for `text`."""
    return re.sub(r"[^A-Za-z0-9]", "_", text)


def init_single_scan_wf(
    scan: Scan,
    out_dir: Path,
    models: Sequence[str],
    device: str = "cpu",
    model_dirs: Mapping[str, str | Path] | None = None,
    options: Mapping[str, Mapping] | None = None,
    precision: str = "float32",
) -> pe.Workflow:
    """Return the workflow of one scan: preprocess -> quantify (per model) -> outputs.
    `model_dirs` maps a network to its weights folder (default: bundled weights); `options`
    holds the --config-file tables {"preproc": {...}, "lcm": {...}} (default: defaults);
    `precision` is the networks' arithmetic (float32 or bfloat16)."""
    options = options or {}
    key = pipeline.scan_key(scan.entities)
    wf = pe.Workflow(name=f"scan_{_node_name(key)}_wf")
    common = {"out_dir": str(out_dir), "scan_key": key, "source": str(scan.path)}
    prep = pe.Node(PreprocessScan(**common, metab_file=str(scan.path)), name="preprocess")
    if scan.water_path is not None:
        prep.inputs.water_file = str(scan.water_path)
    prep.inputs.sidecar = dict(scan.sidecar)
    prep.inputs.options = dict(options.get("preproc") or {})
    outputs = pe.Node(
        WriteScanOutputs(**common, entities=dict(scan.entities)), name="write_outputs"
    )
    merge = pe.Node(_Merge(len(models)), name="collect_models")
    wf.connect(prep, "state_file", outputs, "state_file")
    for n, model in enumerate(models, start=1):
        folder = str((model_dirs or {}).get(model, ""))
        quant = pe.Node(
            QuantifyScan(
                **common,
                model=model,
                device=device,
                precision=precision,
                model_dir=folder,
                lcm_options=dict(options.get("lcm") or {}),
            ),
            name=f"quantify_{model}",
        )
        wf.connect(prep, "state_file", quant, "state_file")
        wf.connect(quant, "state_file", merge, f"in{n}")
    wf.connect(merge, "out", outputs, "quantification_files")
    return wf


def _Merge(n: int):  # noqa: N802 - a factory standing in for the interface class
    from nipype.interfaces.utility import Merge

    return Merge(n)


def init_participant_wf(
    scans: Sequence[Scan],
    out_dir: Path,
    work_dir: Path,
    models: Sequence[str],
    device: str = "cpu",
    model_dirs: Mapping[str, str | Path] | None = None,
    options: Mapping[str, Mapping] | None = None,
    precision: str = "float32",
) -> pe.Workflow:
    """Return the participant-level workflow: one sub-workflow per subject, one per scan
    (`options`, `precision`: see init_single_scan_wf)."""
    wf = pe.Workflow(name="gabaapp_participant_wf", base_dir=str(work_dir))
    by_subject: dict[str, list[Scan]] = {}
    for scan in scans:
        by_subject.setdefault(scan.subject, []).append(scan)
    for subject, subject_scans in sorted(by_subject.items()):
        sub_wf = pe.Workflow(name=f"sub_{_node_name(subject)}_wf")
        sub_wf.add_nodes(
            [
                init_single_scan_wf(s, out_dir, models, device, model_dirs, options, precision)
                for s in subject_scans
            ]
        )
        wf.add_nodes([sub_wf])
    return wf


def plugin_settings(
    nprocs: int = 1,
    plugin: str | None = None,
    plugin_args: str | Mapping | None = None,
    plugin_file: Path | None = None,
) -> tuple[str, dict]:
    """Return (nipype plugin, plugin_args) from --nprocs/--plugin/--plugin-args/--use-plugin."""
    args: dict = {}
    if plugin_file is not None:
        text = Path(plugin_file).read_text()
        try:
            import yaml

            settings = yaml.safe_load(text)
        except ImportError:  # pragma: no cover - yaml ships with nipype's dependencies
            settings = json.loads(text)
        if not isinstance(settings, Mapping) or "plugin" not in settings:
            raise UsageError(f"{plugin_file} must hold 'plugin' (and optional 'plugin_args')")
        plugin = plugin or settings["plugin"]
        args.update(settings.get("plugin_args") or {})
    if isinstance(plugin_args, str):
        try:
            plugin_args = json.loads(plugin_args)
        except json.JSONDecodeError as err:
            raise UsageError(f"--plugin-args is not valid JSON: {err}") from None
    args.update(plugin_args or {})
    if plugin is None:
        plugin = "MultiProc" if nprocs > 1 else "Linear"
    if plugin not in LOCAL_PLUGINS + CLUSTER_PLUGINS:
        raise UsageError(
            f"unknown --plugin {plugin!r}; use one of {LOCAL_PLUGINS + CLUSTER_PLUGINS}"
        )
    if plugin == "MultiProc":
        args.setdefault("n_procs", nprocs)
        args.setdefault("raise_insufficient", False)
        # fresh worker processes: forking a process whose torch/OpenMP thread pools already
        # ran deadlocks the workers (seen with the default "fork" context)
        args.setdefault("mp_context", "forkserver")
    return plugin, args


def _configure_nipype(work_dir: Path) -> dict:
    # nipype prints every node failure with its traceback; gabaapp reports each failed scan on
    # one line itself, so nipype speaks only when the user asked for -v (INFO) or more.
    quiet = logging.getLogger("gabaapp").getEffectiveLevel() > logging.INFO
    level = "CRITICAL" if quiet else "WARNING"
    settings = {
        "execution": {
            "crashdump_dir": str(work_dir / "crash"),
            "crashfile_format": "txt",
            "stop_on_first_crash": False,
            "remove_unnecessary_outputs": False,
            "use_relative_paths": False,
            "create_report": False,
            # nipype polls running jobs every 2 s by default: most of a scan's time when
            # each node takes about a second
            "poll_sleep_duration": 0.1,
        },
        "logging": {
            "workflow_level": level,
            "interface_level": level,
            "utils_level": level,
            "log_to_file": False,
        },
    }
    nipype_config.update_config(settings)
    nipype_logging.update_logging(nipype_config)
    return settings


@contextlib.contextmanager
def _one_thread_per_worker(plugin: str, args: Mapping):
    """With several MultiProc workers, let each use one BLAS/OpenMP/torch thread (they
    inherit the environment): n workers x n threads would oversubscribe the cores."""
    if plugin != "MultiProc" or int(args.get("n_procs", 1)) < 2:
        yield
        return
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete `.tmp-*` files a killed run left in out_dir; return how many."""
    stale = [p for p in Path(out_dir).rglob(".tmp-*") if p.is_file()]
    for p in stale:
        p.unlink()
    return len(stale)


def run_participant_level(
    bids_dir: Path,
    out_dir: Path,
    *,
    work_dir: Path | None = None,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    bids_filters: Mapping | None = None,
    database_dir: Path | None = None,
    validate: bool = True,
    models: Sequence[str] = ("yae",),
    device: str = "cpu",
    precision: str = "float32",
    nprocs: int = 1,
    plugin: str | None = None,
    plugin_args: str | Mapping | None = None,
    plugin_file: Path | None = None,
    scans: Sequence[Scan] | None = None,
    model_dirs: Mapping[str, str | Path] | None = None,
    reports_only: bool = False,
    options: Mapping[str, Mapping] | None = None,
) -> int:
    """Run the participant level; return 0, or the exit code of the first failed scan.

    Writes dataset_description.json, per scan the derivatives of pipeline.write_scan_outputs,
    per subject sub-<label>.html, logs/CITATION.md/.bib, and logs/errors/<scan>.json for each
    failed scan (read by the group level). `scans` overrides discovery (tests, the API);
    `model_dirs` maps a network to its weights folder (default: the bundled weights).
    `reports_only` skips the workflow and re-renders reports from the existing fragments.
    """
    out_dir = Path(out_dir)
    work_dir = Path(work_dir) if work_dir else out_dir.parent / "work"
    if scans is None:
        scans = find_scans(
            bids_dir,
            participant_label=participant_label,
            session_label=session_label,
            bids_filters=bids_filters,
            database_dir=database_dir,
            validate=validate,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if n := remove_stale_temporaries(out_dir):
        log.warning("removed %d half-written file(s) of an interrupted run", n)
    write_dataset_description(
        out_dir, version=__version__, source_datasets=[{"URL": Path(bids_dir).resolve().as_uri()}]
    )
    plugin_name, args = plugin_settings(nprocs, plugin, plugin_args, plugin_file)
    if not reports_only:
        _configure_nipype(work_dir)
        wf = init_participant_wf(
            scans, out_dir, work_dir, models, device, model_dirs, options, precision
        )
        with _one_thread_per_worker(plugin_name, args):
            try:
                wf.run(plugin=plugin_name, plugin_args=args)
            except RuntimeError as err:  # nipype: "Workflow did not execute cleanly"
                log.debug("nipype reported failures: %s", err)
    return _finish_participant_level(out_dir, scans, models, work_dir)


def _finish_participant_level(
    out_dir: Path, scans: Sequence[Scan], models: Sequence[str], work_dir: Path
) -> int:
    """Write reports and citations; return the exit code (0 or that of the first failure)."""
    recorded = {f["scan"]: f for f in pipeline.read_failures(out_dir)}
    failures = []
    for scan in scans:
        key = pipeline.scan_key(scan.entities)
        if key in recorded:
            failures.append(recorded[key])
        elif not pipeline.fragment_path(out_dir, scan.entities).is_file():
            failures.append(
                {
                    "scan": key,
                    "source": str(scan.path),
                    "exit_code": 1,
                    "error": f"the workflow did not finish this scan; see {work_dir / 'crash'}",
                }
            )
    for subject in sorted({s.subject for s in scans}):
        mine = [f for f in failures if f["scan"].startswith(f"sub-{subject}_")]
        pipeline.write_participant_report(out_dir, subject, models, mine)
    pipeline.write_citations(out_dir, models)
    for f in failures:  # the CLI prints each failure as its one error line
        log.info("scan %s failed: %s", f["scan"], f["error"])
    return int(failures[0].get("exit_code", 1)) if failures else 0


def run_group_level(
    bids_dir: Path, out_dir: Path, participant_label: Sequence[str] | None = None
) -> int:
    """Run the group level (gabaapp.group.run_group); return 0 (failed scans are listed in
    group.html and logged, the participant level already reported them in its exit code)."""
    result = group.run_group(Path(bids_dir), Path(out_dir), participant_label)
    log.info("group level: %d row(s), %d failed scan(s)", result.n_rows, len(result.failures))
    return 0
