"""Thin nipype interfaces over the step functions of gabaapp.pipeline (one scan each).

Intermediate results travel between nodes as pickles in the node's work directory; a step
that raises records logs/errors/<scan>.json in the output directory (pipeline.recording_failure)
and re-raises, so nipype marks the node failed while other scans go on.
"""

from __future__ import annotations

import os

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from gabaapp import pipeline
from gabaapp.config import LcmConfig, PreprocConfig, options_from_mapping


class _ScanInputSpec(BaseInterfaceInputSpec):
    out_dir = traits.Str(mandatory=True, desc="derivatives folder (not hashed as a directory)")
    scan_key = traits.Str(mandatory=True, desc="scan name, e.g. sub-01_acq-megapress")
    source = traits.Str("", usedefault=True, desc="metabolite file, for error records")


class _PreprocessInputSpec(_ScanInputSpec):
    metab_file = File(exists=True, mandatory=True, desc="metabolite NIfTI-MRS (svs)")
    water_file = File(exists=True, desc="water reference NIfTI-MRS (mrsref)")
    sidecar = traits.Dict(desc="BIDS sidecar of the metabolite file")
    options = traits.Dict(desc="PreprocConfig fields (--config-file [preproc]); {} = defaults")


class _StateOutputSpec(TraitedSpec):
    state_file = File(exists=True, desc="pickled step result")


class PreprocessScan(SimpleInterface):
    """Load and pre-process one scan (pipeline.load_scan + preprocess_scan)."""

    input_spec = _PreprocessInputSpec
    output_spec = _StateOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        with pipeline.recording_failure(i.out_dir, i.scan_key, i.source):
            water = i.water_file if i.water_file else None
            metab, water_fids = pipeline.load_scan(i.metab_file, water, i.sidecar or {})
            options = options_from_mapping(PreprocConfig, "preproc", i.options or {})
            pre = pipeline.preprocess_scan(metab, water_fids, options)
        path = os.path.join(runtime.cwd, "preprocessed.pkl")
        self._results["state_file"] = str(pipeline.save_state(pre, path))
        return runtime


class _QuantifyInputSpec(_ScanInputSpec):
    state_file = File(exists=True, mandatory=True, desc="pickled Preprocessed")
    model = traits.Str(mandatory=True, desc="yae, cnn, fcnn or lcm")
    device = traits.Str("cpu", usedefault=True)
    precision = traits.Enum("float32", "bfloat16", usedefault=True, desc="network arithmetic")
    model_dir = traits.Str("", usedefault=True, desc="weights folder; '' = bundled")
    lcm_options = traits.Dict(desc="LcmConfig fields (--config-file [lcm]); {} = defaults")


class QuantifyScan(SimpleInterface):
    """Quantify one pre-processed scan with one model (pipeline.quantify_scan)."""

    input_spec = _QuantifyInputSpec
    output_spec = _StateOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        with pipeline.recording_failure(i.out_dir, i.scan_key, i.source):
            pre = pipeline.load_state(i.state_file)
            lcm_config = options_from_mapping(LcmConfig, "lcm", i.lcm_options or {})
            result = pipeline.quantify_scan(
                pre,
                i.model,
                i.device,
                i.model_dir or None,
                lcm_config=lcm_config,
                precision=i.precision,
            )
        path = os.path.join(runtime.cwd, f"quantification_{i.model}.pkl")
        self._results["state_file"] = str(pipeline.save_state(result, path))
        return runtime


class _OutputsInputSpec(_ScanInputSpec):
    state_file = File(exists=True, mandatory=True, desc="pickled Preprocessed")
    quantification_files = InputMultiObject(File(exists=True), mandatory=True)
    entities = traits.Dict(mandatory=True, desc="BIDS entities of the metabolite file")


class _OutputsOutputSpec(TraitedSpec):
    fragment_file = File(exists=True, desc="report fragment JSON of the scan")


class WriteScanOutputs(SimpleInterface):
    """Write derivatives and the report fragment of one scan (pipeline.write_scan_outputs)."""

    input_spec = _OutputsInputSpec
    output_spec = _OutputsOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        with pipeline.recording_failure(i.out_dir, i.scan_key, i.source):
            pre = pipeline.load_state(i.state_file)
            quants = [pipeline.load_state(f) for f in i.quantification_files]
            pipeline.write_scan_outputs(i.out_dir, i.entities, i.source, pre, quants)
        self._results["fragment_file"] = str(pipeline.fragment_path(i.out_dir, i.entities))
        return runtime
