"""Golden comparison of what a run reports: results.json and report.md, volatile parts masked.

What stays is what a user reads and acts on: per model its static facts, per cell its
pins, per result its status, cause, exception (type, first line), attempts, missing name
and fix, and the gate. Masked: times, durations, memory, paths, hashes, memory addresses,
and the versions the index resolved that the matrix did not pin (a new keras or numpy
release must not break the comparison; each is replaced by its package's name).

    HARNESS_UPDATE_GOLDEN=1 pytest ...   # rewrites the golden files after a deliberate change
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
_OBJECT_ID = re.compile(r"\b\d{12,}\b")  # id() of an object, e.g. Keras 3's shared_object_id
_SECONDS = re.compile(r"\b\d+(\.\d+)? ?s\b")


def _first_line(text: Any) -> str:
    return (str(text or "").strip().splitlines() or [""])[0]


def _masker(versions: Mapping[str, Any], pins: Mapping[str, Any]) -> Any:
    """Replace each resolved (not pinned) version in a text by '<package>'; a package may
    map to one version or to several (a report spans cells)."""
    # versions only: the backend a Keras 3 cell ran on ("tensorflow") is a name, never masked
    pairs = [(v, k) for k, vs in versions.items() if k != "keras-backend" for v in ([vs] if isinstance(vs, str) else sorted(vs))]
    pinned = {str(v) for v in pins.values() if v}
    swaps = sorted(((v, f"<{k}>") for v, k in pairs if v and v not in pinned and len(v) >= 3), key=lambda s: (-len(s[0]), s))

    def mask(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        text = _OBJECT_ID.sub("<id>", _ADDRESS.sub("0x…", text))
        for version, name in swaps:
            text = re.sub(rf"(?<![\d.]){re.escape(version)}(?![\d])", name, text)
        return text

    return mask


def results_projection(doc: Mapping[str, Any]) -> dict[str, Any]:
    cells = {c["id"]: c for c in doc.get("cells", [])}
    paths = sorted(((str(m["path"]), str(m["name"])) for m in doc.get("models", []) if m.get("path")), key=lambda p: -len(p[0]))
    results = []
    for r in sorted(doc.get("results", []), key=lambda r: (r["model"], r["cell"])):
        pins = (cells.get(r["cell"]) or {}).get("pins") or {}
        versions = _masker(r.get("versions") or {}, pins)

        def mask(text: Any, versions: Any = versions) -> Any:  # a model's path (a fix names it) is where this run put it
            for path, name in paths:
                text = text.replace(path, f"<path>/{name}") if isinstance(text, str) else text
            return versions(text)

        exc = r.get("exception") or {}
        results.append(
            {
                "model": r["model"],
                "cell": r["cell"],
                "status": r["status"],
                "cause": r.get("cause"),
                "exception": [exc.get("type"), mask(_first_line(exc.get("message")))] if exc else None,
                "chain": [[c.get("type"), mask(_first_line(c.get("message")))] for c in exc.get("chain") or []],
                "attribute_error": r.get("attribute_error"),
                "attribute": r.get("attribute"),
                "missing_name": r.get("missing_name"),
                "fix": mask(r.get("fix")),
                "fix_worked": r.get("fix_worked"),
                "fixes_tried": list(r.get("fixes_tried") or []),
                "attempts": [[a.get("fix"), a.get("ok"), a.get("exception"), mask(_first_line(a.get("message")))] for a in r.get("attempts") or []],
                "detail": mask(_SECONDS.sub("<t>", str(r.get("detail") or ""))),
                "sandbox": r.get("sandbox"),
                "carries_code": r.get("carries_code"),
            }
        )
    models = [
        {k: m.get(k) for k in ("name", "format", "kind", "keras_version", "custom", "addons", "lambdas", "carries_code", "problems", "doubts", "risks")}
        for m in doc.get("models", [])
    ]
    gate = {k: v for k, v in (doc.get("gate") or {}).items() if k not in ("reference",)}
    return {
        "models": models,
        "cells": [{k: c.get(k) for k in ("id", "python", "pins", "env", "api", "overridden")} for c in doc.get("cells", [])],
        "results": results,
        "gate": gate,
    }


def markdown_projection(text: str, doc: Mapping[str, Any]) -> str:
    versions: dict[str, set[str]] = {}
    pinned: set[str] = set()
    for c in doc.get("cells", []):
        pinned.update(v for v in (c.get("pins") or {}).values() if v)
    for r in doc.get("results", []):
        for k, v in (r.get("versions") or {}).items():
            if v and v not in pinned:
                versions.setdefault(k, set()).add(v)
    mask = _masker(versions, {})
    paths = sorted(((str(m["path"]), str(m["name"])) for m in doc.get("models", []) if m.get("path")), key=lambda p: -len(p[0]))
    lines = []
    for line in text.splitlines():
        if line.startswith("<sub>harness "):
            continue
        for path, name in paths:
            line = line.replace(path, f"<path>/{name}")
        lines.append(mask(line))
    return "\n".join(lines) + "\n"


def compare(name: str, actual: str) -> None:
    """Assert `actual` equals the golden file `name` (or rewrite it when asked to)."""
    path = GOLDEN / name
    if os.environ.get("HARNESS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text() if path.exists() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), f"golden/{name}", "this run", n=2))
        raise AssertionError(f"{name} differs from the golden file (HARNESS_UPDATE_GOLDEN=1 rewrites it after a deliberate change):\n{diff[:6000]}")


def compare_run(prefix: str, outdir: Path) -> None:
    doc = json.loads((outdir / "results.json").read_text())
    compare(f"{prefix}.results.json", json.dumps(results_projection(doc), indent=1, sort_keys=True) + "\n")
    compare(f"{prefix}.report.md", markdown_projection((outdir / "report.md").read_text(), doc))
