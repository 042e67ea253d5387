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
