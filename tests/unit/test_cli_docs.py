"""The documentation builds without warnings and its CLI reference comes from the parsers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_docs_build_without_warnings_and_document_every_option(tmp_path):
    pytest.importorskip("sphinxarg", reason="docs extra not installed (pip install '.[docs]')")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "text",
         str(REPO / "docs"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli_page = (tmp_path / "cli.txt").read_text()
    from gabaapp.cli.parser import build_bids_app_parser

    options = [s for a in build_bids_app_parser()._actions for s in a.option_strings]
    assert [o for o in options if o not in cli_page and o not in ("-h", "--help")] == []
