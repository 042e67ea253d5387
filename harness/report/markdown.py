"""Markdown: a GitHub step summary or PR comment, rendered from the JSON document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..escape import markdown as md
from ..escape import markdown_code as code
from . import summary

ICONS = {
    "loaded": "✅",
    "loaded-after-fix": "🔧",
    "loaded-output-mismatch": "🔀",
    "load-error": "❌",
    "import-error": "💥",
    "unresolvable": "⛔",
    "skipped": "⏭️",
    "timeout": "⏱️",
    "crash": "☠️",
    "infra-error": "🌐",
}


def render_markdown(doc: Mapping[str, Any]) -> str:
    """report.md (and the GitHub step summary): every name and message a model or a document
    controls passes escape.markdown (text) or escape.markdown_code (a code span)."""
    run = doc.get("run", {})
    lines = [f"# Keras load compatibility: {md(doc['matrix']['name'])}", ""]
    contained = summary.containment_text(doc)
    if contained:
        lines += [f"> {'⚠️ **' + md(contained) + '**' if contained.startswith('NOT') else '🔒 ' + md(contained)}", ""]
    infra = summary.infra_text(doc)
    if infra:
        lines += [f"> 🌐 **{md(infra)}**", ""]
    if not run.get("complete"):
        lines += ["> **Partial report**: the run was interrupted; finished cells are shown.", ""]
    gate = doc.get("gate")
    if gate and summary.shows_gate(doc):
        mark = {"nothing tested": "⚠️", "not a pass": "⚠️", "fails": "❌"}.get(summary.gate_verdict(gate), "✅")
        lines += [f"{mark} **{md(summary.gate_text(doc))}**", ""]
        if summary.shows_regressions(doc):
            lines += ["### Regressions", ""]
            lines += [
                f"- {code(r['model'])} @ {code(r['cell'])}: " + md(f"{r['status']} {r.get('exception') or ''} ({r['why']})".replace("  ", " "))
                for r in gate["regressions"]
            ]
            lines.append("")
    news = summary.new_release_text(doc)
    if news:
        lines += [f"🆕 {md(news[0].upper() + news[1:])}", ""]
    runs = (doc.get("history") or {}).get("runs") or []
    grouped = summary.results_by_model(doc)
    cells = summary.cells_by_id(doc)
    lines += overview(doc, grouped)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        lines += [f"## {code(model['name'])}", "", f"**{md(summary.boundary(doc, model['name'], results))}**", "", summary.count_text(results), ""]
        saved = f"saved by Keras {model.get('keras_version') or '?'} ({model.get('format')})"
        extras = [
            f"custom: {', '.join(model['custom'])}" if model.get("custom") else "",
            f"Addons: {', '.join(model['addons'])}" if model.get("addons") else "",
        ]
        lines += [md("; ".join([saved, *[e for e in extras if e]])), ""]
        for risk in model.get("risks", []):
            lines += [f"> ⚠️ {md(risk)}", ""]
        for doubt in model.get("doubts", []):
            lines += [f"> ❔ may be damaged (not certain; every cell still ran): {md(doubt)}", ""]
        for unread in model.get("unread", []):
            lines += [f"> ❔ inspection could not read it ({md(unread)}): its cells ran, each in a sandbox of its own", ""]
        if model.get("carries_code"):
            lines += [f"> ⚠️ {summary.CODE_RAN[0].upper()}{summary.CODE_RAN[1:]}.", ""]
        attr = [r for r in results if r.get("attribute_error")]
        if attr:
            lines += [
                f"**AttributeError** in {len(attr)} cell(s): " + ", ".join(f"{code(r['cell'])} ({md(r.get('attribute') or '?')})" for r in attr),
                "",
            ]
        trend_head = (f" Earlier runs ({len(runs)}) |", "---|") if runs else ("", "")
        lines += [f"| Cell | Status | Exception | Cause | Fix |{trend_head[0]}", f"|---|---|---|---|---|{trend_head[1]}"]
        for r in results:
            status = f"{ICONS.get(r['status'], '')} {r['status']}" + (f" ({md(r['fix_worked'])})" if r.get("fix_worked") else "")
            status += " · cached" if r.get("cached") else ""
            new = " 🆕" if cells.get(r["cell"], {}).get("new") else ""
            earlier = ""
            if runs:
                earlier = (
                    " " + "".join(ICONS.get(t["status"], "?") if t else "·" for t in summary.trend(doc, model["name"], r["cell"])) + " |"
                )
            lines.append(
                f"| {code(r['cell'])}{new} | {status} | {md(summary.failure_text(r))} | {md(r.get('cause') or '')} | {md(r.get('fix') or '')} |{earlier}"
            )
        lines.append("")
    footer = f"harness {doc.get('harness_version')} · backend {run.get('backend')} · started {run.get('started')}"
    lines += [f"<sub>{md(footer)}</sub>", ""]
    return "\n".join(lines)


OVERVIEW_CELLS = 60  # more columns than a page shows: report.html's overview scrolls, a Markdown table would not


def overview(doc: Mapping[str, Any], grouped: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    """The first section: every model against every cell (by number), broken environments said
    as environments, not counted against the models."""
    ids = [c["id"] for c in doc.get("cells", []) if any(r["cell"] == c["id"] for r in doc.get("results", []))]
    if not ids or not doc.get("models"):
        return []
    broken = summary.broken_cells(doc)
    lines = ["## Every model in every environment", ""]
    if len(ids) > OVERVIEW_CELLS:
        return [*lines, f"{len(ids)} cells: more than one table shows; report.html's overview has them all.", ""]
    lines += ["| Model | " + " | ".join(str(n) for n in range(1, len(ids) + 1)) + " |", "|---|" + "---|" * len(ids)]
    for model in doc["models"]:
        at = {r["cell"]: r for r in grouped.get(model["name"], [])}
        marks = [ICONS.get(at[c]["status"], "?") if c in at else " " for c in ids]
        lines.append(f"| {code(model['name'])} | " + " | ".join(marks) + " |")
    lines.append("")
    for n, cell in enumerate(ids, 1):
        note = f" — environment broken ({md(broken[cell].split(' → ')[-1])}): the framework does not import; not counted against the models" if cell in broken else ""
        lines.append(f"{n}. {code(cell)}{note}")
    legend = " · ".join(f"{ICONS[s]} {s}" for s in ICONS if any(r["status"] == s for r in doc.get("results", [])))
    return [*lines, "", legend, ""]
