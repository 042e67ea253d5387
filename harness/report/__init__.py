"""Reports, all rendered from the canonical JSON document (results.json)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import read_json, write_atomic
from .html import render_html
from .junit import render_junit
from .markdown import render_markdown

SCHEMA = "harness-results"
SCHEMA_VERSION = 1
RENDERERS = {"report.md": render_markdown, "report.html": render_html, "junit.xml": render_junit}


def write_reports(doc: Mapping[str, Any], outdir: Path) -> list[Path]:
    written = []
    outdir.mkdir(parents=True, exist_ok=True)
    for name, render in RENDERERS.items():
        path = outdir / name
        write_atomic(path, render(doc))
        written.append(path)
    return written


def load_results(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    doc = read_json(path, "results file", "harness run writes OUTDIR/results.json")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UsageError(f'{path}: not a harness results file (no "schema": "{SCHEMA}")')
    if doc.get("schema_version", 0) > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema version {doc['schema_version']} is newer than this harness reads ({SCHEMA_VERSION}); upgrade harness"
        )
    return doc
