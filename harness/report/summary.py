"""Facts every report shows, computed from the canonical JSON document (pure)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from ..diagnose import FAILED, LOADS, NOT_TRIED
from ..diagnose import STATUSES as STATUS_ORDER
from ..outcomes import MISMATCH, NOT_RUN, broken_environments

Doc = Mapping[str, Any]
Result = Mapping[str, Any]


CODE_RAN = "code in this file ran during load; its outcome is what that code allowed"


def containment_text(doc: Doc) -> str:
    """How the cells were contained, in words: every report says it first."""
    run = doc.get("run") or {}
    box = run.get("sandbox")
    if box == "none":
        why = str(run.get("sandbox_note") or "not sandboxed").removeprefix("not sandboxed: ")
        return f"NOT SANDBOXED: model files ran with this user's access to the machine ({why})"
    if box == "bwrap":
        return "cells ran sandboxed (bubblewrap: no network, read-only file system but a capped scratch, own PIDs, limits)"
    if box == "docker":
        return "cells ran sandboxed (Docker: no network, read-only root, no capabilities, tmpfs scratch, limits)"
    return ""


def cells_by_id(doc: Doc) -> dict[str, Mapping[str, Any]]:
    return {c["id"]: c for c in doc.get("cells", [])}


def results_for(doc: Doc, model: str) -> list[Result]:
    """A model's results in version order of the primary axis (an include added at the end of
    the matrix still sorts in its place), then in the matrix's order."""
    return results_by_model(doc, [model]).get(model, [])


def results_by_model(doc: Doc, models: Sequence[str] | None = None) -> dict[str, list[Result]]:
    """results_for every model (or those named) in one pass: a renderer asks once, not once per
    model and section (20 models x 1,000 cells re-sorted 60 times was most of the HTML's time)."""
    cells = doc.get("cells", [])
    order = {c["id"]: i for i, c in enumerate(cells)}
    axis = primary_axis(doc)
    version = {c["id"]: _version(str((c.get("pins") or {}).get(axis) or "0")) for c in cells} if axis else {}
    wanted = set(models) if models is not None else None
    grouped: dict[str, list[Result]] = {}
    for r in doc.get("results", []):
        if wanted is None or r["model"] in wanted:
            grouped.setdefault(r["model"], []).append(r)
    zero = Version("0")
    for results in grouped.values():
        results.sort(key=lambda r: (version.get(r["cell"], zero), order.get(r["cell"], 1 << 30)))
    return grouped


def counts(results: Sequence[Result]) -> Counter[str]:
    return Counter(r["status"] for r in results)


def exception_label(result: Result) -> str:
    """`AttributeError`, `ValueError`, or `AttributeError → TypeError` when one was printed on the way."""
    exc = result.get("exception") or {}
    kind = exc.get("type")
    if result.get("attribute_error") and kind != "AttributeError":
        return f"AttributeError → {kind}" if kind else "AttributeError"
    return kind or ""


def attempt_text(attempt: Mapping[str, Any]) -> str:
    """One load attempt's outcome as the reports list it: an attempt that went through with a
    stand-in or only through the serving signature says so (neither is the model loading)."""
    if attempt.get("ok"):
        if attempt.get("standin"):
            return "loaded with a stand-in (not counted as loaded)"
        if attempt.get("serving"):
            return "its serving signature answered (inference only, not counted as loaded)"
        return "loaded"
    message = attempt.get("message")
    return (attempt.get("exception") or "failed") + (f": {message}" if message else "")


def failure_text(result: Result, limit: int = 160) -> str:
    """The exception label and the first line of its message: what a user reads first."""
    label = exception_label(result)
    message = str((result.get("exception") or {}).get("message") or "").strip().splitlines()
    first = message[0] if message else ""
    detail = str(result.get("detail") or "")
    if not label and not first and detail.startswith(NOT_RUN):  # loaded, asked to answer, and did not: said where its error would be
        first = detail.splitlines()[0]
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return f"{label}: {first}" if label and first else label or first


