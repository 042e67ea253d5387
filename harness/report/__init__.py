"""Reports, all rendered from the canonical JSON document (results.json)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..paths import write_atomic
from ..schema import load_results
from .html import render_html
from .junit import render_junit
from .markdown import render_markdown

RENDERERS = {"report.md": render_markdown, "report.html": render_html, "junit.xml": render_junit}
__all__ = ["RENDERERS", "load_results", "write_reports"]


def write_reports(doc: Mapping[str, Any], outdir: Path) -> list[Path]:
    written = []
    outdir.mkdir(parents=True, exist_ok=True)
    for name, render in RENDERERS.items():
        path = outdir / name
        write_atomic(path, render(doc))
        written.append(path)
    return written
