"""The result store: runs, results, cache lookups, history and diff (SQLite, no TensorFlow)."""

from __future__ import annotations

import json
import threading

from harness import cli
from harness.keys import result_key
from harness.store import Store, StoredResult, diff_results

SHA = "a" * 64


def stored(results: list[dict], env: str = "e", options: str = "o", probe: int = 1, sha: str = SHA) -> list[StoredResult]:
    return [StoredResult(r, sha, env, options, probe, result_key(sha, r["cell"], env, options, probe)) for r in results]


def result(cell: str, status: str, exception: str | None = None) -> dict:
    return {"model": "m.h5", "cell": cell, "status": status, "exception": {"type": exception} if exception else None, "cause": None}


def test_cache_lookup_follows_model_env_options_and_probe(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run = store.start_run("mx", "uv")
    store.add(run, stored([result("c1", "load-error", "ValueError")], "env1", "opt1", 1))
    assert store.cached(result_key(SHA, "c1", "env1", "opt1", 1))["status"] == "load-error"
    for changed in (
        ("b" * 64, "c1", "env1", "opt1", 1),
        (SHA, "c2", "env1", "opt1", 1),
        (SHA, "c1", "env2", "opt1", 1),
        (SHA, "c1", "env1", "opt2", 1),
        (SHA, "c1", "env1", "opt1", 2),
    ):
        assert store.cached(result_key(*changed)) is None
    store.add(run, stored([result("c2", "crash")], "env1", "opt1", 1))
    assert store.cached(result_key(SHA, "c2", "env1", "opt1", 1)) is None  # a crash is run again


def test_a_store_written_before_result_keys_opens_and_reuses_nothing_of_it(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT, finished TEXT, matrix TEXT NOT NULL, backend TEXT NOT NULL, "
        "complete INTEGER NOT NULL DEFAULT 0, interrupted INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE results (run_id INTEGER NOT NULL, model_sha256 TEXT NOT NULL, model TEXT NOT NULL, cell TEXT NOT NULL, "
        "env_key TEXT NOT NULL, options_key TEXT NOT NULL, probe_version INTEGER NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL, "
        "recorded REAL NOT NULL);"
        "INSERT INTO runs (started, matrix, backend, complete) VALUES ('2026-01-01', 'mx', 'uv', 1);"
        f"INSERT INTO results VALUES (1, '{SHA}', 'm.h5', 'c1', 'e', 'o', 1, 'loaded', '{{}}', 0);"
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.cached(result_key(SHA, "c1", "e", "o", 1)) is None
    assert [(r["id"], r["results"]) for r in store.runs()] == [(1, 1)]  # its count, added with the column
    run = store.start_run("mx", "uv")
    store.add(run, stored([result("c1", "loaded")]))
    assert store.cached(result_key(SHA, "c1", "e", "o", 1))["status"] == "loaded"
    assert [(r["id"], r["results"]) for r in Store(path).runs()] == [(1, 1), (2, 1)]  # opened again: counted once


def test_two_writers_at_once_lose_nothing(tmp_path):
    stores = [Store(tmp_path / "s.sqlite") for _ in range(2)]
    runs = [s.start_run("mx", "uv") for s in stores]

    def write(i: int) -> None:
        for n in range(50):
            stores[i].add(runs[i], stored([result(f"w{i}-c{n}", "loaded")]))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(stores[0].results(r)) for r in runs] == [50, 50]


def test_diff_and_the_commands(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    store = Store(path)
    first = store.start_run("mx", "uv")
    store.add(first, stored([result("tf2.15", "loaded"), result("tf2.16", "load-error", "ValueError"), result("tf2.17", "load-error", "ValueError")]))
    store.finish_run(first, True, False)
    second = store.start_run("mx", "uv")
    store.add(
        second,
        stored(
            [
                result("tf2.15", "load-error", "TypeError"),
                result("tf2.16", "loaded"),
                result("tf2.17", "load-error", "AttributeError"),
                result("tf2.18", "loaded"),
            ]
        ),
    )
    changes = diff_results(store.results(first), store.results(second))
    assert [c["cell"] for c in changes["new_failures"]] == ["tf2.15"]
    assert [c["cell"] for c in changes["fixed"]] == ["tf2.16"]
    assert [(c["exception_before"], c["exception_after"]) for c in changes["changed_exception"]] == [("ValueError", "AttributeError")]
    assert [c["cell"] for c in changes["new_cells"]] == ["tf2.18"]
    assert cli.main(["history", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "unfinished (killed?)" in out
    assert cli.main(["history", "--store", str(path), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["results"], r["complete"]) for r in runs] == [(first, 3, True), (second, 4, False)]
    assert cli.main(["diff", "--store", str(path), "--json"]) == 1  # a new failure
    assert json.loads(capsys.readouterr().out)["before"] == first
    assert cli.main(["diff", str(first), str(second), "--store", str(path)]) == 1
    assert "new failures: 1" in capsys.readouterr().out
    assert cli.main(["history", "--store", str(tmp_path / "none.sqlite")]) == 2


def test_the_cache_key_follows_file_contents_not_paths(tmp_path):
    # An edited custom_objects.py (or input, or reference) must make the next run load again.
    from harness.keys import options_key

    objects = tmp_path / "custom_objects.py"
    objects.write_text("X = 1\n")
    load = {"custom_objects": str(objects), "compile": True}
    first = options_key(load, "uv")
    assert options_key(load, "uv") == first
    objects.write_text("X = 2\n")
    assert options_key(load, "uv") != first
    objects.write_text("X = 1\n")
    assert options_key(load, "uv") == first
    assert options_key(dict(load, custom_objects=str(tmp_path / "gone.py")), "uv") != first


def test_finishing_a_run_writes_its_final_results_in_place_of_the_per_cell_rows(tmp_path):
    """The per-cell rows (what an interrupted run keeps) give way to the final results in one
    transaction with the closing stamp; another run's rows are untouched."""
    store = Store(tmp_path / "s.sqlite")
    other = store.start_run("mx", "uv")
    store.add(other, stored([result("tf2.16", "load-error", "ValueError")]))
    run = store.start_run("mx", "uv")
    store.add(run, stored([result("tf2.15", "loaded")]))
    store.add(run, stored([result("tf2.16", "load-error", "ValueError")]))
    store.finish_run(run, True, False, stored([result("tf2.15", "loaded"), result("tf2.16", "loaded-after-fix")]))
    assert [(r["cell"], r["status"]) for r in store.results(run)] == [("tf2.15", "loaded"), ("tf2.16", "loaded-after-fix")]
    assert [r["status"] for r in store.results(other)] == ["load-error"]
    assert [(r["id"], r["complete"], r["results"]) for r in store.runs()] == [(other, 0, 1), (run, 1, 2)]
