"""results.json and the store: written once per finished cell and once at the end.

Results are values (diagnose.CellResult, frozen). The stages after the cells (outputs
compared, fixes tried in another environment, history and the gate) are pure functions
that return new values; the recorder writes what they return, once, at the end. Nothing
changes a written result in place.

Per cell: the cell's results are appended, results.json is rewritten (atomically) and
the store gets one transaction, so an interrupted run keeps every finished cell and the
next run reuses them. At the end: the run's final results replace its rows in one
transaction with the run's closing stamp, and the reports are written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .diagnose import CellResult
from .history import follow_up
from .keys import options_key, result_key
from .modelfile import ModelInfo
from .paths import write_atomic
from .probe import PROBE_VERSION
from .report import write_reports
from .store import Store, StoredResult


class Recorder:
    def __init__(self, outdir: Path, document: Mapping[str, Any], store: Store | None = None):
        self.outdir = outdir
        self.document = dict(document)
        self.results: list[CellResult] = []
        self.store = store
        run = document["run"]
        shard = run.get("shard")
        self.run_id = (
            store.start_run(document["matrix"]["name"], run["backend"], f"{shard['index']}/{shard['count']}" if shard else None)
            if store
            else 0
        )
        if store:
            store.record_cells(self.run_id, document["cells"])
        load = dict(document["matrix"].get("load", {}))
        load["try_fixes"] = bool(load.get("try_fixes") or run.get("try_fixes"))  # --try-fixes counts too
        self.options = options_key(load, run["backend"])
        self.env_keys: dict[str, str | None] = {c["id"]: c.get("env_key") for c in document["cells"]}
        self.models = {m["name"]: m["sha256"] for m in document["models"]}

    # ------------------------------------------------------------------ per cell

    def add(self, results: Sequence[CellResult]) -> None:
        """A finished cell (or the cells that ended before any environment): kept, written, stored."""
        if not results:
            return  # nothing new to keep (finish writes results.json whatever happened)
        self.results.extend(results)
        if self.store:
            rows = self._rows(results)
            if rows:
                self.store.add(self.run_id, rows)
        if not all(r.cached for r in results):
            # Results reused from the store are already kept there (a killed re-run finds them again):
            # writing results.json for them alone only slowed a re-run down.
            self.flush()

    def cached(self, cell_id: str, env_key: str, infos: Sequence[ModelInfo]) -> list[CellResult]:
        """Results the store holds for these models in this cell, unchanged since (keys.result_key)."""
        if not self.store:
            return []
        found = [(i, self.store.cached(result_key(i.sha256, cell_id, env_key, self.options, PROBE_VERSION))) for i in infos]
        # Keyed by the file's bytes, not its name: a stored result takes the name of the file in this
        # run (the same bytes under two names are two results, each under its own name).
        return [replace(CellResult.from_dict(r), model=i.name, cached=True) for i, r in found if r]

    # ------------------------------------------------------------------ at the end

    def finish(
        self,
        results: Sequence[CellResult] | None,
        complete: bool,
        interrupted: bool,
        fail_on: str = "any",
        baseline: Mapping[str, Any] | None = None,
        baseline_name: str | None = None,
        finished: str | None = None,
    ) -> dict[str, Any]:
        """The run's final results (None: as recorded), compared with earlier runs (history.follow_up),
        written once to results.json, the store and the reports; returns the document."""
        final = list(self.results if results is None else results)
        self.results = final
        stamped = {
            **self.document,
            "run": {
                **self.document["run"],
                "finished": finished or now(),
                "complete": complete,
                "interrupted": interrupted,
                "store_run": self.run_id or None,
            },
            "results": [r.to_dict() for r in final],
        }
        self.document = follow_up(stamped, self.store, self.run_id or None, fail_on, baseline, baseline_name)
        if self.store:
            self.store.finish_run(self.run_id, complete, interrupted, self._rows(final))
        self._write(self.document)  # the document holds the results already: not converted a second time
        write_reports(self.document, self.outdir)
        return self.document

    # ------------------------------------------------------------------

    def flush(self) -> None:
        self._write({**self.document, "results": [r.to_dict() for r in self.results]})

    def _write(self, document: Mapping[str, Any]) -> None:
        write_atomic(self.outdir / "results.json", json.dumps(document, indent=1, default=str))

    def _rows(self, results: Sequence[CellResult]) -> list[StoredResult]:
        """Store rows: only results of cells that ran in an environment are worth caching."""
        rows = []
        for r in results:
            env_key = self.env_keys.get(r.cell)
            sha256 = self.models.get(r.model)
            if env_key and sha256:
                rows.append(
                    StoredResult(
                        r.to_dict(),
                        sha256,
                        env_key,
                        self.options,
                        PROBE_VERSION,
                        result_key(sha256, r.cell, env_key, self.options, PROBE_VERSION),
                    )
                )
        return rows


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
