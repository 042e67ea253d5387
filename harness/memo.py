"""Answers computed from a file's bytes, kept in the cache folder so that a re-run of an
unchanged file does not compute them again (and does not import h5py to do it).

An answer is kept under a key made of what it was computed from (the file's sha256 and
path, hashed just now by the caller) and the source of the code that computed it, so a
changed file or a changed harness never gets an old answer. Only the harness writes the
cache folder; cells never see it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .paths import cache_dir, write_cache

T = TypeVar("T")


@functools.cache
def code_hash(*modules: str) -> str:
    """The sha256 of these files of the package (e.g. "modelfile.py", "keras_builtins.txt")."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def machine_fact(kind: str, ident: Sequence[str], max_age: float, compute: Callable[[], T | None]) -> T | None:
    """A fact about this machine (an interpreter's path, that bubblewrap works) kept for
    `max_age` seconds while `ident` (what it depends on) is unchanged. Only answers that are
    not None are kept: a "no" is asked again every time, so a fix the user makes counts at once,
    and a kept "yes" that turned false fails loudly where it is used, never silently."""
    key = hashlib.sha256("\0".join([kind, *ident]).encode()).hexdigest()[:32]
    kept = cache_dir() / "machine" / f"{kind}-{key}.json"
    try:
        data = json.loads(kept.read_text())
        if data.get("ident") == list(ident) and time.time() - float(data["at"]) < max_age:
            return data["value"]  # type: ignore[no-any-return]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    value = compute()
    if value is not None:
        with contextlib.suppress(OSError, TypeError, ValueError):
            write_cache(kept, json.dumps({"ident": list(ident), "at": time.time(), "value": value}))
    return value


def remember(
    kind: str,
    parts: Sequence[str],
    code: Sequence[str],
    compute: Callable[[], T],
    encode: Callable[[T], Any] = lambda value: value,
    decode: Callable[[Any], T] = lambda data: data,
) -> T:
    """compute(), or what it returned before for the same `parts` and the same `code` files."""
    ident = [kind, *parts, code_hash(*code)]
    key = hashlib.sha256("\0".join(ident).encode()).hexdigest()[:32]
    kept = cache_dir() / "memo" / kind / f"{key}.json"
    try:
        data = json.loads(kept.read_text())
        if data.get("ident") == ident:
            return decode(data["value"])
    except (OSError, ValueError, TypeError, KeyError):
        pass  # not kept, or unreadable: compute it
    value = compute()
    with contextlib.suppress(OSError, TypeError, ValueError):  # a cache that cannot be written is only slower
        write_cache(kept, json.dumps({"ident": ident, "value": encode(value)}))
    return value
