"""Documents are data (harness/schema.py): a results.json, shard or baseline from someone else's
CI, crafted, through every command that reads one (report, merge, baseline, repro). The worst a
crafted document gets is a one-line error naming the field; nothing is run, nothing is written
outside -o, no host file is copied, no path or template of the document's is opened.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_pipeline import fake, go  # noqa: F401 - the fake backend's fixture and its run

from harness import cli
from harness.schema import DocumentError, check_result, check_results

SECRET = "s3cret-of-the-host-7f0c"
STARTERS = {name: getattr(subprocess, name) for name in ("Popen", "run", "call", "check_output")}


@pytest.fixture
def real_doc(fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:  # noqa: F811 - the fixture imported above
    """A results.json the harness wrote (the fake backend's run of two real example models); then
    processes may start again (the fake's guard is for the run, the tests here start the CLI)."""
    go(tmp_path, "made")
    for name, real in STARTERS.items():
        monkeypatch.setattr(subprocess, name, real)
    return json.loads((tmp_path / "made" / "results.json").read_text())


def deep(n: int) -> str:
    return "[" * n + "]" * n


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


# name -> a change to a real document; each must end in a one-line error that names the field
CRAFTED: dict[str, Callable[[dict[str, Any]], None]] = {
    "results a string": _set("results", "x"),
    "schema_version a string": _set("schema_version", "1"),
    "schema_version newer": _set("schema_version", 99),
    "model name a number": _set("results.0.model", 5),
    "cell id a number": _set("results.0.cell", 7),
    "message a number": _set("results.1.detail", 3),
    "unknown status": _set("results.0.status", "pwned"),
    "unknown cause": _set("results.0.cause", "a-cause"),
    "absolute model name": _set("models.0.name", "/abs/x.h5"),
    "model name climbing out": _set("models.0.name", "../../x.h5"),
    "model name ..": _set("models.0.name", ".."),
    "cell id with a newline": _set("cells.0.id", "py3.11\nRUN curl http://127.0.0.1:9/"),
    "cell id climbing out": _set("cells.0.id", "../x"),
    "python with a newline": _set("cells.0.python", "3.11\nRUN cat /etc/shadow"),
    "lock line an option": _set("cells.0.lock", ["--index-url", "http://127.0.0.1:9/simple"]),
    "lock line with a newline": _set("cells.0.lock", ["numpy==1.26.4\nRUN id"]),
    "base image with a newline": _set("run.docker", {"base_image": "python:3.11\nRUN id", "template": "default"}),
    "base image formatting code": _set("run.docker", {"base_image": "{python.__class__}", "template": "default"}),
    "memory as a command": _set("run.docker", {"memory": "4g; rm -rf /", "template": "default"}),
    "a billion shards": _set("run.shard", {"index": 1, "count": 10**9}),
    "result of an unknown model": _set("results.0.model", "other.h5"),
    "result of an unknown cell": _set("results.0.cell", "py3.11-other"),
    "max_abs as text": _set("results.0.output_diff", {"reference": "x", "max_abs": "big", "max_rel": 0}),
    "env name with a space": _set("cells.0.env", {"A B": "1"}),
    "free value nested 40 deep": _set("results.0.inference", json.loads(deep(40))),
    "a message of 2 MB": _set("results.0.detail", "x" * (2 << 20)),
    "attempts a dict": _set("results.0.attempts", {"fix": "x"}),
    "status null": _set("results.0.status", None),
}


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    return lines[0]


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_document_is_a_one_line_error_everywhere(name, real_doc, tmp_path, capsys):
    doc = copy.deepcopy(real_doc)
    CRAFTED[name](doc)
    path = tmp_path / "crafted" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    before = set(tmp_path.rglob("*"))
    for argv in (
        ["report", str(path), "-o", str(tmp_path / "r")],
        ["merge", str(path), "-o", str(tmp_path / "m"), "--no-store"],
        ["baseline", str(path), "-o", str(tmp_path / "b.json")],
        ["repro", str(path), "py3.11-tensorflow2.15.1", "-o", str(tmp_path / "p")],
    ):
        line = _one_line_error(argv, capsys)
        assert str(path) in line
    assert set(tmp_path.rglob("*")) - before == set()  # nothing written, anywhere


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "not a readable results file"),
        (b"\xff\xfe", "not UTF-8"),
        (deep(100_000).encode(), "nested deeper"),
        (b'{"schema": "harness-results", "schema_version": 1, "results": ', "not a readable results file"),
        (b"[1, 2, 3]", "not a harness results file"),
        (b'{"schema": "other"}', "not a harness results file"),
    ],
)
def test_what_is_no_document_at_all(content, words, tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    assert words in _one_line_error(["report", str(path), "-o", str(tmp_path / "r")], capsys)


def test_a_fifo_or_a_device_is_never_opened(tmp_path, capsys):
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    assert "is a FIFO" in _one_line_error(["report", str(fifo), "-o", str(tmp_path / "r")], capsys)
    assert "is a device" in _one_line_error(["merge", "/dev/zero", "-o", str(tmp_path / "m"), "--no-store"], capsys)


def test_a_real_document_passes_and_keeps_only_what_the_harness_writes(real_doc):
    doc = copy.deepcopy(real_doc)
    doc["results"][0]["exception"] = {"type": "V\ud800", "message": "m", "injected": {"x": 1}}
    doc["unknown_section"] = deep(50)
    checked = check_results(doc)
    assert "unknown_section" not in checked and "injected" not in checked["results"][0]["exception"]
    assert checked["results"][0]["exception"]["type"] == "V\ufffd"  # a lone surrogate made writable
    assert check_results(real_doc)["results"] == real_doc["results"]  # what the harness wrote passes whole
    with pytest.raises(DocumentError, match=r"results\[0\]\.status: 'x' is not a status"):
        check_result({**real_doc["results"][0], "status": "x"}, "results[0]")


def test_a_store_row_that_is_not_ours_is_skipped(real_doc, tmp_path, capsys):
    import sqlite3

    store = tmp_path / "store.sqlite"  # the fake run's
    db = sqlite3.connect(store)
    db.execute("UPDATE results SET data = ? WHERE rowid = (SELECT MIN(rowid) FROM results)", (json.dumps({"status": "pwned"}),))
    db.execute("UPDATE results SET data = ? WHERE rowid = (SELECT MAX(rowid) FROM results)", (deep(5000),))
    db.commit()
    from harness.store import Store

    rows = Store(store).results(1)
    assert len(rows) == len(real_doc["results"]) - 2 and all(r["status"] != "pwned" for r in rows)
    assert cli.main(["history", "--store", str(store)]) == 0


# --------------------------------------------------------------------------- repro


def _with_lock(doc: dict[str, Any]) -> dict[str, Any]:
    """The fake run's document made one repro reads: its cells resolved to a plain lock."""
    doc = copy.deepcopy(doc)
    for cell in doc["cells"]:
        cell["lock"] = [f"tensorflow-cpu=={cell['pins']['tensorflow']}"]
    return doc


def test_repro_renders_no_template_and_copies_no_file_a_document_names(real_doc, tmp_path, capsys):
    canary = tmp_path / "PWNED"
    evil = tmp_path / "evil.Dockerfile.j2"
    evil.write_text("{{ cycler.__init__.__globals__.os.system('touch " + str(canary) + "') }}\nFROM x\n")
    secret = tmp_path / "secret.py"
    secret.write_text(f"KEY = '{SECRET}'\n")
    doc = _with_lock(real_doc)
    doc["run"]["docker"] = {"template": str(evil), "base_image": "python:{python}-slim"}
    doc["matrix"]["load"]["custom_objects"] = str(secret)
    doc["matrix"]["load"]["trusted"] = True  # trust is a decision of this command line, never a document's
    doc["models"][0]["path"] = str(secret)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    folder = tmp_path / "repro"
    assert cli.main(["repro", str(path), "py3.11-tensorflow2.15.1", "-o", str(folder)]) == 0
    assert not canary.exists()
    written = "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file())
    assert SECRET not in written and "cycler" not in written
    readme = (folder / "README.md").read_text()
    assert "pass --template FILE" in readme and "pass --custom-objects FILE" in readme and "pass --trust-models" in readme
    assert json.loads((folder / "request.json").read_text())["trusted"] is False
    # the model file is needed to copy it: taken from --model only, never from the document's path
    line = _one_line_error(["repro", str(path), "py3.11-tensorflow2.15.1", "-o", str(tmp_path / "c"), "--copy-model"], capsys)
    assert "pass --model PATH" in line
    # a template the user names is rendered in Jinja2's sandbox: the same payload is refused
    line = _one_line_error(["repro", str(path), "py3.11-tensorflow2.15.1", "-o", str(tmp_path / "t"), "--template", str(evil)], capsys)
    assert "cannot render the template" in line and not canary.exists()


def test_repro_writes_no_index_password_and_quotes_every_shell_word(real_doc, tmp_path, monkeypatch):
    monkeypatch.setenv("UV_INDEX_URL", f"https://user:{SECRET}@127.0.0.1:9/simple")
    doc = _with_lock(real_doc)
    doc["cells"][0]["env"] = {"HARNESS_X": "$(touch PWNED); `touch PWNED2` 'q' \"d\""}
    doc["models"][1]["name"] = doc["results"][1]["model"] = "a b;$(touch PWNED3).h5"
    for r in doc["results"]:
        if r["model"] == "dense.h5":
            r["model"] = "a b;$(touch PWNED3).h5"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    folder = tmp_path / "repro"
    assert cli.main(["repro", str(path), "py3.11-tensorflow2.15.1", "-o", str(folder)]) == 0
    assert SECRET not in "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file())
    assert "https://127.0.0.1:9/simple" in (folder / "Dockerfile").read_text()
    # the README's commands, with docker a shell function that prints its arguments: nothing in them runs
    readme = (folder / "README.md").read_text()
    script = readme.split("```bash\n")[1].split("```")[0]
    shown = subprocess.run(
        ["bash", "-c", "docker() { printf '%s\\n' \"$@\"; }; cat() { :; }\n" + script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    assert not any((folder / name).exists() for name in ("PWNED", "PWNED2", "PWNED3"))
    args = (folder / "result.jsonl").read_text().splitlines()
    assert "HARNESS_X=$(touch PWNED); `touch PWNED2` 'q' \"d\"" in args  # one word, as written
    assert any(re.fullmatch(r".*/model-1\.h5:/models/m1\.h5:ro", a) for a in args)  # an odd name gets a plain one


# --------------------------------------------------------------------------- merge


def test_merge_follows_no_link_a_shard_holds(real_doc, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    shard = tmp_path / "shard"
    (shard / "logs").mkdir(parents=True)
    (shard / "logs" / "py3.11-tensorflow2.15.1.log").symlink_to(secret)
    (shard / "logs" / "real.log").write_text("a log")
    os.mkfifo(shard / "logs" / "pipe.log")
    doc = copy.deepcopy(real_doc)
    doc["results"][0]["outputs"] = "anything"
    (shard / "outputs" / doc["results"][0]["model"]).mkdir(parents=True)
    (shard / "outputs" / doc["results"][0]["model"] / f"{doc['results'][0]['cell']}.npz").symlink_to(secret)
    (shard / "results.json").write_text(json.dumps(doc))
    assert cli.main(["merge", str(shard / "results.json"), "-o", str(tmp_path / "merged"), "--no-store"]) in (0, 1)
    merged = tmp_path / "merged"
    assert sorted(p.name for p in (merged / "logs").iterdir()) == ["real.log"]
    assert not (merged / "outputs").exists() or not any(p.is_file() for p in (merged / "outputs").rglob("*"))
    assert all(SECRET not in p.read_text(errors="replace") for p in merged.rglob("*") if p.is_file())
    assert json.loads((merged / "results.json").read_text())["results"][0]["outputs"] is None


def test_merge_of_an_unknown_shard_count_is_bounded(real_doc, tmp_path, capsys):
    doc = copy.deepcopy(real_doc)
    doc["run"]["shard"] = {"index": 1, "count": 100_000}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["merge", str(path), "-o", str(tmp_path / "m"), "--no-store", "--allow-missing"]) == 1
    assert json.loads((tmp_path / "m" / "results.json").read_text())["run"]["missing_shards"][-1] == 100_000


# --------------------------------------------------------------------------- a store that travelled


def test_the_same_bytes_under_two_names_are_two_results_under_their_own_names(fake, tmp_path):  # noqa: F811
    from harness.matrix import parse_matrix
    from harness.runner import RunOptions, run

    models = Path(__file__).resolve().parent.parent / "examples" / "models"
    for name in ("other.h5", "same_a.h5", "same_b.h5"):
        shutil.copyfile(models / "dense.h5", tmp_path / name)
    matrix = parse_matrix((tmp_path / "m.yaml").read_text(), tmp_path / "m.yaml")

    def names(out: str, *files: str) -> list[tuple[str, bool]]:
        options = RunOptions(outdir=tmp_path / out, backend="fake", store=tmp_path / "store.sqlite")
        doc = run(matrix, [tmp_path / f for f in files], options)
        return sorted({(r["model"], r["cached"]) for r in doc["results"]})

    assert names("one", "other.h5") == [("other.h5", False)]
    assert names("two", "same_a.h5", "same_b.h5") == [("same_a.h5", True), ("same_b.h5", True)]


def test_python_dash_m_harness_report_on_a_crafted_file_is_not_an_internal_error(real_doc, tmp_path):
    doc = copy.deepcopy(real_doc)
    doc["results"][0]["exception"] = {"type": "T[/]\x1b[2J", "message": "\n::error::x"}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    done = subprocess.run([sys.executable, "-m", "harness", "report", str(path), "-o", str(tmp_path / "o")], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert b"\x1b" not in done.stdout + done.stderr


def test_results_json_has_a_published_json_schema_that_a_standard_validator_applies(fake, tmp_path):  # noqa: F811
    """harness/results.schema.json (shipped in the package) is generated from the very checks the
    harness reads documents by; check-jsonschema, a consumer's own validator, accepts what the
    harness writes and refuses what the harness refuses."""
    import harness.schema as schema_module
    from harness.errors import UsageError
    from harness.schema import load_results, results_json_schema

    shipped = Path(schema_module.__file__).with_name("results.schema.json")
    assert json.loads(shipped.read_text()) == results_json_schema(), "regenerate harness/results.schema.json (see its test)"
    import jsonschema  # what check-jsonschema (a test dependency) validates with: a consumer's validator, not ours

    validator = jsonschema.Draft202012Validator(json.loads(shipped.read_text()))
    sample = Path(__file__).resolve().parent / "data" / "seed-article-results.json"
    go(tmp_path, "written")  # a results.json as harness run writes it (the fake backend's run)
    written = tmp_path / "written" / "results.json"

    def valid(path: Path) -> list[str]:
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(path.read_text()))]

    for good in (sample, written):
        assert valid(good) == []
    doc = json.loads(sample.read_text())
    for broken, field in (
        (lambda d: d["results"][3].update(status="pwned"), "results"),
        (lambda d: d["cells"][0].update(id="../../etc"), "cells"),
        (lambda d: d.pop("run"), "run"),
        (lambda d: d["results"][0].update(seconds="slow"), "seconds"),
    ):
        bad = copy.deepcopy(doc)
        broken(bad)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        assert valid(path), field
        with pytest.raises(UsageError):
            load_results(path)  # the harness refuses it too
