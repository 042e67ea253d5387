"""Markdown: a GitHub step summary or PR comment, rendered from the JSON document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import summary

ICONS = {
    "loaded": "✅",
    "loaded-after-fix": "🔧",
    "load-error": "❌",
    "import-error": "💥",
    "unresolvable": "⛔",
    "skipped": "⏭️",
    "timeout": "⏱️",
    "crash": "☠️",
    "infra-error": "🌐",
}


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Mapping[str, Any]) -> str:
    run = doc.get("run", {})
    lines = [f"# Keras load compatibility: {doc['matrix']['name']}", ""]
    contained = summary.containment_text(doc)
    if contained:
        lines += [f"> {'⚠️ **' + contained + '**' if contained.startswith('NOT') else '🔒 ' + contained}", ""]
    infra = summary.infra_text(doc)
    if infra:
        lines += [f"> 🌐 **{infra}**", ""]
    if not run.get("complete"):
        lines += ["> **Partial report**: the run was interrupted; finished cells are shown.", ""]
    gate = doc.get("gate")
    if gate and summary.shows_gate(doc):
        mark = {"nothing tested": "⚠️", "not a pass": "⚠️", "fails": "❌"}.get(summary.gate_verdict(gate), "✅")
        lines += [f"{mark} **{summary.gate_text(doc)}**", ""]
        if summary.shows_regressions(doc):
            lines += ["### Regressions", ""]
            lines += [
                f"- `{r['model']}` @ `{r['cell']}`: {r['status']} {r.get('exception') or ''} ({r['why']})".replace("  ", " ")
                for r in gate["regressions"]
            ]
            lines.append("")
    news = summary.new_release_text(doc)
    if news:
        lines += [f"🆕 {news[0].upper()}{news[1:]}", ""]
    runs = (doc.get("history") or {}).get("runs") or []
    grouped = summary.results_by_model(doc)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        lines += [f"## `{model['name']}`", "", f"**{summary.boundary(doc, model['name'], results)}**", "", summary.count_text(results), ""]
        saved = f"saved by Keras {model.get('keras_version') or '?'} ({model.get('format')})"
        extras = [
            f"custom: {', '.join(model['custom'])}" if model.get("custom") else "",
            f"Addons: {', '.join(model['addons'])}" if model.get("addons") else "",
        ]
        lines += ["; ".join([saved, *[e for e in extras if e]]), ""]
        for risk in model.get("risks", []):
            lines += [f"> ⚠️ {risk}", ""]
        for doubt in model.get("doubts", []):
            lines += [f"> ❔ may be damaged (not certain; every cell still ran): {doubt}", ""]
        if model.get("carries_code"):
            lines += [f"> ⚠️ {summary.CODE_RAN[0].upper()}{summary.CODE_RAN[1:]}.", ""]
        attr = [r for r in results if r.get("attribute_error")]
        if attr:
            lines += [
                f"**AttributeError** in {len(attr)} cell(s): " + ", ".join(f"`{r['cell']}` ({r.get('attribute') or '?'})" for r in attr),
                "",
            ]
        cells = summary.cells_by_id(doc)
        trend_head = (f" Earlier runs ({len(runs)}) |", "---|") if runs else ("", "")
        lines += [f"| Cell | Status | Exception | Cause | Fix |{trend_head[0]}", f"|---|---|---|---|---|{trend_head[1]}"]
        for r in results:
            status = f"{ICONS.get(r['status'], '')} {r['status']}" + (f" ({r['fix_worked']})" if r.get("fix_worked") else "")
            status += " · cached" if r.get("cached") else ""
            new = " 🆕" if cells.get(r["cell"], {}).get("new") else ""
            earlier = ""
            if runs:
                earlier = (
                    " " + "".join(ICONS.get(t["status"], "?") if t else "·" for t in summary.trend(doc, model["name"], r["cell"])) + " |"
                )
            lines.append(
                f"| `{r['cell']}`{new} | {status} | {_cell(summary.failure_text(r))} | {_cell(r.get('cause'))} | {_cell(r.get('fix'))} |{earlier}"
            )
        lines.append("")
    lines += [f"<sub>harness {doc.get('harness_version')} · backend {run.get('backend')} · started {run.get('started')}</sub>", ""]
    return "\n".join(lines)
