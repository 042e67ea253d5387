"""A self-contained HTML page: a grid per model, a colour per status, details on click.

No CDN, no external file: styles, script and data are inline, so the page opens from
a CI artifact or an air-gapped laptop.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import jinja2

from ..diagnose import STATUSES
from ..paths import cache_dir
from . import summary


@functools.cache
def _environment() -> jinja2.Environment:
    """The page's templates, compiled once per template version: the compiled code is kept
    in the cache folder (jinja2 checks it against the template's source), which takes a
    re-run's report from ~80 ms of compiling to a read."""
    compiled = cache_dir() / "jinja"
    try:
        compiled.mkdir(parents=True, exist_ok=True)
        bytecode: jinja2.BytecodeCache | None = jinja2.FileSystemBytecodeCache(str(compiled))
    except OSError:
        bytecode = None  # a cache that cannot be written is only slower
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=bytecode,
    )


def _dom_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def render_html(doc: Mapping[str, Any]) -> str:
    models = []
    grouped = summary.results_by_model(doc)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        axis, rows, columns, table = summary.grid(doc, model["name"], results)
        models.append(
            {
                "info": model,
                "dom": _dom_id(model["name"]),
                "boundary": summary.boundary(doc, model["name"], results),
                "counts": summary.count_text(results),
                "axis": axis,
                "rows": rows,
                "columns": columns,
                "table": table,
                "results": results,
                "attribute_errors": [r for r in results if r.get("attribute_error")],
            }
        )
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            doc=doc,
            models=models,
            cells=summary.cells_by_id(doc),
            statuses=STATUSES,
            label=summary.exception_label,
            failure=summary.failure_text,
            dom_id=_dom_id,
            gate_text=summary.gate_text(doc),
            containment=summary.containment_text(doc),
            infra=summary.infra_text(doc),
            code_ran=summary.CODE_RAN,
            news=summary.new_release_text(doc),
            history_runs=(doc.get("history") or {}).get("runs") or [],
            trend=lambda model, cell: summary.trend(doc, model, cell),
        )
    )
