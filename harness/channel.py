"""The probe's result channel, read as data from an attacker.

The probe reports on its stdout, one JSON message a line (see probe.py). Everything a
cell sends is bounded (proc keeps at most CHANNEL_KEEP bytes), parsed line by line,
cut to known shapes (sizes, depths, string lengths) and checked against the models the
harness asked about; anything else is dropped and noted. Outputs arrive as base64 and
are returned as bytes for the harness to write where it chooses: no path a cell names
is ever opened.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .escape import clean

MAX_LINE = 64 << 20  # one message (an outputs message is the largest)
MAX_STRING = 16_000
MAX_ITEMS = 200
MAX_DEPTH = 10
KEY = re.compile(r"m\d{1,5}")
# The files a load may send back (harness migrate's bridge), by role; the harness names them.
FILE_ROLES = ("architecture", "weights", "weights3", "rebuilt", "rebuilt_h5", "input", "serving")


@dataclass(frozen=True)
class ProbeReport:
    """What a probe run reported: the result document diagnose reads, and saved outputs."""

    result: dict[str, Any] | None
    outputs: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # model key -> role -> content
    problems: tuple[str, ...] = ()
    finished: bool = False  # the probe said "done" (or reported a failed import)


def read_channel(text: str, keys: Collection[str]) -> ProbeReport:
    """Assemble the probe's messages into one result, keeping only what `keys` asked for."""
    result: dict[str, Any] | None = None
    outputs: dict[str, bytes] = {}
    files: dict[str, dict[str, bytes]] = {}
    problems: list[str] = []
    finished = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            problems.append(f"message {number}: longer than {MAX_LINE} bytes, dropped")
            continue
        try:
            message = json.loads(line)
        except ValueError:
            problems.append(f"message {number}: not JSON, dropped")
            continue
        if not isinstance(message, dict):
            problems.append(f"message {number}: not an object, dropped")
            continue
        kind = message.get("kind")
        if kind == "start":
            result = {k: bounded(v) for k, v in message.items() if k in ("probe_version", "python", "api", "pid", "versions", "limits")}
            result["models"] = {}
            if not isinstance(result.get("versions"), dict):
                result["versions"] = {}
            result["versions"] = {clean(str(k)[:100]): clean(str(v)[:100]) for k, v in result["versions"].items()}
        elif result is None:
            problems.append(f"message {number}: '{str(kind)[:40]}' before 'start', dropped")
        elif kind == "import":
            imported = message.get("import")
            if isinstance(imported, dict) and isinstance(imported.get("ok"), bool):
                result["import"] = bounded(imported)
                finished = finished or not imported["ok"]
            else:
                problems.append(f"message {number}: malformed import, dropped")
        elif kind == "model":
            key, data = message.get("key"), message.get("result")
            if not _wanted(key, keys) or not isinstance(data, dict):
                problems.append(f"message {number}: result for an unknown model, dropped")
                continue
            result["models"][key] = bounded(data)
        elif kind == "outputs":
            key, encoded = message.get("key"), message.get("npz")
            if not isinstance(key, str) or not _wanted(key, keys) or not isinstance(encoded, str):
                problems.append(f"message {number}: outputs for an unknown model, dropped")
                continue
            try:
                outputs[key] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                problems.append(f"message {number}: outputs not base64, dropped")
        elif kind == "file":
            key, role, encoded = message.get("key"), message.get("role"), message.get("data")
            if not _wanted(key, keys) or role not in FILE_ROLES or not isinstance(encoded, str):
                problems.append(f"message {number}: a file for an unknown model or role, dropped")
                continue
            try:
                files.setdefault(str(key), {})[str(role)] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                problems.append(f"message {number}: a file not base64, dropped")
        elif kind == "done":
            finished = True
            seconds = message.get("seconds")
            if isinstance(seconds, int | float):
                result["seconds"] = float(seconds)
        else:
            problems.append(f"message {number}: unknown kind, dropped")
    return ProbeReport(result, outputs, files, tuple(problems[:20]), finished)


def _wanted(key: Any, keys: Collection[str]) -> bool:
    return isinstance(key, str) and KEY.fullmatch(key) is not None and key in keys


def bounded(value: Any, depth: int = 0) -> Any:
    """`value` cut to JSON of bounded size: strings, lists, mappings and nesting capped."""
    if depth > MAX_DEPTH:
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):  # clean: JSON's \ud800 escapes give lone surrogates, which no writer writes
        return clean(value if len(value) <= MAX_STRING else value[:MAX_STRING] + " [... cut by harness]")
    if isinstance(value, list):
        return [bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {clean(str(k)[:200]): bounded(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    return clean(str(value)[:MAX_STRING])
