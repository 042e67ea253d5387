"""Gating, baselines, new-release marks, trends, shard slices and merge checks (no TensorFlow).

The real thing (real environments, a generated workflow run step by step, shards merged
and compared with an unsharded run) is in test_schedule.py; these cover the rules.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness import cli, exits
from harness.errors import UsageError
from harness.exits import exit_code
from harness.gate import evaluate, load_baseline, regressions, write_baseline
from harness.history import follow_up
from harness.matrix import Cell
from harness.merge import merge_runs
from harness.pipeline import shard_cells
from harness.report import write_reports
from harness.store import Store


def stored(results: list) -> list:
    from harness.keys import result_key
    from harness.store import StoredResult

    return [StoredResult(r, "a" * 64, "e", "o", 1, result_key("a" * 64, r["cell"], "e", "o", 1)) for r in results]


def result(cell: str, status: str, exception: str | None = None, attribute_error: bool = False) -> dict:
    return {
        "model": "m.h5",
        "cell": cell,
        "status": status,
        "exception": {"type": exception, "message": "x"} if exception else None,
        "cause": "custom-object" if exception else None,
        "attribute_error": attribute_error,
    }


def document(results: list[dict], cells: dict[str, dict] | None = None, shard: dict | None = None) -> dict:
    ids = list(dict.fromkeys(r["cell"] for r in results))
    cells = cells or {c: {"tensorflow": c.removeprefix("tf")} for c in ids}
    return {
        "schema": "harness-results",
        "schema_version": 1,
        "harness_version": "0",
        "probe_version": 1,
        "run": {"started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:01:00", "complete": True, "backend": "uv", "shard": shard},
        "matrix": {"name": "mx", "path": "mx.yaml", "axes": ["tensorflow"], "packages": {}, "load": {}},
        "models": [{"name": "m.h5", "sha256": "a" * 64, "format": "h5"}],
        "cells": [{"id": c, "pins": pins, "env_key": "e-" + c, "position": i} for i, (c, pins) in enumerate(cells.items())],
        "results": results,
    }


def test_regressions_against_accepted_outcomes():
    accepted = {"m.h5": {"tf2.15": {"status": "loaded"}, "tf2.16": {"status": "load-error"}, "tf2.17": {"status": "skipped"}}}
    now = [
        result("tf2.15", "load-error", "ValueError"),  # loaded before: a regression
        result("tf2.16", "load-error", "TypeError"),  # an accepted failure, even with another exception
        result("tf2.17", "import-error", "ImportError"),  # never tried before: counts
        result("tf2.18", "timeout"),  # a new cell (release) that fails: counts
        result("tf2.19", "loaded"),
    ]
    found = {r["cell"]: r["why"] for r in regressions(now, accepted)}
    assert found == {"tf2.15": "was loaded", "tf2.17": "was skipped", "tf2.18": "new cell: not in the reference"}
    assert [r["cell"] for r in regressions(now, None)] == ["tf2.15", "tf2.16", "tf2.17", "tf2.18"]  # no reference: all


@pytest.mark.parametrize(
    ("fail_on", "failed", "reason"),
    [
        ("any", True, "2 failed results in 2 cells"),
        ("regression", False, "no regression"),
        ("attribute-error", True, "1 result with an AttributeError in 1 cell"),
        ("none", False, None),
    ],
)
def test_fail_on_decides_the_verdict(fail_on, failed, reason):
    doc = document([result("tf2.15", "loaded"), result("tf2.16", "load-error", "AttributeError", True), result("tf2.17", "crash")])
    accepted = {"m.h5": {"tf2.16": {"status": "load-error"}, "tf2.17": {"status": "crash"}}}
    gate = evaluate(doc, fail_on, accepted, "baseline b.json")
    assert gate["failed"] is failed
    assert gate["failures"] == 2 and gate["attribute_errors"] == 1
    if reason:
        assert gate["reason"] == reason


def test_baseline_round_trip_and_bad_files(tmp_path):
    doc = document([result("tf2.15", "loaded"), result("tf2.16", "load-error", "ValueError")])
    path = tmp_path / "b" / "baseline.json"
    write_baseline(doc, path)
    loaded = load_baseline(path)
    assert loaded["accepted"]["m.h5"]["tf2.16"] == {"status": "load-error", "exception": "ValueError", "cause": "custom-object"}
    assert loaded["cells"] == {"tf2.15": {"tensorflow": "2.15"}, "tf2.16": {"tensorflow": "2.16"}}
    (tmp_path / "junk.json").write_text('{"schema": "other"}')
    for bad, words in ((tmp_path / "missing.json", "harness baseline RESULTS.json"), (tmp_path / "junk.json", "not a harness baseline")):
        with pytest.raises(UsageError, match=words):
            load_baseline(bad)


def test_follow_up_marks_new_releases_and_keeps_a_trend(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    for statuses in (["loaded", "loaded"], ["loaded", "load-error"]):
        run = store.start_run("mx", "uv")
        doc = document([result("tf2.15", statuses[0]), result("tf2.16", statuses[1], "ValueError" if statuses[1] != "loaded" else None)])
        store.record_cells(run, doc["cells"])
        store.add(run, stored(doc["results"]))
    shard = store.start_run("mx", "uv", "1/2")  # a shard is part of a run, not an earlier run
    store.add(shard, stored([result("tf2.17", "loaded")]))
    now = store.start_run("mx", "uv")
    given = document([result("tf2.15", "loaded"), result("tf2.16", "load-error", "ValueError"), result("tf2.17", "load-error", "ValueError")])
    untouched = copy.deepcopy(given)
    doc = follow_up(given, store, now, "regression")
    assert given == untouched  # a pure function: a new document, the given one unchanged
    cells = {c["id"]: c for c in doc["cells"]}
    assert [c for c in cells if cells[c].get("new")] == ["tf2.17"]
    assert cells["tf2.17"]["new_versions"] == {"tensorflow": "2.17"}
    assert doc["history"]["new_releases"] == {"tensorflow": ["2.17"]}
    assert [h["id"] for h in doc["history"]["runs"]] == [1, 2]
    assert [t["status"] if t else None for t in doc["history"]["trend"]["m.h5"]["tf2.16"]] == ["loaded", "load-error"]
    assert doc["history"]["trend"]["m.h5"]["tf2.17"] == [None, None]
    # tf2.16 failed in the previous run (accepted); tf2.17 is new and fails: one regression
    assert [r["cell"] for r in doc["gate"]["regressions"]] == ["tf2.17"] and doc["gate"]["reference"].startswith("run 2 ")
    write_reports(doc, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "New releases since the last run: tensorflow 2.17 (1 new cell)" in md
    assert "| `tf2.17` 🆕 |" in md and "| ✅❌ |" in md  # tf2.16's earlier runs, oldest first
    html = (tmp_path / "report.html").read_text()
    assert 'class="trend"' in html and "1 regression" in html and 'class="new"' in html


def test_no_op_re_runs_fold_into_the_run_before_them_in_the_trend(tmp_path, capsys):
    """Three unchanged re-runs are one point of the trend (with "repeats"), not three; harness
    history counts each run's loaded and failed results."""
    from harness import cli

    store = Store(tmp_path / "s.sqlite")
    plan = [["loaded", "loaded"], ["loaded", "load-error"], ["loaded", "load-error"], ["loaded", "load-error"], ["loaded", "loaded"]]
    for statuses in plan:
        run = store.start_run("mx", "uv")
        doc = document([result("tf2.15", statuses[0]), result("tf2.16", statuses[1], "ValueError" if statuses[1] != "loaded" else None)])
        store.record_cells(run, doc["cells"])
        store.add(run, stored(doc["results"]))
        store.finish_run(run, True, False)
    now = store.start_run("mx", "uv")
    doc = follow_up(document([result("tf2.15", "loaded"), result("tf2.16", "loaded")]), store, now, "regression")
    assert [(h["id"], h["repeats"]) for h in doc["history"]["runs"]] == [(1, 0), (2, 2), (5, 0)]
    assert [t["status"] for t in doc["history"]["trend"]["m.h5"]["tf2.16"]] == ["loaded", "load-error", "loaded"]
    store.close()
    assert cli.main(["history", "--store", str(tmp_path / "s.sqlite"), "--json", "--no-config"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["loaded"], r["failed"]) for r in runs[:5]] == [(1, 2, 0), (2, 1, 1), (3, 1, 1), (4, 1, 1), (5, 2, 0)]


