"""CI gating: which outcomes make the exit code 1, measured against accepted outcomes.

A baseline file (written by `harness baseline`) records the accepted outcome of every
(model, cell). `--fail-on` decides what fails the run:

- `any`: any cell that fails to load (the default without a baseline);
- `regression`: a failure the reference did not accept: a cell that loaded (or was never
  tried) and now fails, or a cell the reference has never seen (a new release) that
  fails. The reference is the baseline file, else the newest earlier run of the same
  matrix in the store; with neither, every failure counts (and the report says how to
  accept the current outcomes). The default with a baseline, and for scheduled runs;
- `attribute-error`: any cell where an AttributeError was raised or printed;
- `none`: never (shards of a sharded run; the merge decides).

A failure the reference accepted stays accepted even when its exception type changes;
`harness diff` shows such changes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .diagnose import FAILED, NOT_TRIED, exception_type
from .errors import UsageError
from .outcomes import broken_environments

FAIL_ON = ("regression", "any", "attribute-error", "none")
BASELINE_SCHEMA = "harness-baseline"


def default_fail_on(baseline: Path | None) -> str:
    return "regression" if baseline else "any"


def write_baseline(doc: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Accept every outcome of a results document (run or merge) as it is."""
    accepted: dict[str, dict[str, Any]] = {}
    for r in sorted(doc.get("results", []), key=lambda r: (r["model"], r["cell"])):
        accepted.setdefault(r["model"], {})[r["cell"]] = {
            "status": r["status"],
            "exception": exception_type(r),
            "cause": r.get("cause"),
        }
    baseline = {
        "schema": BASELINE_SCHEMA,
        "schema_version": 1,
        "matrix": doc["matrix"]["name"],
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "from_run": doc.get("run", {}).get("started"),
        "models": {m["name"]: m.get("sha256") for m in doc.get("models", [])},
        "cells": {c["id"]: c.get("pins", {}) for c in doc.get("cells", [])},
        "accepted": accepted,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return baseline


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, read bounded and checked against its schema (schema.check_baseline)."""
    from .schema import load_baseline as read

    return read(path)


def outcomes_of(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results as the baseline's `accepted` mapping (model -> cell -> outcome)."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        out.setdefault(r["model"], {})[r["cell"]] = {"status": r["status"], "exception": exception_type(r)}
    return out


def regressions(results: Sequence[Mapping[str, Any]], accepted: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Failures the accepted outcomes do not cover (all failures when there is no reference)."""
    found = []
    for r in results:
        if r["status"] not in FAILED:
            continue
        before = (accepted or {}).get(r["model"], {}).get(r["cell"])
        if before is not None and before["status"] in FAILED:
            continue  # an accepted failure
        if accepted is None:
            why = "no reference to compare with"
        elif before is None:
            why = "new cell: not in the reference"
        else:
            why = f"was {before['status']}"
        found.append(
            {
                "model": r["model"],
                "cell": r["cell"],
                "status": r["status"],
                "exception": exception_type(r),
                "cause": r.get("cause"),
                "why": why,
            }
        )
    return sorted(found, key=lambda x: (x["model"], x["cell"]))


def evaluate(
    doc: Mapping[str, Any], fail_on: str, accepted: Mapping[str, Mapping[str, Any]] | None, reference: str | None
) -> dict[str, Any]:
    """The gate's verdict, kept in the results document so every report can show it."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on}: choose one of {', '.join(FAIL_ON)}")
    results = doc.get("results", [])
    failures = [r for r in results if r["status"] in FAILED]
    attribute = [r for r in results if r.get("attribute_error")]
    regressed = regressions(results, accepted)
    counted = {"any": failures, "regression": regressed, "attribute-error": attribute, "none": []}[fail_on]
    # one result per (model, cell): say both, so 28 failures over 8 cells never read as 28 cells
    one, many, none = {
        "any": ("failed result", "failed results", "no failed result"),
        "regression": ("regression", "regressions", "no regression"),
        "attribute-error": ("result with an AttributeError", "results with an AttributeError", "no AttributeError"),
        "none": ("", "", ""),
    }[fail_on]
    untested = all(r["status"] in NOT_TRIED for r in results)
    # cells skipped because their Python is not here were not tested: never a pass (exit 5 unless something failed)
    skipped = sorted({r["cell"] for r in results if r["status"] == "skipped"})
    if untested:
        kinds = Counter(r["status"] for r in results)
        reason = "no cell was tested" + (f" ({', '.join(f'{n} {s}' for s, n in sorted(kinds.items()))})" if kinds else "")
    elif fail_on == "none":
        reason = "--fail-on none: the exit code ignores load failures"
    elif counted:
        # a cell whose framework never imported is one broken environment, not a failure of every model in it
        broken = broken_environments(list(results))
        models = [r for r in counted if r["cell"] not in broken]
        cells = len({r["cell"] for r in models})
        parts = [f"{len(models)} {one if len(models) == 1 else many} in {cells} cell{'s' if cells != 1 else ''}"] if models else []
        in_broken = len(counted) - len(models)
        if in_broken:
            parts.append(f"{len(broken & {r['cell'] for r in counted})} broken environment(s) ({in_broken} results)")
        reason = " and ".join(parts)
    elif skipped:
        why = next((str(r.get("detail") or "") for r in results if r["status"] == "skipped" and r.get("detail")), "")
        reason = f"{len(skipped)} cell{'s' if len(skipped) != 1 else ''} not tested" + (f": {why}" if why else "")
    else:
        reason = none
    return {
        "fail_on": fail_on,
        "reference": reference,
        "regressions": regressed,
        "failures": len(failures),
        "attribute_errors": len(attribute),
        "failed": bool(counted),
        "untested": untested,  # nothing ran a model: never "passes" (exit code 5)
        "not_tested": skipped,  # cells skipped (their Python is missing): not a pass either, unless something failed
        "reason": reason,
    }


def acceptance(doc: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], str | None]:
    """For a result: why the gate lets it pass although it failed, or None. The JUnit file reports
    such a result as skipped with this reason, so a CI test tab and the harness's exit code agree.
    (The regressions are read once, not once per result.)"""
    gate = doc.get("gate") or {}
    fail_on = gate.get("fail_on")
    regressed = {(r["model"], r["cell"]) for r in gate.get("regressions") or []}

    def reason(result: Mapping[str, Any]) -> str | None:
        if result["status"] not in FAILED or not gate:
            return None
        if fail_on == "none":
            return "accepted: --fail-on none ignores load failures"
        if fail_on == "attribute-error" and not result.get("attribute_error"):
            return "accepted: --fail-on attribute-error counts AttributeErrors only"
        if fail_on == "regression" and gate.get("reference") and (result["model"], result["cell"]) not in regressed:
            return f"accepted: it failed in {gate['reference']} too"
        return None

    return reason
