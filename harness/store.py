"""SQLite store: runs and results, written as each cell finishes; the cache reads it back.

One file (default `.harness/results.sqlite` in the working folder). WAL journal and a
busy timeout let two runs write at once; every cell's results are one transaction, so
a run killed at any moment keeps every cell it finished, and the next run of the same
command finds them and runs only what is missing.

A result is reused while the model's hash, the environment key, the cell (its id names
env vars and API), the load options and the probe version are unchanged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnose import FAILED, exception_type


def default_store() -> Path:
    """$HARNESS_STORE, else .harness/results.sqlite in the working folder."""
    return Path(os.environ.get("HARNESS_STORE") or Path(".harness") / "results.sqlite")


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT,
    matrix TEXT NOT NULL,
    backend TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    model_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    cell TEXT NOT NULL,
    env_key TEXT NOT NULL,
    options_key TEXT NOT NULL,
    probe_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    recorded REAL NOT NULL,
    result_key TEXT
);
CREATE INDEX IF NOT EXISTS results_run ON results (run_id, model, cell);
CREATE TABLE IF NOT EXISTS run_cells (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    cell TEXT NOT NULL,
    pins TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_cells_run ON run_cells (run_id);
"""
# Columns added after the first release: (table, column) -> statement. Rows written before
# result_key existed have none, so they are never reused (their probe was older anyway).
MIGRATIONS = {
    ("runs", "shard"): "ALTER TABLE runs ADD COLUMN shard TEXT",
    ("results", "result_key"): "ALTER TABLE results ADD COLUMN result_key TEXT",
    # Each run's number of results, kept as they are written: `harness history` and every run's
    # look at earlier runs read the runs table alone, never count a million results.
    ("runs", "result_count"): "ALTER TABLE runs ADD COLUMN result_count INTEGER NOT NULL DEFAULT 0; "
    "UPDATE runs SET result_count = (SELECT COUNT(*) FROM results WHERE results.run_id = runs.id)",
}
INSERT_RESULT = (
    "INSERT INTO results (run_id, model_sha256, model, cell, env_key, options_key, probe_version, status, data, recorded, result_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INDEXES = "CREATE INDEX IF NOT EXISTS results_by_key ON results (result_key);"


def diff_results(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What changed between two runs, per (model, cell)."""
    old = {(r["model"], r["cell"]): r for r in before}
    new = {(r["model"], r["cell"]): r for r in after}
    changes: dict[str, list[dict[str, Any]]] = {"new_failures": [], "fixed": [], "changed_exception": [], "new_cells": [], "gone_cells": []}

    def row(key: tuple[str, str], a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "model": key[0],
            "cell": key[1],
            "before": (a or {}).get("status"),
            "after": (b or {}).get("status"),
            "exception_before": exception_type(a),
            "exception_after": exception_type(b),
            "cause": (b or a or {}).get("cause"),
        }

    for key in sorted(new.keys() - old.keys()):
        changes["new_cells"].append(row(key, None, new[key]))
    for key in sorted(old.keys() - new.keys()):
        changes["gone_cells"].append(row(key, old[key], None))
    for key in sorted(new.keys() & old.keys()):
        a, b = old[key], new[key]
        if b["status"] in FAILED and a["status"] not in FAILED:
            changes["new_failures"].append(row(key, a, b))
        elif a["status"] in FAILED and b["status"] not in FAILED:
            changes["fixed"].append(row(key, a, b))
        elif a["status"] in FAILED and exception_type(a) != exception_type(b):
            changes["changed_exception"].append(row(key, a, b))
    return changes


@dataclass(frozen=True)
class StoredResult:
    """A result record and the identities it is stored under (keys.py computes them)."""

    record: Mapping[str, Any]
    model_sha256: str
    env_key: str
    options_key: str
    probe_version: int
    result_key: str


class Store:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.executescript(SCHEMA)
            for (table, column), statement in MIGRATIONS.items():
                if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                    self._db.executescript(f"BEGIN IMMEDIATE; {statement}; COMMIT;")  # the column and its values, or neither
            self._db.executescript(INDEXES)

    def start_run(self, matrix: str, backend: str, shard: str | None = None) -> int:
        """`shard` ("2/4"): a slice of a run, kept for the cache and resuming, left out of history comparisons."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO runs (started, matrix, backend, shard) VALUES (?, ?, ?, ?)",
                (time.strftime("%Y-%m-%dT%H:%M:%S%z"), matrix, backend, shard),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, complete: bool, interrupted: bool, final: Iterable[StoredResult] | None = None) -> None:
        """Close a run; `final`: its results as the reports show them (after outputs were compared
        and fixes tried in other environments), written in place of the per-cell rows in the
        same transaction, so history, trends, gates and the cache see what the report shows."""
        values = None if final is None else self._values(run_id, final)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if values is not None:
                self._db.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
                self._db.executemany(INSERT_RESULT, values)
                self._db.execute("UPDATE runs SET result_count = ? WHERE id = ?", (len(values), run_id))
            self._db.execute(
                "UPDATE runs SET finished = ?, complete = ?, interrupted = ? WHERE id = ?",
                (time.strftime("%Y-%m-%dT%H:%M:%S%z"), int(complete), int(interrupted), run_id),
            )
            self._db.execute("COMMIT")

    def add(self, run_id: int, rows: Iterable[StoredResult]) -> None:
        """One transaction per cell; each result under its key (keys.result_key)."""
        values = self._values(run_id, rows)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(INSERT_RESULT, values)
            self._db.execute("UPDATE runs SET result_count = result_count + ? WHERE id = ?", (len(values), run_id))
            self._db.execute("COMMIT")

    @staticmethod
    def _values(run_id: int, rows: Iterable[StoredResult]) -> list[tuple[Any, ...]]:
        recorded = time.time()
        return [
            (
                run_id,
                row.model_sha256,
                row.record["model"],
                row.record["cell"],
                row.env_key,
                row.options_key,
                row.probe_version,
                row.record["status"],
                json.dumps(row.record, default=str),
                recorded,
                row.result_key,
            )
            for row in rows
        ]

    def cached(self, result_key: str) -> dict[str, Any] | None:
        """The newest result stored under this key that is worth reusing (not an infra error or crash)."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM results WHERE result_key = ? AND status NOT IN ('infra-error', 'crash') ORDER BY recorded DESC LIMIT 1",
                (result_key,),
            ).fetchone()
        return _checked(row[0]) if row else None

    def record_cells(self, run_id: int, cells: Iterable[Mapping[str, Any]]) -> None:
        """The cells a run expanded to, with their pins: what "new release" is measured against."""
        rows = [(run_id, c["id"], json.dumps(c.get("pins", {}), sort_keys=True)) for c in cells]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO run_cells VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def earlier_runs(self, matrix: str, before: int | None = None) -> list[dict[str, Any]]:
        """Whole runs (not shards) of `matrix` older than run `before` that hold results, newest first."""
        return [
            r
            for r in reversed(self.runs())
            if r["matrix"] == matrix and r["results"] and not r["shard"] and (before is None or r["id"] < before)
        ]

    def cells_seen(self, run_ids: Iterable[int]) -> dict[str, dict[str, Any]]:
        """Cell id -> pins, over the given runs (results count too, for runs recorded before cells were)."""
        ids = list(run_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            pinned = self._db.execute(f"SELECT cell, pins FROM run_cells WHERE run_id IN ({marks})", ids).fetchall()
            bare = self._db.execute(f"SELECT DISTINCT cell FROM results WHERE run_id IN ({marks})", ids).fetchall()
        seen: dict[str, dict[str, Any]] = {cell: {} for (cell,) in bare}
        seen.update((cell, json.loads(pins)) for cell, pins in pinned)
        return seen

    def status_counts(self) -> dict[int, dict[str, int]]:
        """Run id -> {status: results}, for every run at once (harness history's columns)."""
        with self._lock:
            rows = self._db.execute("SELECT run_id, status, COUNT(*) FROM results GROUP BY run_id, status").fetchall()
        counts: dict[int, dict[str, int]] = {}
        for run_id, status, n in rows:
            counts.setdefault(int(run_id), {})[str(status)] = int(n)
        return counts

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, started, finished, matrix, backend, complete, interrupted, shard, result_count FROM runs ORDER BY id"
            )
            names = ("id", "started", "finished", "matrix", "backend", "complete", "interrupted", "shard", "results")
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def results(self, run_id: int) -> list[dict[str, Any]]:
        """A run's outcomes (model, cell, status, cause, exception type: what history, diff and
        --last-failed compare), each row checked (schema.OUTCOME_ROW); a row that is not one is skipped."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
        return [r for r in (_checked(row[0], outcome=True) for row in rows) if r is not None]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _checked(data: str, outcome: bool = False) -> dict[str, Any] | None:
    """A stored result as the harness writes one (schema.check_result; with `outcome`, only the
    fields of its outcome), else None: a store may travel between CI runs (a cache restored
    from elsewhere), so a row that is not one of ours is skipped, never used."""
    from .schema import OUTCOME_ROW, DocumentError, check_result

    try:
        value = json.loads(data)
        checked: dict[str, Any] = OUTCOME_ROW(value, "result") if outcome else check_result(value)
        return checked
    except (ValueError, RecursionError, DocumentError):
        return None
