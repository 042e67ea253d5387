"""JUnit XML: a test case per model and cell, for CI test tabs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ..diagnose import FAILED
from . import summary


def render_junit(doc: Mapping[str, Any]) -> str:
    suites = ET.Element("testsuites", name=f"harness {doc['matrix']['name']}")
    contained = summary.containment_text(doc)
    if contained:
        properties = ET.SubElement(suites, "properties")
        ET.SubElement(properties, "property", name="containment", value=contained)
    grouped = summary.results_by_model(doc)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        counts = summary.counts(results)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=model["name"],
            tests=str(len(results)),
            failures=str(sum(counts[s] for s in FAILED)),
            errors=str(counts["infra-error"]),
            skipped=str(counts["skipped"] + counts["unresolvable"]),
        )
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=model["name"], name=r["cell"], time=f"{r.get('seconds') or 0:.3f}")
            message = " · ".join(x for x in (r["status"], summary.exception_label(r), r.get("cause") or "", r.get("fix") or "") if x)
            note = summary.CODE_RAN if r.get("carries_code") else ""
            tried = r.get("attempts") or []
            if len(tried) > 1:
                note = "\n".join(
                    [note] * bool(note)
                    + [f"attempt {a['fix']}: " + ("loaded" if a["ok"] else f"{a['exception']}: {a['message']}") for a in tried]
                )
            body = "\n".join(
                x for x in ((r.get("exception") or {}).get("message", ""), r.get("detail", ""), note, r.get("stderr_tail", "")) if x
            )
            if r["status"] in FAILED:
                ET.SubElement(case, "failure", message=message, type=r["status"]).text = body
            elif r["status"] == "infra-error":
                ET.SubElement(case, "error", message=message, type=r["status"]).text = body
            elif r["status"] in ("skipped", "unresolvable"):
                ET.SubElement(case, "skipped", message=message + (": " + r["detail"] if r.get("detail") else ""))
            elif r["status"] == "loaded-after-fix":
                ET.SubElement(case, "system-out").text = f"loaded only with {r.get('fix_worked')}: {message}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
