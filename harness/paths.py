"""Where the harness keeps things between runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import UsageError


def cache_dir() -> Path:
    """Envs, locks and release lists: $HARNESS_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get("HARNESS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "harness"


def read_json(path: Path, what: str, how_to_make: str) -> Any:
    """A JSON document the harness wrote (results, baseline), or a one-line error that says how to get one."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what} ({how_to_make})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable {what} ({exc}); {how_to_make}") from None