def test_shards_are_balanced_disjoint_and_cover_every_cell():
    cells = [Cell("3.11", (("tensorflow", f"2.{n}"),)) for n in range(11)]
    for n in (1, 2, 3, 4, 11, 12):
        slices = [shard_cells(cells, (k, n)) for k in range(1, n + 1)]
        assert sorted((c for s in slices for c in s), key=cells.index) == cells
        assert max(map(len, slices)) - min(map(len, slices)) <= 1
    assert shard_cells(cells, (2, 4)) == shard_cells(list(cells), (2, 4))  # the same slice each time


def test_merge_refuses_what_is_not_one_sharded_run(tmp_path):
    def shard_file(name: str, k: int, n: int, matrix: str = "mx") -> Path:
        doc = document([result(f"tf2.1{k}", "loaded")], shard={"index": k, "count": n})
        doc["matrix"]["name"] = matrix
        doc["run"]["try_fixes"] = True  # part of the cache key: the merged run must keep it
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(doc))
        return path

    a, b, c, d = shard_file("a", 1, 3), shard_file("b", 2, 3), shard_file("c", 2, 3), shard_file("d", 3, 3, "other")
    out = tmp_path / "out"
    for paths, words in (
        ([a, b], "shard\\(s\\) 3/3 missing"),
        ([a, b, c], "shard 2/3 given twice"),
        ([a, b, d], "matrix 'other'"),
    ):
        with pytest.raises(UsageError, match=words):
            merge_runs(paths, out)
    doc = merge_runs([b, a], out, allow_missing=True)
    assert [c["id"] for c in doc["cells"]] == ["tf2.11", "tf2.12"] and doc["run"]["missing_shards"] == [3]
    assert doc["run"]["complete"] is False and doc["run"]["try_fixes"] is True
    assert cli.main(["merge", str(a), str(b), "--allow-missing", "-o", str(out), "--no-store"]) == 1  # partial: exit 1


