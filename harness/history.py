"""What a run means next to the runs before it: new releases, trends, the gate.

Called when a run (or a merge of shards) finishes, before the reports are written, so
results.json carries everything the reports show and `harness report` can re-render it.
A pure function of the document and the store: it returns a new document with

- `cells[].new` / `new_versions`: cells no earlier run of the same matrix had (a release
  that appeared since: the matrix's lines, specifiers and `latest` are expanded afresh
  on every run), measured against the store, else against the baseline's cells;
- `history.trend`: each cell's outcome in up to TREND_RUNS earlier runs that changed
  something (a re-run with every outcome the same folds into the run before it);
- `gate`: what `--fail-on` counts against the baseline or the previous run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .gate import evaluate, outcomes_of
from .store import Store

TREND_RUNS = 8
SCANNED = 4  # earlier runs read for the trend, per slot: no-op re-runs fold into the run before them


def follow_up(
    doc: dict[str, Any],
    store: Store | None,
    run_id: int | None,
    fail_on: str,
    baseline: Mapping[str, Any] | None = None,
    baseline_name: str | None = None,
) -> dict[str, Any]:
    matrix = doc["matrix"]["name"]
    earlier = store.earlier_runs(matrix, before=run_id) if store else []
    history: dict[str, Any] = {"runs": [], "trend": {}, "new_releases": {}, "compared_with": None}
    seen: dict[str, Mapping[str, Any]] | None = None
    if earlier and store:
        seen = dict(store.cells_seen(r["id"] for r in earlier))
        history["compared_with"] = f"{len(earlier)} earlier run(s) of {matrix} in the store"
    elif baseline is not None:
        seen = dict(baseline.get("cells") or {})
        history["compared_with"] = f"the baseline {baseline_name}"
    cells = list(doc.get("cells", []))
    if seen is not None:  # marks a shard (or an earlier rendering) made are measured again
        cells, history["new_releases"] = mark_new([_unmarked(c) for c in cells], seen)
    outcomes: dict[int, dict[str, dict[str, Any]]] = {}  # run id -> model -> cell -> outcome; each run read once

    def outcomes_in(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        assert store is not None
        if run["id"] not in outcomes:
            outcomes[run["id"]] = outcomes_of(store.results(run["id"]))
        return outcomes[run["id"]]

    if store and earlier:
        # a re-run that changed nothing is no point of a trend: of each streak of runs with the same
        # outcomes, the first (when that state began) stands for the rest ("repeats": how many)
        states: list[tuple[Mapping[str, Any], dict[str, dict[str, Any]], int]] = []
        for r in reversed(earlier[: TREND_RUNS * SCANNED]):  # oldest first
            now = outcomes_in(r)
            if states and states[-1][1] == now:
                states[-1] = (states[-1][0], now, states[-1][2] + 1)
            else:
                states.append((r, now, 0))
        shown = states[-TREND_RUNS:]
        history["runs"] = [{"id": r["id"], "started": r["started"], "repeats": repeats} for r, _, repeats in shown]
        by_run = [now for _, now, _ in shown]
        for r in doc.get("results", []):
            history["trend"].setdefault(r["model"], {})[r["cell"]] = [old.get(r["model"], {}).get(r["cell"]) for old in by_run]
    accepted: Mapping[str, Mapping[str, Any]] | None = None
    reference = None
    if baseline is not None:
        accepted, reference = baseline["accepted"], f"baseline {baseline_name}"
    elif store and earlier:
        previous = next((r for r in earlier if r["complete"]), earlier[0])
        accepted, reference = outcomes_in(previous), f"run {previous['id']} ({previous['started']})"
    gate = {
        **evaluate(doc, fail_on, accepted, reference),
        "given": bool((doc.get("run") or {}).get("fail_on_given", True)),  # the user chose it (else: the default)
    }
    return {**doc, "cells": cells, "history": history, "gate": gate}


def _unmarked(cell: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cell.items() if k not in ("new", "new_versions")}


def mark_new(
    cells: Sequence[Mapping[str, Any]], seen: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The cells with those not seen before flagged (`new`, `new_versions`), and the versions
    per axis no earlier cell had."""
    known: dict[str, set[str]] = {}
    for pins in seen.values():
        for axis, version in pins.items():
            known.setdefault(axis, set()).add(version)
    releases: dict[str, list[str]] = {}
    marked = []
    for cell in cells:
        if cell["id"] in seen:
            marked.append(dict(cell))
            continue
        fresh = {a: v for a, v in cell.get("pins", {}).items() if v is not None and a in known and v not in known[a]}
        marked.append({**cell, "new": True, **({"new_versions": fresh} if fresh else {})})
        for axis, version in fresh.items():
            if version not in releases.setdefault(axis, []):
                releases[axis].append(version)
    return marked, releases
