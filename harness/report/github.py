"""Inside GitHub Actions: the run's Markdown report in the job's step summary, and an
`::error` annotation per regression, without any workflow step asking for them.

Workflow commands are lines of a step's output that the runner interprets: `::command::` at
the start of a line, and the older `##[command]` anywhere in one (actions/runner,
ActionCommand.TryParse). Names and messages the harness prints come from model files and
documents, so while the harness runs inside Actions the runner reads no command of its
output at all (`::stop-commands::TOKEN`, with a token nobody can guess), but for the
harness's own annotations, around which it resumes and stops again; it resumes when the
harness exits. The annotations' values are escaped as the runner unescapes them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from ..escape import workflow_data, workflow_property
from .markdown import render_markdown
from .summary import shows_regressions

SUMMARY_LIMIT = 1 << 20  # GitHub refuses a step summary over 1 MiB
_stopped: list[str] = []  # the token that resumes command processing, while it is stopped


def stop_commands(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Inside Actions, stop the runner from reading workflow commands in this process's output,
    until commands_allowed() or the process's exit; whether it did. `stream`: where the harness's
    own commands go (stdout; stderr when stdout carries a JSON document)."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true" or _stopped:
        return False
    out = stream or sys.stdout
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}", file=out, flush=True)
    _stopped.append(token)

    def resume() -> None:
        with contextlib.suppress(OSError, ValueError):
            if _stopped:
                print(f"::{_stopped.pop()}::", file=out, flush=True)

    atexit.register(resume)
    return True


@contextlib.contextmanager
def commands_allowed(emit: Callable[[str], None]) -> Iterator[None]:
    """The runner reads commands again while the harness writes its own (then stops again)."""
    if not _stopped:
        yield
        return
    emit(f"::{_stopped.pop()}::")
    try:
        yield
    finally:
        token = secrets.token_hex(16)
        emit(f"::stop-commands::{token}")
        _stopped.append(token)


def error_annotations(doc: Mapping[str, Any]) -> list[str]:
    """`::error` lines, one per regression against a reference (a baseline or an earlier run);
    without one there is nothing to have regressed from."""
    if not shows_regressions(doc):
        return []
    lines = []
    for r in (doc.get("gate") or {}).get("regressions") or []:
        title = workflow_property(f"harness: {r.get('model')} regressed")
        message = f"{r.get('model')} @ {r.get('cell')}: {r.get('status')} {r.get('exception') or ''} ({r.get('why')})"
        lines.append(f"::error title={title}::{workflow_data(message)}")
    return lines


def report_to_github(doc: Mapping[str, Any], environ: Mapping[str, str] | None = None, emit: Callable[[str], None] = print) -> bool:
    """When GITHUB_ACTIONS is "true": the summary appended, the annotations emitted. Whether it did."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true":
        return False
    summary = environ.get("GITHUB_STEP_SUMMARY")
    shard = (doc.get("run") or {}).get("shard")
    if summary:
        # a shard's report is partial: one line says so, and the merged report (harness merge) is the summary
        text = shard_line(doc, shard) if shard else render_markdown(doc)
        data = text.encode()
        if len(data) > SUMMARY_LIMIT:
            note = "\n\n… (cut at GitHub's 1 MiB limit: the whole report is report.md in the run's artifacts)\n"
            data = data[: SUMMARY_LIMIT - len(note.encode()) - 4].decode("utf-8", "ignore").encode() + note.encode()
        try:
            with Path(summary).open("ab") as handle:
                handle.write(data + b"\n")
        except OSError as exc:
            with commands_allowed(emit):
                emit(f"::warning::{workflow_data(f'harness could not write the step summary: {exc.strerror}')}")
    annotations = [] if shard else error_annotations(doc)  # a shard never decides: the merge annotates
    if annotations:
        with commands_allowed(emit):
            for line in annotations:
                emit(line)
    return True


def shard_line(doc: Mapping[str, Any], shard: Mapping[str, Any]) -> str:
    """A shard's step summary: what it ran, marked partial (its numbers are ints the schema checked)."""
    results = doc.get("results") or []
    loaded = sum(1 for r in results if str(r.get("status", "")).startswith("loaded") and r.get("status") != "loaded-output-mismatch")
    return (
        f"**harness: shard {int(shard.get('index', 0))}/{int(shard.get('count', 0))}** ran {len(results)} results "
        f"({loaded} load) — partial: the merged report is the summary of the job that runs `harness merge`.\n"
    )
