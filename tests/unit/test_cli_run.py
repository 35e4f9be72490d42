"""`gabaapp.cli.run.main`: exit codes, one-line errors, --help/--version, subcommand dispatch."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gabaapp.__about__ import __version__
from gabaapp.cli.run import main, subcommand_of

REPO = Path(__file__).resolve().parents[2]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("gabaapp: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"gabaapp {__version__}\n"


def test_help_exits_zero_and_names_levels_and_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gabaapp ")
    for word in (
        "bids_dir",
        "output_dir",
        "{participant,group}",
        "gabaapp train",
        "gabaapp simulate",
    ):
        assert word in out


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--no-such-option"],
        ["--nprocs", "0"],
        ["--plugin-args", "not json"],
        ["--bids-filter-file", "missing.json"],
        ["--participant-label", "sub-01_x"],
    ],
)
def test_usage_errors_exit_64_with_one_line_and_write_nothing(tmp_path, capsys, options):
    out_dir = tmp_path / "out"
    argv = [str(tmp_path), str(out_dir), "participant", *options] if options else []
    assert main(argv) == 64
    line = _one_error_line(capsys)
    assert "see 'gabaapp --help'" in line
    assert not out_dir.exists()


def test_missing_positionals_are_named(capsys):
    assert main(["only_bids_dir"]) == 64
    assert "output_dir" in _one_error_line(capsys)


def test_unknown_analysis_level_exits_17(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main([str(tmp_path), str(out_dir), "subject"]) == 17
    assert "unknown analysis level 'subject'" in _one_error_line(capsys)
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train"], "train"),
        (["train", "--help"], "train"),
        (["simulate", "bids", "out"], "simulate"),
        (["train", "out", "participant"], None),
        (["simulate", "out", "group", "-v"], None),
        (["bids", "out", "participant"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_subcommand_of(argv, expected):
    assert subcommand_of(argv) == expected


def test_a_plain_folder_named_like_a_subcommand_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "simulate").mkdir()  # not a BIDS dataset: no dataset_description.json
    assert subcommand_of(["simulate", "bids", "out"]) == "simulate"
    (tmp_path / "simulate" / "dataset_description.json").write_text("{}")
    assert subcommand_of(["simulate", "bids", "out"]) is None


def test_train_dispatches_to_its_own_command(capsys):
    code = main(["train", "--help"])
    captured = capsys.readouterr()
    # Whatever `gabaapp train` does (not yet available, or its own help), it is not the
    # BIDS-App parser complaining about positional arguments.
    assert "{participant,group}" not in captured.out + captured.err
    assert "train" in captured.out + captured.err
    assert code in (0, 1, 64)


def test_simulate_help_is_its_own_and_exits_zero(capsys):
    assert main(["simulate", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gabaapp simulate")
    assert "{participant,group}" not in out


def test_dataset_directory_named_train_keeps_the_bids_app_form(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "dataset_description.json").write_text(
        '{"Name": "x", "BIDSVersion": "1.10.0"}'
    )
    # A mistyped level reaches the BIDS-App checks (17), not the train subcommand.
    assert main(["train", "out", "participnt"]) == 17
    _one_error_line(capsys)
    # Options are those of the BIDS-App parser.
    assert main(["train", "out", "participant", "--nprocs", "0"]) == 64
    assert "see 'gabaapp --help'" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_level_word_selects_the_bids_app_form_even_without_such_directory(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "out"), "participant", "--plugin-args", "[]"]) == 64
    assert "see 'gabaapp --help'" in _one_error_line(capsys)


def test_console_script_points_at_a_callable():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module_name, _, attr = scripts["gabaapp"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attr))


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "gabaapp", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"gabaapp {__version__}"


def test_python_dash_m_usage_error_exits_64_without_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gabaapp",
            str(tmp_path),
            str(tmp_path / "o"),
            "participant",
            "--bad",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 64
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