def primary_axis(doc: Doc) -> str | None:
    """The axis the boundary sentence follows: tensorflow if it varies, else the first that does."""
    axes: dict[str, set[str]] = {}
    for cell in doc.get("cells", []):
        for name, version in cell.get("pins", {}).items():
            if version is not None:
                axes.setdefault(name, set()).add(version)
    varying = [name for name, versions in axes.items() if len(versions) > 1]
    if "tensorflow" in varying:
        return "tensorflow"
    return varying[0] if varying else next(iter(axes), None)


def _version(text: str) -> Any:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def boundary(doc: Doc, model: str, results: Sequence[Result] | None = None) -> str:
    """Where the model loads, in words: "loads up to tensorflow 2.15.1; fails from 2.16.1 on (...)".

    The headline is about the plain cells only (no extra package, no env, the default API):
    a tf-keras legacy variant that loads never makes "loads with tensorflow 2.16.2" true.
    Each variant gets its own sentence after it. `results`: results_for(doc, model), when the
    caller has them.
    """
    results = results_for(doc, model) if results is None else results
    axis = primary_axis(doc)
    cells = cells_by_id(doc)
    # a cell whose environment does not import the framework says nothing about the model: not counted against it
    broken = [r for r in results if r["status"] == BROKEN]
    tried = [r for r in results if r["status"] not in NOT_TRIED and r["status"] != BROKEN]
    aside = f"; not counted: {_cells_text([r['cell'] for r in broken])}, where the framework does not import" if broken else ""
    if not tried:
        return f"no cell could be tried ({_count_text(counts(results))})" + (" (the environment is broken)" if broken else "")
    groups: dict[tuple[Any, ...], list[Result]] = {}
    for r in tried:
        groups.setdefault(_variant(cells.get(r["cell"], {}), axis), []).append(r)
    order = sorted(groups, key=lambda key: (key[0], _backend_rank(key), key))
    head = _sentence(groups[order[0]], axis, cells)
    if _backend(order[0]):  # Keras 3 backends side by side: each named, the first too ("on tensorflow: loads ...")
        head = f"{_variant_label(order[0])}: {head}"
    others = [f"{_variant_label(key)}: {_sentence(groups[key], axis, cells)}" for key in order[1:]]
    return "; ".join([head, *others]) + aside


BACKEND_ORDER = ("tensorflow", "jax", "torch")


def _backend(key: tuple[Any, ...]) -> str | None:
    """The Keras 3 backend a variant's cells set (keras-backend axis), or None."""
    return dict(key[2]).get("KERAS_BACKEND") if key[3] == "keras" else None


def _backend_rank(key: tuple[Any, ...]) -> int:
    backend = _backend(key)
    return BACKEND_ORDER.index(backend) if backend in BACKEND_ORDER else len(BACKEND_ORDER)


BROKEN = "import-error"  # the environment's framework does not import: the cell, not the model


