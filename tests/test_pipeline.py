"""The whole run pipeline (plan, cells, cache, store, gate, reports, interruption) on the
fake backend, index and resolver of tests/fakes.py: no environment, no process, by equality."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
from fakes import FakeBackend, FakeIndex, FakeResolver, fails, loads

from harness import backends, pipeline, proc, runner
from harness.errors import Interrupted
from harness.inspection import inspect_files, read_configs
from harness.matrix import parse_matrix
from harness.runner import RunOptions, run

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "examples" / "models"
MATRIX = """
name: fake
matrix:
  tensorflow: ["2.15", "2.16", "2.21"]
packages: {tensorflow: tensorflow-cpu}
load: {custom_objects: custom_objects.py}
"""
UNKNOWN = "Unknown layer: 'ResidualBlock'. Please ensure you are using a `keras.utils.custom_object_scope` ..."
TABLE = {
    ("residual_block.h5", "2.15.1"): fails("ValueError", UNKNOWN, {"fix": "custom_objects", "compile": True, "ok": True}),
    ("residual_block.h5", "2.16.2"): fails("ValueError", UNKNOWN),
    ("residual_block.h5", "2.21.0"): fails("ValueError", UNKNOWN),
    ("dense.h5", "2.21.0"): loads(),
}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError(f"a pipeline test started a real process: {args[:1]}")

    import platform

    import h5py  # noqa: F401 - its import asks `uname -p` once (platform caches it): before the guard

    platform.uname().processor  # noqa: B018
    # The reader runs in a process (tests/test_inspection.py); what it finds is kept by content, so read it now.
    inspect_files(sorted(MODELS.iterdir()))
    for model in MODELS.iterdir():
        read_configs(model)  # what harness migrate's suggestion reads of a failing file
    for name in ("Popen", "run", "call", "check_output"):  # the guard: these tests run no program at all
        monkeypatch.setattr(subprocess, name, no_process)
    monkeypatch.setattr(os, "fork", no_process)

    def no_network(*args, **kwargs):
        raise AssertionError(f"a pipeline test opened a connection: {args[1:2]}")

    monkeypatch.setattr(socket.socket, "connect", no_network)  # nor asks a package index
    backend = FakeBackend(TABLE)
    monkeypatch.setattr(backends, "BACKENDS", {**backends.BACKENDS, "fake": lambda config: backend})
    index = FakeIndex({"tensorflow-cpu": ["2.15.1", "2.16.2", "2.21.0"], "tf-keras": ["2.15.1", "2.16.0", "2.21.0"]})
    for module in (pipeline, runner):  # the stages ask the index and the resolver; so do the legacy fixes
        monkeypatch.setattr(module, "PackageIndex", lambda **kw: index)
        monkeypatch.setattr(module, "Resolver", FakeResolver)
    (tmp_path / "custom_objects.py").write_text("class ResidualBlock: pass\n")
    (tmp_path / "m.yaml").write_text(textwrap.dedent(MATRIX))
    yield backend
    proc.resume()  # an interrupted run stops this process starting processes (as it should); later tests start some


def go(tmp_path: Path, out: str, **options) -> dict:
    matrix = parse_matrix((tmp_path / "m.yaml").read_text(), tmp_path / "m.yaml")
    models = [MODELS / "residual_block.h5", MODELS / "dense.h5"]
    return run(matrix, models, RunOptions(outdir=tmp_path / out, backend="fake", store=tmp_path / "store.sqlite", **options))


def essence(doc: dict) -> list[tuple]:
    return sorted((r["model"], r["cell"], r["status"], r["cause"], r.get("fix_worked"), r.get("cached")) for r in doc["results"])


def test_a_run_on_the_fake_backend_reports_what_the_probes_said(fake, tmp_path):
    doc = go(tmp_path, "one")
    assert essence(doc) == [
        ("dense.h5", "py3.11-tensorflow2.15.1", "loaded", None, None, False),
        ("dense.h5", "py3.11-tensorflow2.16.2", "loaded", None, None, False),
        ("dense.h5", "py3.11-tensorflow2.21.0", "loaded", None, None, False),
        ("residual_block.h5", "py3.11-tensorflow2.15.1", "loaded-after-fix", "custom-object", "custom_objects", False),
        ("residual_block.h5", "py3.11-tensorflow2.16.2", "load-error", "custom-object", None, False),
        ("residual_block.h5", "py3.11-tensorflow2.21.0", "load-error", "custom-object", None, False),
    ]
    assert doc["gate"]["reason"] == "2 failed results in 2 cells" and doc["gate"]["given"] is False
    written = json.loads((tmp_path / "one" / "results.json").read_text())
    assert written["results"] == json.loads(json.dumps(doc["results"], default=str))  # the file is the document
    report = (tmp_path / "one" / "report.md").read_text()
    assert "fails: 2 failed results in 2 cells" in report and "--fail-on" not in report and "Regressions" not in report
    assert len(fake.probes) == 3  # one probe per cell: the two models share it


def test_the_store_answers_a_second_run_until_an_input_file_changes(fake, tmp_path):
    first = go(tmp_path, "one")
    second = go(tmp_path, "two")
    assert len(fake.probes) == 3 and all(r["cached"] for r in second["results"])
    said = ("model", "cell", "status", "cause", "exception", "fix", "fix_worked", "attempts")
    words = [sorted(json.loads(json.dumps([[r[k] for k in said] for r in doc["results"]], default=str))) for doc in (first, second)]
    assert words[0] == words[1]  # word for word
    assert [(r["status"], r["cause"]) for r in second["results"]] == [(r["status"], r["cause"]) for r in go(tmp_path, "three")["results"]]
    (tmp_path / "custom_objects.py").write_text("class ResidualBlock: x = 1\n")  # same path, new content
    fourth = go(tmp_path, "four")
    assert len(fake.probes) == 6 and not any(r["cached"] for r in fourth["results"])
    assert go(tmp_path, "five", fresh=True)["results"] and len(fake.probes) == 9  # --fresh asks again


def test_against_the_previous_run_only_new_failures_are_regressions(fake, tmp_path):
    go(tmp_path, "one")
    fake.table = {**TABLE, ("dense.h5", "2.21.0"): fails("TypeError", "Could not locate class 'Dense'")}
    doc = go(tmp_path, "two", fail_on="regression", fresh=True)
    assert [(r["model"], r["cell"], r["why"]) for r in doc["gate"]["regressions"]] == [
        ("dense.h5", "py3.11-tensorflow2.21.0", "was loaded")
    ]
    assert doc["gate"]["failed"] and "Regressions" in (tmp_path / "two" / "report.md").read_text()


def test_an_interrupted_run_keeps_what_finished(fake, tmp_path):
    """-j 1: one cell at a time, in order; Ctrl-C in the third keeps the first two."""

    def interrupt(tensorflow: str) -> None:
        if tensorflow == "2.21.0":
            raise KeyboardInterrupt

    fake.before_probe = interrupt
    with pytest.raises(Interrupted):
        go(tmp_path, "cut", jobs=1)
    kept = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert kept["run"]["complete"] is False and kept["run"]["interrupted"] is True
    assert {r["cell"] for r in kept["results"]} == {"py3.11-tensorflow2.15.1", "py3.11-tensorflow2.16.2"}


def test_crossload_on_the_fake_backend_keeps_what_finished_on_ctrl_c(fake, tmp_path):
    from harness.crossload import crossload

    fake.saves = MODELS / "dense.h5"
    matrix = parse_matrix((tmp_path / "m.yaml").read_text(), tmp_path / "m.yaml")
    build = tmp_path / "build.py"
    build.write_text("# the fake backend copies a model instead of running this\n")
    doc = crossload(matrix, build, RunOptions(outdir=tmp_path / "grid", backend="fake", jobs=1))
    assert len(doc["results"]) == 9 and {r["status"] for r in doc["results"]} == {"loaded"}  # 3 saved files x 3 cells
    assert (tmp_path / "grid" / "crossload.md").exists()

    def interrupt(tensorflow: str) -> None:
        if tensorflow == "2.21.0":
            raise KeyboardInterrupt

    fake.before_probe = interrupt
    with pytest.raises(Interrupted):
        crossload(matrix, build, RunOptions(outdir=tmp_path / "cut", backend="fake", jobs=1))
    kept = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert kept["run"]["interrupted"] is True and kept["run"]["complete"] is False
    assert {r["cell"] for r in kept["results"]} == {"py3.11-tensorflow2.15.1", "py3.11-tensorflow2.16.2"}


def test_try_fixes_runs_legacy_cells_and_records_the_final_results_once(fake, tmp_path):
    """A Keras 2 file failing under Keras 3: tf-keras legacy mode is tried in a cell of its own,
    through the same loop; the report, results.json and the store hold the fixed results."""
    from harness.fixes import LEGACY_FIX
    from harness.store import Store

    fake.table = {**TABLE, ("residual_block.h5", "2.16.2+legacy"): fails("ValueError", UNKNOWN)}
    doc = go(tmp_path, "fixed", try_fixes=True)
    got = {r["cell"]: r for r in doc["results"] if r["model"] == "residual_block.h5"}
    fixed, still = got["py3.11-tensorflow2.21.0"], got["py3.11-tensorflow2.16.2"]
    assert (fixed["status"], fixed["fix_worked"], fixed["fixes_tried"]) == ("loaded-after-fix", LEGACY_FIX, (LEGACY_FIX,))
    assert (
        fixed["fix"]
        == "install tf-keras==2.21.0 and set TF_USE_LEGACY_KERAS=1 (proven: it loads in py3.11-tensorflow2.21.0-tf-keras2.21.0-legacy)"
    )
    assert fixed["recipe"]["proven"] is True and fixed["recipe"]["environment"]["env"] == {"TF_USE_LEGACY_KERAS": "1"}
    assert fixed["recipe"]["environment"]["pins"]["tf-keras"] == "2.21.0"
    assert still["status"] == "load-error" and still["detail"].endswith("tf-keras legacy mode did not load it either (load-error)")
    assert LEGACY_FIX not in got["py3.11-tensorflow2.15.1"]["fixes_tried"]  # Keras 2 already: nothing to try
    legacy = [p for p in fake.probes if p[1] == ("residual_block.h5",)]
    assert sorted(t for t, _ in legacy) == ["2.16.2", "2.21.0"]  # one legacy cell each, only the failed model
    assert json.loads((tmp_path / "fixed" / "results.json").read_text())["results"] == json.loads(json.dumps(doc["results"]))
    stored = Store(tmp_path / "store.sqlite").results(doc["run"]["store_run"])
    assert sorted((r["cell"], r["model"], r["status"]) for r in stored) == sorted(
        (r["cell"], r["model"], r["status"]) for r in doc["results"]
    )


def test_harness_run_with_no_arguments_in_a_configured_repository(fake, tmp_path, monkeypatch, capsys):
    from harness import cli

    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        "[tool.harness]\n"
        f'matrix = "m.yaml"\nmodels = ["{MODELS / "dense.h5"}"]\nbackend = "fake"\noutdir = "report"\n'
        'store = "store.sqlite"\nfail-on = "none"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0  # --fail-on none from the file
    out = capsys.readouterr().out
    assert f"defaults from {tmp_path / 'pyproject.toml'}" in out
    doc = json.loads((tmp_path / "report" / "results.json").read_text())
    assert {r["model"] for r in doc["results"]} == {"dense.h5"} and len(doc["results"]) == 3
    assert (tmp_path / "store.sqlite").exists()


def test_fail_fast_stops_at_the_first_failed_result(fake, tmp_path):
    doc = go(tmp_path, "ff", jobs=1, maxfail=1)  # -x; -j 1: in order; 2.15.1 loads, 2.16.2 fails
    assert {r["cell"] for r in doc["results"]} == {"py3.11-tensorflow2.15.1", "py3.11-tensorflow2.16.2"}
    # the next cell may have started meanwhile: it is stopped (a real one killed) and left out
    assert doc["run"]["complete"] is False and doc["gate"]["failed"]
    written = json.loads((tmp_path / "ff" / "results.json").read_text())
    assert len(written["results"]) == len(doc["results"])


def test_maxfail_counts_failed_results_and_a_bound_not_reached_runs_everything(fake, tmp_path):
    every = go(tmp_path, "all", jobs=1)
    failed = sum(r["status"] == "load-error" for r in every["results"])
    assert failed == 2 and every["run"]["complete"] is True
    stopped = go(tmp_path, "one", jobs=1, maxfail=1, fresh=True)
    assert stopped["run"]["complete"] is False and len(stopped["results"]) < len(every["results"])
    whole = go(tmp_path, "three", jobs=1, maxfail=failed + 1, fresh=True)
    assert whole["run"]["complete"] is True and len(whole["results"]) == len(every["results"])


def test_last_failed_with_no_earlier_run_runs_every_cell_as_pytest_does(fake, tmp_path):
    doc = go(tmp_path, "first", last_failed=True)  # no store yet: nothing recorded as failed
    assert len({r["cell"] for r in doc["results"]}) == 3 and doc["run"]["complete"] is True


def test_last_failed_runs_only_the_cells_that_failed_last_time(fake, tmp_path):
    first = go(tmp_path, "one")
    failed = {r["cell"] for r in first["results"] if r["status"] == "load-error"}
    assert failed == {"py3.11-tensorflow2.16.2", "py3.11-tensorflow2.21.0"}
    again = go(tmp_path, "again", last_failed=True, fresh=True)
    assert {r["cell"] for r in again["results"]} == failed and len(fake.probes) == 3 + 2
    with pytest.raises(Exception, match="--last-failed reads the result store"):
        run(
            parse_matrix((tmp_path / "m.yaml").read_text(), tmp_path / "m.yaml"),
            [MODELS / "dense.h5"],
            RunOptions(outdir=tmp_path / "x", backend="fake", store=None, last_failed=True),
        )


def test_pytest_habits_x_lf_durations_and_no_progress(fake, tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.chdir(tmp_path)
    argv = ["run", "m.yaml", str(MODELS / "residual_block.h5"), "--backend", "fake", "--store", str(tmp_path / "s.sqlite"), "-j", "1"]
    assert cli.main([*argv, "-o", "a", "-x"]) == 1
    said = capsys.readouterr().out
    assert "-x/--fail-fast: stopped at the first failure" in said
    assert cli.main([*argv, "-o", "b", "--lf", "--fresh", "--durations", "2", "--no-progress"]) == 1
    said = capsys.readouterr().out
    assert "slowest 1 cell(s)" in said and "running " not in said and "expanding the matrix" not in said
    doc = json.loads((tmp_path / "b" / "results.json").read_text())
    assert {r["cell"] for r in doc["results"]} == {"py3.11-tensorflow2.16.2"}  # -x stopped run 1 there: its one failed cell


def test_quiet_prints_the_end_and_verbose_every_attempt(fake, tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.chdir(tmp_path)
    argv = ["run", "m.yaml", str(MODELS / "residual_block.h5"), "--backend", "fake", "--no-store", "-o"]
    assert cli.main([*argv, "quiet", "-q"]) == 1
    quiet = capsys.readouterr().out
    assert "results in" in quiet and "fails:" in quiet
    assert "expanding the matrix" not in quiet and "load-error py3.11" not in quiet and "┃ cell" not in quiet
    assert cli.main([*argv, "loud", "-v"]) == 1
    loud = capsys.readouterr().out
    assert "custom_objects: loaded" in loud and "as is: ValueError: Unknown layer" in loud


def test_json_puts_the_document_alone_on_stdout(fake, tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.chdir(tmp_path)
    argv = ["run", "m.yaml", str(MODELS / "dense.h5"), "--backend", "fake", "--no-store", "-o", "out", "--json"]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # its workflow commands must not end up in the document's stream
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # nothing but the document
    assert doc["schema"] == "harness-results" and len(doc["results"]) == 3
    assert "dense.h5" in (tmp_path / "summary.md").read_text()  # the step summary was still written
    assert doc["results"] == json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert cli.main(["report", "out/results.json", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == doc["results"]
