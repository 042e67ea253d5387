"""What the benchmarks share: running a command with its wall time, and printing figures."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_timed(argv: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of one run; exit 1 is data (the harness's failed cells), anything else stops the benchmark."""
    start = time.monotonic()
    done = subprocess.run(argv, env=dict(env) if env is not None else None, cwd=cwd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def print_figures(figures: Mapping[str, Any]) -> None:
    """One line per figure, floats to three decimals."""
    width = max(map(len, figures), default=0) + 4
    print(f"\n{'measure':<{width}}{'value':>14}")
    for key, value in figures.items():
        print(f"{key:<{width}}{value:>14.3f}" if isinstance(value, float) else f"{key:<{width}}{value!s:>14}")
