"""The BIDS-App parser: option values checked at parse time, derived settings."""

from __future__ import annotations

import json

import pytest

from gabaapp.cli.parser import build_bids_app_parser, parse_bids_app_args
from gabaapp.config import RunConfig
from gabaapp.errors import UnknownAnalysisLevelError, UsageError


def _parse(tmp_path, *options, level="participant"):
    return parse_bids_app_args([str(tmp_path / "bids"), str(tmp_path / "out"), level, *options])


def test_participant_and_session_labels_lose_their_prefix(tmp_path):
    args = _parse(
        tmp_path, "--participant-label", "sub-01", "02", "--session_label", "ses-pre", "post"
    )
    assert args.participant_label == ["01", "02"]
    assert args.session_label == ["pre", "post"]


def test_underscore_spelling_is_the_same_option(tmp_path):
    dashed = _parse(tmp_path, "--participant-label", "sub-7")
    underscored = _parse(tmp_path, "--participant_label", "7")
    assert dashed.participant_label == underscored.participant_label == ["7"]


@pytest.mark.parametrize("label", ["sub-", "01_a", "sub-01-b", "ses-01"])
def test_labels_that_are_not_bids_labels_are_usage_errors(tmp_path, label):
    with pytest.raises(UsageError, match="not a BIDS label"):
        _parse(tmp_path, "--participant-label", label)


def test_defaults_give_one_process_linear_plugin_and_yae(tmp_path):
    args = _parse(tmp_path)
    assert args.participant_label is None
    assert args.bids_filters == {}
    assert args.plugin_settings == {"plugin": "Linear", "plugin_args": {}}
    assert args.run_config == RunConfig(models=("yae",), device="cpu", nprocs=1)
    assert args.verbose == 0


def test_nprocs_selects_multiproc_with_that_many_processes(tmp_path):
    args = _parse(tmp_path, "--nprocs", "4", "--model", "yae", "cnn", "-vv")
    assert args.plugin_settings == {"plugin": "MultiProc", "plugin_args": {"n_procs": 4}}
    assert args.run_config.models == ("yae", "cnn")
    assert args.verbose == 2


def test_precision_reaches_the_run_config_and_defaults_to_float32(tmp_path):
    assert _parse(tmp_path).run_config.precision == "float32"
    assert _parse(tmp_path, "--precision", "bfloat16").run_config.precision == "bfloat16"


def test_plugin_and_json_plugin_args_pass_through(tmp_path):
    args = _parse(
        tmp_path, "--plugin", "SLURM", "--plugin-args", '{"sbatch_args": "-p short --mem 4G"}'
    )
    assert args.plugin_settings == {
        "plugin": "SLURM",
        "plugin_args": {"sbatch_args": "-p short --mem 4G"},
    }


def test_plugin_args_n_procs_wins_over_nprocs(tmp_path):
    args = _parse(
        tmp_path, "--nprocs", "8", "--plugin", "MultiProc", "--plugin-args", '{"n_procs": 2}'
    )
    assert args.plugin_settings["plugin_args"] == {"n_procs": 2}


def test_use_plugin_file_in_yaml_is_read(tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: SGE\nplugin_args:\n  qsub_args: -q short.q\n")
    args = _parse(tmp_path, "--use-plugin", str(plugin_file))
    assert args.plugin_settings == {"plugin": "SGE", "plugin_args": {"qsub_args": "-q short.q"}}


def test_bids_filter_file_is_loaded_into_bids_filters(tmp_path):
    filters = {
        "svs": {"acquisition": "megapress68", "run": [1, 2]},
        "mrsref": {"acquisition": None},
    }
    filter_file = tmp_path / "filters.json"
    filter_file.write_text(json.dumps(filters))
    args = _parse(tmp_path, "--bids-filter-file", str(filter_file))
    assert args.bids_filter_file == filter_file
    assert args.bids_filters == filters


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "file not found"),
        ('{"svs": {"acquisition": "megapress68"}', "not valid JSON"),
        ('["svs"]', "must be a JSON object"),
        ('{"svs": "megapress68"}', "must map to an object of BIDS entities"),
    ],
)
def test_bad_bids_filter_file_is_a_usage_error_saying_why(tmp_path, content, reason):
    filter_file = tmp_path / "filters.json"
    if content is not None:
        filter_file.write_text(content)
    with pytest.raises(UsageError, match=reason) as err:
        _parse(tmp_path, "--bids-filter-file", str(filter_file))
    assert "--bids-filter-file" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--plugin-args", "{sbatch_args: 1}"], "not valid JSON"),
        (["--plugin-args", '["-p", "short"]'], "must be a JSON object"),
        (["--plugin", "Slurm"], "unknown nipype plugin 'Slurm'"),
        (["--nprocs", "0"], "at least 1"),
        (["--nprocs", "two"], "not a whole number"),
        (["--model", "gpt"], "invalid choice"),
        (["--device", "gpu"], "--device must be"),
        (["--precision", "float16"], "invalid choice"),
        (["--config-file", "missing.toml"], "file not found"),
        (["--use-plugin", "missing.yml"], "file not found"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_command_line_mistakes_are_usage_errors(tmp_path, options, reason):
    with pytest.raises(UsageError, match=reason):
        _parse(tmp_path, *options)


def test_use_plugin_file_without_plugin_name_is_a_usage_error(tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin_args:\n  n_procs: 2\n")
    with pytest.raises(UsageError, match="must name the nipype plugin"):
        _parse(tmp_path, "--use-plugin", str(plugin_file))


def test_plugin_and_use_plugin_exclude_each_other(tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: MultiProc\n")
    with pytest.raises(UsageError, match="not allowed with"):
        _parse(tmp_path, "--plugin", "SLURM", "--use-plugin", str(plugin_file))


def test_plugin_args_with_use_plugin_is_a_usage_error(tmp_path):
    plugin_file = tmp_path / "plugin.yml"
    plugin_file.write_text("plugin: MultiProc\n")
    with pytest.raises(UsageError, match="--plugin-args goes with --plugin"):
        _parse(tmp_path, "--use-plugin", str(plugin_file), "--plugin-args", "{}")


def test_invalid_toml_config_file_is_a_usage_error(tmp_path):
    config_file = tmp_path / "gabaapp.toml"
    config_file.write_text("[preproc\nalign = true\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        _parse(tmp_path, "--config-file", str(config_file))


def test_valid_toml_config_file_is_accepted(tmp_path):
    config_file = tmp_path / "gabaapp.toml"
    config_file.write_text("[preproc]\nalign = true\n")
    assert _parse(tmp_path, "--config-file", str(config_file)).config_file == config_file


def test_unknown_analysis_level_raises_exit_code_17(tmp_path):
    with pytest.raises(UnknownAnalysisLevelError) as err:
        _parse(tmp_path, level="subject")
    assert err.value.exit_code == 17


def test_parser_offers_every_bids_app_option():
    # The options issue 3 names, in both spellings where BIDS-Apps offer both.
    expected = {
        "--participant-label", "--participant_label", "--session-label", "--bids-filter-file",
        "--bids-database-dir", "--skip-bids-validation", "-w", "--work-dir", "--nprocs",
        "--use-plugin", "--plugin", "--plugin-args", "--model", "--device", "--precision", "--config-file",
        "--reports-only", "--version", "-v",
    }  # fmt: skip
    offered = {s for a in build_bids_app_parser()._actions for s in a.option_strings}
    assert expected <= offered
