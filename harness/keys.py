"""Every cache identity, in one module: a change to what decides an outcome goes here.

- `env_key`: an environment (Python, the full lock, the backend and its template);
- `lock_key`: a resolution (the requirements, overrides, Python and package index);
- `index_key`: a package index's cached listings (its URLs);
- `options_key`: the load options of a run and the content of every file they name;
- `result_key`: one (model, cell) result: the model's content, the cell, its environment,
  the options, the probe's version. A stored result is reused only under the same key.

User files enter by content, never by path: an edited custom_objects.py loads again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .modelfile import content_hash

# Load options that name a file: the file's content decides the outcome, not its path.
CONTENT_OPTIONS = ("custom_objects", "input", "reference")


def _digest(value: Any, length: int = 16) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def env_key(python: str, lock: str, backend: str, template: str) -> str:
    return _digest([python, lock.strip(), backend, template])


def lock_key(requirements: str, overrides: str, python: str, index_urls: Sequence[str]) -> str:
    return _digest([requirements, overrides, python, list(index_urls)], 24)


def index_key(urls: Sequence[str]) -> str:
    return hashlib.sha256(" ".join(urls).encode()).hexdigest()[:16]


def content_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (modelfile.content_hash, as for models); 'missing' if absent."""
    try:
        return content_hash(path)[0]
    except OSError:
        return "missing"


def options_key(load: Mapping[str, Any], backend: str) -> str:
    """What besides the model and the environment decides an outcome: the options (with
    --try-fixes folded in by the caller), and the content of each file they name."""
    keyed = dict(load)
    for name in CONTENT_OPTIONS:
        if keyed.get(name):
            keyed[name] = [str(keyed[name]), content_digest(Path(str(keyed[name])))]
    return _digest([keyed, backend])


def result_key(model_sha256: str, cell: str, env: str, options: str, probe_version: int) -> str:
    return _digest([model_sha256, cell, env, options, probe_version], 32)