def _cells_text(ids: Sequence[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{len(ids)} cells ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"


def broken_cells(doc: Doc) -> dict[str, str]:
    """{cell id: what its environment raised} for cells where the framework never imported
    (outcomes.broken_environments): environments, not model failures."""
    results = list(doc.get("results", []))
    broken = broken_environments(results)
    first: dict[str, str] = {}
    for r in results:
        if r["cell"] in broken and r["status"] == BROKEN:
            first.setdefault(r["cell"], exception_label(r) or "import-error")
    return first


def _variant(cell: Mapping[str, Any], axis: str | None) -> tuple[Any, ...]:
    """What sets a cell apart from a plain one besides the primary axis; plain sorts first."""
    pins = cell.get("pins") or {}
    extra = tuple(sorted(k for k, v in pins.items() if v is not None and k not in (axis, "python")))
    env = tuple(sorted((cell.get("env") or {}).items()))
    api = cell.get("api") or "tf.keras"
    override = bool(cell.get("overridden"))
    return (len(extra) + len(env) + (api != "tf.keras") + override, extra, env, api, override)


def _variant_label(key: tuple[Any, ...]) -> str:
    """"with tf-keras, TF_USE_LEGACY_KERAS=1"; a Keras 3 backend's cells "on jax" (with what else sets them apart)."""
    _, extra, env, api, override = key
    backend = _backend(key)
    parts = [*extra, *(f"{k}={v}" for k, v in env if not (backend and k == "KERAS_BACKEND"))]
    if api != "tf.keras" and not backend:
        parts.append(f"api {api}")
    if override:
        parts.append("override")
    if backend:
        return f"on {backend}" + (", with " + ", ".join(parts) if parts else "")
    return "with " + ", ".join(parts)


def _sentence(tried: Sequence[Result], axis: str | None, cells: Mapping[str, Mapping[str, Any]]) -> str:
    if axis is None:
        loaded = [r for r in tried if r["status"] in LOADS]
        return f"loads in {len(loaded)} of {len(tried)} cells tried" + _why([r for r in tried if r["status"] not in LOADS])
    by_version: dict[str, list[Result]] = {}
    for r in tried:
        version = cells.get(r["cell"], {}).get("pins", {}).get(axis)
        if version is not None:
            by_version.setdefault(version, []).append(r)
    versions = sorted(by_version, key=_version)
    if not versions:
        return f"{axis} is not pinned in any cell tried"
    loads = [any(r["status"] in LOADS for r in by_version[v]) for v in versions]
    failing = [r for r in tried if r["status"] not in LOADS]
    fixes = sorted({r["fix_worked"] for r in tried if r["status"] == "loaded-after-fix"})
    with_fix = f", with {' or '.join(fixes)}" if fixes else ""
    why = _why(failing)
    if len(versions) == 1:
        if not loads[0] and failing and all(r["status"] == MISMATCH for r in failing):  # it loads; its answers are what fail
            return f"loads with {axis} {versions[0]}{with_fix}, but {_answers(failing[0])}{_why(failing, answers=False)}"
        return f"loads with {axis} {versions[0]}{with_fix}" if loads[0] else f"fails with {axis} {versions[0]}{why}"
    if all(loads):
        partly = " (not in every cell: " + why.strip(" ()") + ")" if failing else ""
        return f"loads with every {axis} release tried ({_span(versions)}){with_fix}{partly}"
    if not any(loads):
        return f"fails with every {axis} release tried ({_span(versions)}){why}"
    first_fail = loads.index(False)
    if all(loads[:first_fail]) and not any(loads[first_fail:]):
        return f"loads up to {axis} {versions[first_fail - 1]}{with_fix}; fails from {versions[first_fail]} on{why}"
    first_load = loads.index(True)
    if not any(loads[:first_load]) and all(loads[first_load:]):
        return f"fails up to {axis} {versions[first_load - 1]}; loads from {versions[first_load]} on{with_fix}{why}"
    ok = [v for v, good in zip(versions, loads, strict=True) if good]
    bad = [v for v, good in zip(versions, loads, strict=True) if not good]
    return f"loads with {axis} {', '.join(ok)}{with_fix}; fails with {', '.join(bad)}{why}"


def _span(versions: Sequence[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]} to {versions[-1]}"


def _answers(r: Result) -> str:
    """"answers differently from tensorflow: max abs diff 0.4" for a loaded-output-mismatch."""
    diff = r.get("output_diff") or {}
    than = diff.get("backend") or diff.get("reference") or "the reference"
    largest = diff.get("max_abs")
    return f"answers differently from {than}" + (f": max abs diff {largest:.3g}" if isinstance(largest, int | float) else ": shapes differ")


def _why(failing: Sequence[Result], answers: bool = True) -> str:
    kinds = []
    if any(r.get("attribute_error") for r in failing):
        kinds.append("AttributeError")
    for r in failing:
        if answers and r["status"] == MISMATCH and _answers(r) not in kinds:
            kinds.append(_answers(r))
            continue
        exc = (r.get("exception") or {}).get("type") or (r["status"] if r["status"] in ("timeout", "crash") else None)
        if exc and exc not in kinds:
            kinds.append(exc)
    causes: list[str] = []
    for r in failing:
        if r.get("cause") and r["cause"] not in causes:
            causes.append(r["cause"])
    said = ", ".join(kinds) + ("; " if kinds and causes else "") + ("cause: " + ", ".join(causes) if causes else "")
    return f" ({said})" if said else ""


def _count_text(counter: Counter[str]) -> str:
    return ", ".join(f"{counter[s]} {s}" for s in STATUS_ORDER if counter.get(s))


def count_text(results: Sequence[Result]) -> str:
    return _count_text(counts(results))


def failed(doc: Doc) -> list[Result]:
    return [r for r in doc.get("results", []) if r["status"] in FAILED]


def infra_text(doc: Doc) -> str | None:
    """Results the infrastructure decided (index, network, disk, images), never the model: said first."""
    infra = [r for r in doc.get("results", []) if r["status"] == "infra-error"]
    if not infra:
        return None
    first = next((str(r.get("detail") or "").strip().splitlines() for r in infra if r.get("detail")), [""])
    reason = first[0][:300] if first else ""
    return f"{len(infra)} result(s) not tested because of the infrastructure, not the model" + (f": {reason}" if reason else "")


def new_cells(doc: Doc) -> list[Mapping[str, Any]]:
    return [c for c in doc.get("cells", []) if c.get("new")]


def new_release_text(doc: Doc) -> str | None:
    """ "new since the last run: tensorflow 2.22.0; numpy 2.4.0 (3 cells)", or None."""
    fresh = new_cells(doc)
    if not fresh:
        return None
    releases = (doc.get("history") or {}).get("new_releases") or {}
    if releases:
        what = "; ".join(f"{axis} {', '.join(versions)}" for axis, versions in releases.items())
        return f"new releases since the last run: {what} ({len(fresh)} new cell{'s' if len(fresh) != 1 else ''})"
    return f"cells not in any earlier run: {', '.join(c['id'] for c in fresh)}"


def trend(doc: Doc, model: str, cell: str) -> list[Mapping[str, Any] | None]:
    """The cell's outcomes in earlier runs, oldest first (None: the cell was not in that run)."""
    return list(((doc.get("history") or {}).get("trend") or {}).get(model, {}).get(cell, []))


def gate_text(doc: Doc) -> str | None:
    gate = doc.get("gate")
    if not gate:
        return None
    against = f" against {gate['reference']}" if gate.get("reference") and gate.get("fail_on") == "regression" else ""
    verdict = gate_verdict(gate)
    if not gate.get("given", True):  # the default gate: do not name an option the user never passed
        return f"{verdict}: {gate['reason']}{against}"
    return f"--fail-on {gate['fail_on']}: {verdict} ({gate['reason']}{against})"


def gate_verdict(gate: Mapping[str, Any]) -> str:
    """"nothing tested", "fails", "not a pass" (nothing failed, some cells not tested) or "passes"."""
    if gate.get("untested"):
        return "nothing tested"
    if gate.get("failed"):
        return "fails"
    return "not a pass" if gate.get("not_tested") else "passes"


def shows_gate(doc: Doc) -> bool:
    """Whether a report states the gate: always, but for --fail-on none when everything was tested."""
    gate = doc.get("gate") or {}
    return bool(gate) and (gate.get("fail_on") != "none" or gate_verdict(gate) in ("nothing tested", "not a pass"))


def identifier(text: str) -> str:
    """`text` with every character but letters, digits, _ and - made _: an HTML id, a JUnit class name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def shows_regressions(doc: Doc) -> bool:
    """A Regressions list only means something against a reference (a baseline or an earlier run)."""
    gate = doc.get("gate") or {}
    return bool(gate.get("regressions") and gate.get("reference") and gate.get("fail_on") in ("regression", "any"))


def column_key(cell_id: str, axis: str | None, version: str | None) -> str:
    """A cell's id without the primary axis (the id-derived column, used where pins cannot tell cells apart)."""
    if not axis or version is None:
        return cell_id
    return cell_id.replace(f"-{axis}{version}", "", 1)  # ids start with the python part


@dataclass(frozen=True)
class Grid:
    """A model's grid: rows are releases of the primary axis, columns the variants that have cells.

    A variant is what sets a cell apart besides the primary axis: the extra packages, env,
    api, resolution override, and the Python or a package release only where it varies
    within a row. A companion that moves with the row (tf-keras 2.16 beside TensorFlow 2.16)
    is one column, "tf-keras", with its release in the tile, not a column per release.
    """

    axis: str | None
    rows: list[str]
    columns: list[str]
    slots: dict[tuple[str, str], list[Result]]
    companions: dict[str, str]  # cell id -> "tf-keras 2.16.0" (the versions not in its column's name)


def variant_grid(doc: Doc, model: str, results: Sequence[Result] | None = None) -> Grid:
    axis = primary_axis(doc)
    cells = cells_by_id(doc)
    results = results_for(doc, model) if results is None else results

    def row_of(cell: Mapping[str, Any]) -> str:
        version = (cell.get("pins") or {}).get(axis) if axis else None
        return str(version) if version is not None else "—"

    def pinned(cell: Mapping[str, Any]) -> dict[str, str]:
        pins = {k: str(v) for k, v in (cell.get("pins") or {}).items() if v is not None and k != axis}
        if cell.get("python"):
            pins["python"] = str(cell["python"])
        return pins

    # an axis is independent when some row holds several of its releases: its release names the column
    seen: dict[str, dict[str, set[str]]] = {}
    for r in results:
        cell = cells.get(r["cell"], {})
        for name, version in pinned(cell).items():
            seen.setdefault(name, {}).setdefault(row_of(cell), set()).add(version)
    independent = {name for name, per_row in seen.items() if any(len(v) > 1 for v in per_row.values())}
    pythons = set().union(*seen.get("python", {}).values())

    rows: dict[str, None] = {}
    keyed: dict[str, tuple[Any, ...]] = {}
    companions: dict[str, str] = {}
    placed: list[tuple[str, str, Result]] = []
    for r in results:
        cell = cells.get(r["cell"], {})
        row = row_of(cell)
        rows.setdefault(row, None)
        pins = pinned(cell)
        python, extras, shown = [], [], []
        for name in sorted(pins):
            if name == "python":
                if "python" in independent:
                    python.append(f"py{pins[name]}")
                elif len(pythons) > 1:
                    shown.append(f"py{pins[name]}")
            elif name in independent:
                extras.append(f"{name} {pins[name]}")
            else:
                extras.append(name)
                shown.append(f"{name} {pins[name]}")
        extras += [f"{k}={v}" for k, v in sorted((cell.get("env") or {}).items())]
        api = cell.get("api") or "tf.keras"
        extras += ([f"api {api}"] if api != "tf.keras" else []) + (["override"] if cell.get("overridden") else [])
        label = " · ".join(python + extras) or "plain"
        keyed.setdefault(label, (len(extras), label))  # plain first, then the fewest differences
        if shown:
            companions[r["cell"]] = ", ".join(shown)
        placed.append((row, label, r))
    # cells the pins cannot tell apart (a document without pins) fall back to their ids
    count: dict[tuple[str, str], int] = {}
    for row, label, _ in placed:
        count[(row, label)] = count.get((row, label), 0) + 1
    slots: dict[tuple[str, str], list[Result]] = {}
    for row, label, r in placed:
        if count[(row, label)] > 1:
            label = column_key(r["cell"], axis, row if row != "—" else None)
            keyed.setdefault(label, (99, label))
        slots.setdefault((row, label), []).append(r)
    used = {label for _, label in slots}
    columns = sorted((label for label in keyed if label in used), key=lambda label: keyed[label])
    ordered = sorted(rows, key=lambda v: _version(v) if v != "—" else Version("0"))
    return Grid(axis, ordered, columns, slots, companions)


def failure_groups(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Failing results grouped by what they raised, cause and fix: a thousand cells failing one
    way are one row naming the cells, not a thousand rows."""
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in results:
        if r["status"] in ("loaded", "skipped"):
            continue
        key = (r["status"], failure_text(r), r.get("cause") or "", r.get("fix") or "")
        group = groups.setdefault(
            key, {"status": key[0], "raised": key[1], "cause": key[2], "fix": key[3], "fix_worked": r.get("fix_worked"), "cells": []}
        )
        group["cells"].append(r["cell"])
    return list(groups.values())
