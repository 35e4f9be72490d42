"""The wheel: package data, console script and version from gabaapp/__about__.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gabaapp.__about__ import __version__

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """Build the wheel of this checkout with pip (build isolation fetches hatchling)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("gabaapp-*.whl")
    return zipfile.ZipFile(path)


def _git_ignored(paths: set[str]) -> set[str]:
    """Return those of `paths` that git ignores (hatchling leaves them out, e.g. caches)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--stdin"],
        input="\n".join(sorted(paths)),
        capture_output=True,
        text=True,
        check=False,
    )
    return set(done.stdout.split())


def test_wheel_holds_every_package_data_file(wheel):
    data_dir = REPO / "gabaapp" / "data"
    on_disk = {p.relative_to(REPO).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    missing = on_disk - _git_ignored(on_disk) - set(wheel.namelist())
    assert not missing, f"package data missing from the wheel: {sorted(missing)[:10]}"


def test_wheel_holds_every_module(wheel):
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "gabaapp").rglob("*.py")}
    assert modules <= set(wheel.namelist())


def test_wheel_metadata_version_and_console_script(wheel):
    dist_info = f"gabaapp-{__version__}.dist-info"
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in metadata
    assert any(line.startswith("Requires-Dist: torch") for line in metadata.splitlines())
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "gabaapp = gabaapp.cli.run:console_entry" in entry_points
