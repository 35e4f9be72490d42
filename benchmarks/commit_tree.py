"""Shared by the benchmarks that compare the working tree with an earlier commit side by side
(bench_simulate_commits, bench_lcm_commits, bench_lcm_free_speed): extract the commit's tree
without touching the repository, and run a benchmark's child process against either tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def export_commit(repo: Path, commit: str, dest: Path) -> Path:
    """Extract the tree of `commit` of `repo` into folder `dest` (created) with `git archive`;
    return `dest`. The repository and its working tree are not changed."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_child(script: str, tree: Path, args: list[str], cwd: Path | None = None) -> dict:
    """Run `python script --child *args` with `tree` first on PYTHONPATH (so `import gabaapp`
    loads that tree's code); return the JSON object the child prints on its last line."""
    proc = subprocess.run(
        [sys.executable, script, "--child", *args],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])
