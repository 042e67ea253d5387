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


_MISSING: Any = object()


def _kept(folder: str, ident: list[str], max_age: float | None = None) -> tuple[Path, Any]:
    """(where an answer for `ident` is kept, the answer or _MISSING): kept answers carry their
    ident (a hash collision never answers) and the time they were written."""
    key = hashlib.sha256("\0".join(ident).encode()).hexdigest()[:32]
    path = cache_dir() / folder / ident[0] / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        if data.get("ident") == ident and (max_age is None or time.time() - float(data["at"]) < max_age):
            return path, data["value"]
    except (OSError, ValueError, TypeError, KeyError):
        pass  # not kept, or unreadable: computed again
    return path, _MISSING


def _keep(path: Path, ident: list[str], value: Any) -> None:
    with contextlib.suppress(OSError, TypeError, ValueError):  # a cache that cannot be written is only slower
        write_cache(path, json.dumps({"ident": ident, "at": time.time(), "value": value}))


def machine_fact(
    kind: str,
    ident: Sequence[str],
    max_age: float,
    compute: Callable[[], T | None],
    still: Callable[[T], bool] = lambda value: True,
) -> T | None:
    """A fact about this machine (an interpreter's path, that bubblewrap works) kept for
    `max_age` seconds while `ident` (what it depends on) is unchanged. Only answers that are
    not None are kept: a "no" is asked again every time, so a fix the user makes counts at once,
    and a kept "yes" that turned false fails loudly where it is used, never silently. A kept
    answer that `still` rejects (a path that is gone) is asked again, and the new answer kept."""
    full = [kind, *ident]
    path, value = _kept("machine", full, max_age)
    if value is not _MISSING and still(value):
        return value  # type: ignore[no-any-return]
    value = compute()
    if value is not None:
        _keep(path, full, value)
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
    path, kept = _kept("memo", ident)
    if kept is not _MISSING:
        return decode(kept)
    value = compute()
    _keep(path, ident, encode(value))
    return value


def recall(kind: str, parts: Sequence[str], code: Sequence[str]) -> Any:
    """What keep() kept for the same `parts` and `code` files, or None."""
    _, kept = _kept("memo", [kind, *parts, code_hash(*code)])
    return None if kept is _MISSING else kept


def keep(kind: str, parts: Sequence[str], code: Sequence[str], value: Any) -> None:
    """Keep `value` (JSON) for recall() with the same `parts` and `code` files."""
    ident = [kind, *parts, code_hash(*code)]
    _keep(_kept("memo", ident)[0], ident, value)
