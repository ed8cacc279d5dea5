"""Shared test fixtures: the source tree on the path of subprocesses, fixed seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def run_cli(
    *args: str, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m initlab ARGS`` against this checkout's sources; returns the result."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "initlab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or ROOT,
    )

