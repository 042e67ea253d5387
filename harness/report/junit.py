"""JUnit XML for CI test tabs: a testsuite per model, a testcase per cell.

The cell id is the test's name and the classname is `harness.<matrix>.<model>` with the
model's dots made underscores (consumers split a classname at its dots into package and
class: `residual_block.h5` would read as class `h5` of package `residual_block`). Each
case carries its cell's pins and the installed releases as properties. A failure the gate
accepts (in the baseline or the earlier run, or not counted by --fail-on) is `skipped`
with the reason, so the test tab and the harness's exit code agree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ..diagnose import FAILED
from ..escape import xml
from ..gate import acceptance
from . import summary


def _properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    if pairs:
        properties = ET.SubElement(parent, "properties")
        for name, value in pairs:
            ET.SubElement(properties, "property", name=name, value=value)


def _body(r: Mapping[str, Any]) -> str:
    note = summary.CODE_RAN if r.get("carries_code") else ""
    tried = r.get("attempts") or []
    lines = [note] * bool(note)
    if len(tried) > 1:
        lines += [f"attempt {a['fix']}: {summary.attempt_text(a)}" for a in tried]
    exc = r.get("exception") or {}
    parts = (
        f"{exc.get('type')}: {exc.get('message')}" if exc else "",
        r.get("cause") and f"cause: {r['cause']}",
        r.get("fix") and f"fix: {r['fix']}",
    )
    return "\n".join(x for x in (*parts, r.get("detail", ""), *lines, r.get("stderr_tail", "")) if x)


def render_junit(doc: Mapping[str, Any]) -> str:
    matrix = doc["matrix"]["name"]
    suites = ET.Element("testsuites", name=f"harness {matrix}")
    contained = summary.containment_text(doc)
    _properties(suites, [("containment", contained)] if contained else [])
    cells = summary.cells_by_id(doc)
    grouped = summary.results_by_model(doc)
    started = (doc.get("run") or {}).get("started") or ""
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    accepted_by = acceptance(doc)
    per_cell: dict[str, int] = {}
    for r in doc.get("results", []):
        per_cell[r["cell"]] = per_cell.get(r["cell"], 0) + 1
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        suite = ET.SubElement(suites, "testsuite", name=model["name"])
        if started:
            suite.set("timestamp", iso_timestamp(started))
        _properties(
            suite,
            [(k, str(model[k])) for k in ("sha256", "format", "keras_version") if model.get(k)],
        )
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        seconds = 0.0
        classname = f"harness.{summary.identifier(matrix)}.{summary.identifier(model['name'])}"
        for r in results:
            own = model_seconds(r, per_cell.get(r["cell"], 1))
            seconds += own
            case = ET.SubElement(suite, "testcase", classname=classname, name=r["cell"], time=f"{own:.3f}")
            cell = cells.get(r["cell"], {})
            pins = [(k, str(v)) for k, v in (cell.get("pins") or {}).items() if v is not None]
            pins += [(k, str(cell[k])) for k in ("python", "api") if cell.get(k)]
            pins += [(f"env {k}", str(v)) for k, v in (cell.get("env") or {}).items()]
            pins += [(f"installed {k}", str(v)) for k, v in (r.get("versions") or {}).items()]
            _properties(case, pins)
            message = " · ".join(x for x in (r["status"], summary.exception_label(r), r.get("cause") or "", r.get("fix") or "") if x)
            accepted = accepted_by(r)
            if accepted:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=f"{accepted} ({message})")
                ET.SubElement(case, "system-out").text = _body(r)
            elif r["status"] in FAILED:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=message, type=r["status"]).text = _body(r)
            elif r["status"] == "infra-error":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=message, type=r["status"]).text = _body(r)
            elif r["status"] in ("skipped", "unresolvable"):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=message + (": " + r["detail"] if r.get("detail") else ""))
            elif r["status"] == "loaded-after-fix":
                ET.SubElement(case, "system-out").text = f"loaded only with {r.get('fix_worked')}: {message}"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{seconds:.3f}")
    for key, value in totals.items():
        suites.set(key, str(value))
    _xml_safe(suites)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def model_seconds(r: Mapping[str, Any], models_in_cell: int) -> float:
    """One model's time in its cell: its own load attempts where the probe timed them, else its
    share of the cell's probe run (every model of a cell loads in one run)."""
    own = r.get("load_seconds")
    if isinstance(own, int | float) and not isinstance(own, bool):
        return float(own)
    return float(r.get("seconds") or 0) / max(models_in_cell, 1)


def iso_timestamp(text: str) -> str:
    """ISO 8601 with a colon in the offset (`+00:00`), as JUnit readers parse it; `+0000` is strftime's."""
    import re

    return re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)


def _xml_safe(root: ET.Element) -> None:
    """Every text and attribute of the tree through escape.xml: a character XML forbids (ESC, BEL,
    a lone surrogate) in a model's message would make the file no XML any reader parses."""
    for element in root.iter():
        if element.text:
            element.text = xml(element.text)
        for key, value in element.attrib.items():
            element.set(key, xml(value))
