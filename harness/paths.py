"""Where the harness keeps things between runs."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .errors import HarnessError, UsageError


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


def write_cache(path: Path, text: str) -> None:
    """A cache file written whole: a temporary of this process and thread beside it, then a
    rename, so writers of the same answer at once never leave half a file. OSError is the
    caller's (a cache that cannot be written is, for most, only slower)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a full disk leaves the previous version and a one-line error."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise HarnessError(f"{path}: cannot write it ({exc.strerror}); the previous version is kept: free space or pick another folder with -o") from None
