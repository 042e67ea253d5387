"""Inside GitHub Actions: the run's Markdown report in the job's step summary, and an
`::error` annotation per regression, without any workflow step asking for them.

Workflow commands are lines on stdout that the runner interprets, so every value is
escaped as GitHub documents it (a cell's exception text cannot start a command of its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .markdown import render_markdown
from .summary import shows_regressions

SUMMARY_LIMIT = 1 << 20  # GitHub refuses a step summary over 1 MiB


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotations(doc: Mapping[str, Any]) -> list[str]:
    """`::error` lines, one per regression against a reference (a baseline or an earlier run);
    without one there is nothing to have regressed from."""
    if not shows_regressions(doc):
        return []
    lines = []
    for r in (doc.get("gate") or {}).get("regressions") or []:
        title = escape_property(f"harness: {r.get('model')} regressed")
        message = f"{r.get('model')} @ {r.get('cell')}: {r.get('status')} {r.get('exception') or ''} ({r.get('why')})"
        lines.append(f"::error title={title}::{escape_data(message)}")
    return lines


def report_to_github(doc: Mapping[str, Any], environ: Mapping[str, str] | None = None, emit: Callable[[str], None] = print) -> bool:
    """When GITHUB_ACTIONS is "true": the summary appended, the annotations emitted. Whether it did."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true":
        return False
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        text = render_markdown(doc)
        data = text.encode()
        if len(data) > SUMMARY_LIMIT:
            note = "\n\n… (cut at GitHub's 1 MiB limit: the whole report is report.md in the run's artifacts)\n"
            data = data[: SUMMARY_LIMIT - len(note.encode()) - 4].decode("utf-8", "ignore").encode() + note.encode()
        try:
            with Path(summary).open("ab") as handle:
                handle.write(data + b"\n")
        except OSError as exc:
            emit(f"::warning::{escape_data(f'harness could not write the step summary: {exc.strerror}')}")
    for line in error_annotations(doc):
        emit(line)
    return True