def test_baseline_and_schedule_commands(tmp_path, monkeypatch, capsys):
    doc = document([result("tf2.15", "loaded"), result("tf2.16", "load-error", "ValueError")])
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert cli.main(["baseline", str(tmp_path / "r.json"), "-o", str(tmp_path / "b.json")]) == 0
    assert "2 accepted outcomes" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text("name: mx\nmatrix:\n  tensorflow: ['2.15']\n")
    (tmp_path / "model.h5").write_bytes(b"x")
    for args, words in (
        (["m.yaml", "model.h5", "--cron", "0 6 *"], "expected 5 fields"),
        (["m.yaml", "nope.h5"], "nope.h5: no such model"),
        (["m.yaml", "/etc/hostname"], "outside"),
        (["m.yaml", "model.h5", "--shards", "0"], "between 1 and 256"),
        (["m.yaml", "model.h5"], "--install: say what CI installs"),  # this harness is an editable install
    ):
        assert cli.main(["schedule", *args]) == 2
        assert words in capsys.readouterr().err
    assert cli.main(["schedule", "m.yaml", "model.h5", "--install", "harness @ git+https://example.org/h.git@v1", "-o", "-"]) == 0
    assert "python -m pip install 'harness @ git+https://example.org/h.git@v1'" in capsys.readouterr().out
    assert cli.main(["run", "m.yaml", "model.h5", "--shard", "5/4"]) == 2
    assert "K must be between 1 and N" in capsys.readouterr().err


def test_the_default_install_is_where_this_harness_came_from(monkeypatch):
    """A git install names its URL and commit; a local folder names nothing (CI cannot reach it)."""
    import importlib.metadata

    from harness.schedule import default_install

    class Origin:
        def __init__(self, text: str):
            self.text = text

        def read_text(self, name: str) -> str:
            return self.text

    git = {"url": "https://github.com/o/harness", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Origin(json.dumps(git)))
    assert default_install() == "harness @ git+https://github.com/o/harness@abc123"
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Origin(json.dumps({"url": "file:///src", "dir_info": {}})))
    assert default_install() is None


def test_a_run_that_tested_nothing_never_passes():
    from harness.report import summary

    doc = document([result("tf2.15", "infra-error"), result("tf2.16", "skipped")])
    doc["gate"] = evaluate(doc, "any", None, None)
    assert doc["gate"]["untested"] and not doc["gate"]["failed"]
    assert exit_code(doc) == exits.UNTESTED == 5
    assert summary.gate_text(doc) == "--fail-on any: nothing tested (no cell was tested (1 infra-error, 1 skipped))"
    doc["gate"] = evaluate(doc, "none", None, None)
    assert exit_code(doc) == 5  # --fail-on none ignores failures, not the absence of any test
    tested = document([result("tf2.15", "infra-error"), result("tf2.16", "loaded")])
    tested["gate"] = evaluate(tested, "any", None, None)
    assert not tested["gate"]["untested"] and exit_code(tested) == 0


@pytest.mark.parametrize("fail_on", ["regression", "any", "none"])
def test_a_skipped_cell_is_not_tested_and_never_a_pass(fail_on):
    doc = {
        "results": [
            {"model": "m.h5", "cell": "py3.11-tf2.15", "status": "loaded"},
            {"model": "m.h5", "cell": "py3.10-tf2.15", "status": "skipped", "detail": "Python 3.10 is not available on this host"},
        ]
    }
    doc["gate"] = evaluate(doc, fail_on, None, None)
    assert doc["gate"]["not_tested"] == ["py3.10-tf2.15"] and not doc["gate"]["untested"] and not doc["gate"]["failed"]
    assert exit_code(doc) == exits.UNTESTED
    assert doc["gate"]["reason"] == "1 cell not tested: Python 3.10 is not available on this host" or fail_on == "none"
    failing = copy.deepcopy(doc)
    failing["results"][0]["status"] = "load-error"
    failing["gate"] = evaluate(failing, fail_on, None, None)
    assert exit_code(failing) == (exits.UNTESTED if fail_on == "none" else exits.FAILED)  # a failure says more than a skip
