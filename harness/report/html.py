"""A self-contained HTML page: a grid per model, a colour per status, details on click.

No CDN, no external file: styles, script and data are inline, so the page opens from
a CI artifact or an air-gapped laptop.
"""

from __future__ import annotations

import functools
from collections import Counter
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


def _details(doc: Mapping[str, Any], r: Mapping[str, Any], cell: Mapping[str, Any], runs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What the details panel shows for one result, as plain strings: the page's script puts them
    in with textContent (a cell's message is never markup), and the page carries them as JSON
    rather than as a hidden block of HTML per result (a fifth of the size, and no DOM to build
    until a tile is opened)."""
    terms: list[tuple[str, str]] = [("Model", r["model"])]
    status = r["status"] + (f" (with {r['fix_worked']})" if r.get("fix_worked") else "")
    terms.append(("Status", status + (" · from the result store (nothing changed since it ran)" if r.get("cached") else "")))
    exc = r.get("exception") or {}
    if exc:
        terms.append(("Exception", summary.exception_label(r) + (f" · missing attribute {r['attribute']}" if r.get("attribute") else "")))
    if r.get("cause"):
        terms.append(("Cause", r["cause"] + (f" ({r['missing_name']})" if r.get("missing_name") else "")))
    if r.get("fix"):
        terms.append(("Fix", r["fix"]))
    if r.get("fixes_tried"):
        worked = f": {r['fix_worked']} worked" if r.get("fix_worked") else ": none worked"
        terms.append(("Fixes tried", ", ".join(r["fixes_tried"]) + worked))
    attempts = r.get("attempts") or []
    if len(attempts) > 1:
        lines = []
        for n, a in enumerate(attempts, 1):
            lines.append(f"{n}. {a.get('fix')}: {summary.attempt_text(a)}")
        terms.append(("Attempts", "\n".join(lines)))
    if r.get("detail"):
        terms.append(("Detail", str(r["detail"])))
    diff = r.get("output_diff") or {}
    if diff.get("max_abs") is not None:
        terms.append(
            ("Outputs", f"vs {diff.get('reference')}: max abs diff {diff['max_abs']:.3g}, max rel diff {diff.get('max_rel') or 0:.3g}")
        )
    if r.get("worker"):
        terms.append(("Ran on", f"{r['worker']} (Ray worker)"))
    terms.append(("Versions", ", ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items())))
    if cell.get("env"):
        terms.append(("Environment variables", " ".join(f"{k}={v}" for k, v in cell["env"].items())))
    if runs:
        earlier = summary.trend(doc, r["model"], r["cell"])
        terms.append(
            (
                "Earlier runs",
                " · ".join(
                    f"run {h.get('id')}: " + (f"{t['status']}" + (f" ({t['exception']})" if t.get("exception") else "") if t else "—")
                    for h, t in zip(runs, earlier, strict=False)  # a trend is as long as the runs it was read from
                ),
            )
        )
    if cell.get("new"):
        versions = " ".join(f"{k} {v}" for k, v in (cell.get("new_versions") or {}).items())
        terms.append(("New", "not in any earlier run of this matrix" + (f": {versions}" if versions else "")))
    if cell.get("overridden"):
        terms.append(("Resolution", "override: the axis pins won over declared requirements"))
    blocks: list[tuple[str, str]] = []
    if exc:
        blocks.append(("Message", f"{exc.get('type')}: {exc.get('message')}"))
        for c in exc.get("chain") or []:
            blocks.append(("Caused by", f"{c.get('type')}: {c.get('message')}"))
        frames = exc.get("frames") or []
        if frames:
            text = "".join(f"{f.get('file')}:{f.get('line')} in {f.get('function')}\n    {f.get('code')}\n" for f in frames)
            blocks.append(("Traceback (framework frames)", text))
    if r.get("stderr_tail"):
        blocks.append(("stderr (tail)", str(r["stderr_tail"])))
    return {"title": r["cell"], "terms": terms, "blocks": blocks}


GLYPHS = {  # as the terminal's overview draws them (commands/common.py): a glyph beside the colour
    "loaded": "✓",
    "loaded-after-fix": "◐",
    "loaded-output-mismatch": "≠",
    "load-error": "✗",
    "import-error": "!",
    "timeout": "⧗",
    "crash": "†",
    "unresolvable": "?",
    "skipped": "–",
    "infra-error": "~",
}


def render_html(doc: Mapping[str, Any]) -> str:
    cells = summary.cells_by_id(doc)
    runs = (doc.get("history") or {}).get("runs") or []
    details: list[dict[str, Any]] = []
    statuses: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    models = []
    grouped = summary.results_by_model(doc)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        grid = summary.variant_grid(doc, model["name"], results)
        tiles: dict[int, int] = {}  # id(result) -> its index in the details
        for r in results:
            tiles[id(r)] = len(details)
            details.append(_details(doc, r, cells.get(r["cell"], {}), runs))
        statuses += summary.counts(results)
        causes.update(r["cause"] for r in results if r.get("cause"))
        models.append(
            {
                "info": model,
                "dom": summary.identifier(model["name"]),
                "boundary": summary.boundary(doc, model["name"], results),
                "counts": summary.count_text(results),
                "grid": grid,
                "tiles": tiles,
                "failures": summary.failure_groups(results),
                "attribute_errors": [r for r in results if r.get("attribute_error")],
            }
        )
    # the first screen: every model against every environment, each result a tile of the same details
    broken = summary.broken_cells(doc)
    ordered = [c["id"] for c in doc.get("cells", []) if any(r["cell"] == c["id"] for r in doc.get("results", []))]
    overview = {
        "cells": [{"id": c, "broken": broken.get(c, "").split(" → ")[-1] if c in broken else None} for c in ordered],
        "at": {(m["info"]["name"], r["cell"]): (r, m["tiles"][id(r)]) for m in models for r in grouped.get(m["info"]["name"], [])},
    }
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            doc=doc,
            overview=overview,
            glyphs=GLYPHS,
            models=models,
            cells=cells,
            details=details,
            statuses=[(s, statuses[s]) for s in STATUSES if s in statuses],
            all_statuses=STATUSES,
            causes=sorted(causes.items()),
            label=summary.exception_label,
            gate_text=summary.gate_text(doc),
            gate_verdict=summary.gate_verdict(doc.get("gate") or {}),
            shows_gate=summary.shows_gate(doc),
            containment=summary.containment_text(doc),
            infra=summary.infra_text(doc),
            code_ran=summary.CODE_RAN,
            news=summary.new_release_text(doc),
            history_runs=runs,
            trend=lambda model, cell: summary.trend(doc, model, cell),
            id=id,
        )
    )
