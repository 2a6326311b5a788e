"""The CLI as a person runs it: `python -m orders_core ...` in its own process, from the
repository's root, with the environment a test built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orders_core", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def run_json(env: dict[str, str], *args: str):
    """The command's --json answer; it must have succeeded."""
    result = run(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
