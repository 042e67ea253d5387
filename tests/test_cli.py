"""The command line: help, exit codes, cells/inspect/dry-run, and Ctrl-C during a real run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import become_subreaper, default_sigint, live_children

from harness import cli

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "examples" / "models"


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes:" in out and "harness run matrices/seed-article.yaml" in out


def test_one_function_decides_every_exit_code():
    """What a command returns or raises -> the process's code; the help lists the same table."""
    import sqlite3

    from harness import errors, exits

    def doc(**gate) -> dict:
        return {"run": {}, "gate": {"failed": False, "untested": False, **gate}, "results": []}

    assert [exits.exit_code(d) for d in (doc(), doc(failed=True), doc(untested=True))] == [0, 1, 5]
    assert exits.exit_code({"run": {"missing_shards": [2]}, "gate": {"failed": False}}) == 1  # a partial merge never passes
    assert [exits.exit_code(v) for v in (exits.PASSED, exits.Verdict(failed=True))] == [0, 1]
    raised = [errors.UsageError("x"), errors.NothingToDo("x"), errors.BackendUnavailable("x"), errors.InfraUnavailable("x")]
    assert [exits.exit_code(e) for e in raised] == [2, 3, 4, 5]
    assert [exits.exit_code(e) for e in (KeyboardInterrupt(), sqlite3.OperationalError("full"), RuntimeError("bug"))] == [130, 1, 70]
    assert all(f"  {code:<4} " in exits.epilog() for code in exits.MEANINGS)


def test_every_command_is_a_module_with_a_parser_and_a_main():
    """cli.py only parses and dispatches: each command's parser sets its module's main."""
    from harness.commands import COMMANDS

    parser = cli.build_parser()
    modules = {c.__name__.rpartition(".")[2]: c for c in COMMANDS}
    listed = {a.dest for a in parser._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    assert listed == set(modules)  # one parser per module, named after it
    assert parser.parse_args(["history"]).main is modules["history"].main
    assert parser.parse_args(["report", "r.json"]).main is modules["report"].main


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_inspect_json_and_exit_code_for_corrupt(tmp_path, capsys):
    assert cli.main(["inspect", "--json", str(MODELS / "residual_block.h5")]) == 0
    [facts] = json.loads(capsys.readouterr().out)
    assert facts["custom"] == ["ResidualBlock"] and facts["keras_version"] == "2.15.0"
    cut = tmp_path / "cut.h5"
    cut.write_bytes((MODELS / "dense.h5").read_bytes()[:4000])
    assert cli.main(["inspect", str(cut)]) == 1
    assert "truncated HDF5 file" in capsys.readouterr().out


@pytest.mark.e2e
def test_cells_and_dry_run_resolve_without_building(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["cells", "--json", str(REPO / "matrices" / "seed-article.yaml")]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["py3.11-tensorflow2.14.0"]["lock"]["numpy"].startswith("2.")  # what makes its import fail
    override = rows["py3.11-tensorflow2.15.1-numpy2.1.3-override"]
    assert override["overridden"] and override["lock"]["numpy"] == "2.1.3"
    assert (
        cli.main(
            [
                "run",
                str(REPO / "matrices" / "quickstart.yaml"),
                str(MODELS / "dense.h5"),
                "--dry-run",
                "--only",
                "*2.15*",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "py3.11-tensorflow2.15.1" in out and "dry run" in out
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache" / "envs").exists()
    assert (
        cli.main(
            ["run", str(REPO / "matrices" / "quickstart.yaml"), str(MODELS / "dense.h5"), "--only", "nomatch*", "-o", str(tmp_path / "o")]
        )
        == 3
    )


@pytest.mark.e2e
def test_ctrl_c_keeps_finished_results_and_leaves_no_process(tmp_path, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        'matrix:\n  tensorflow: ["2.15.1"]\n  env: [{HARNESS_TEST_SLEEP: "0"}, {HARNESS_TEST_SLEEP: "600"}]\n'
        "packages: {tensorflow: tensorflow-cpu}\nload: {timeout: 900}\n"
    )
    become_subreaper()  # whatever the run leaves behind becomes our child
    out = tmp_path / "out"
    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache)}
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(matrix), str(saved_models["slow_lambda.h5"]), "-o", str(out), "-j", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        results = out / "results.json"
        if results.exists() and json.loads(results.read_text())["results"]:
            break
        assert child.poll() is None, child.communicate()
        time.sleep(0.5)
    time.sleep(1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert b"interrupted" in err
    doc = json.loads((out / "results.json").read_text())
    assert (doc["run"]["complete"], doc["run"]["interrupted"]) == (False, True)
    said = [(r["cell"], r["status"], r.get("detail"), (r.get("stderr_tail") or "")[-2000:]) for r in doc["results"]]
    assert [r["status"] for r in doc["results"]] == ["loaded"], said  # what a failure was, in the CI log
    assert (out / "report.html").exists() and "Partial report" in (out / "report.md").read_text()
    assert live_children() == {}


def test_gc_removes_environments_unused_for_days(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    envs = tmp_path / "envs"
    for name, age_days in (("old", 40), ("recent", 1)):
        (envs / name).mkdir(parents=True)
        marker = envs / name / "harness-env.json"
        marker.write_text("{}")
        stamp = time.time() - age_days * 86400
        os.utime(marker, (stamp, stamp))
    (envs / ".building-x").mkdir()  # a build in progress is never touched
    assert cli.main(["gc", "--older-than", "30"]) == 0
    assert sorted(p.name for p in envs.iterdir()) == [".building-x", "recent"]
    assert cli.main(["gc", "--all"]) == 0
    assert sorted(p.name for p in envs.iterdir()) == [".building-x"]
    assert "removed 1 environment(s)" in capsys.readouterr().out


@pytest.mark.parametrize("traceback", [False, True])
def test_index_credentials_are_never_printed(tmp_path, monkeypatch, capsys, traceback):
    """An index URL with a password that cannot be reached (nothing listens on port 9 of loopback)."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tf-keras: ["2.15"]\n')
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UV_INDEX_URL", "https://user:s3cret-token@127.0.0.1:9/simple")
    code = cli.main(["--traceback", "cells", str(matrix)] if traceback else ["cells", str(matrix)])
    out, err = capsys.readouterr()
    assert code == 5  # the index could not be reached: nothing was tested
    assert "https://user:***@127.0.0.1:9/simple" in err
    assert "s3cret-token" not in out + err


def test_a_model_with_code_is_refused_where_nothing_contains_it(tmp_path, monkeypatch, capsys):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tf-keras: ["2.15"]\n')
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    code = cli.main(["run", str(matrix), str(MODELS / "lambda_layer.h5"), "-o", str(tmp_path / "out"), "--sandbox", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert "lambda_layer.h5: carries Python code that runs when it loads, and cells are not sandboxed here" in err
    assert "--trust-models" in err and not (tmp_path / "out").exists()


def test_every_command_that_loads_refuses_code_where_nothing_contains_it(tmp_path, monkeypatch, capsys):
    """One trust rule (harness/request.py) for every load: bisect asks before it lists a release."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("asked the network before refusing")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    code = cli.main(["bisect", str(MODELS / "lambda_layer.h5"), "--sandbox", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "lambda_layer.h5: carries Python code that runs when it loads" in err and "--trust-models" in err
    from harness.inspection import inspect_model
    from harness.request import refuse_untrusted

    refuse_untrusted("none", [inspect_model(MODELS / "lambda_layer.h5")], True, "")  # trusted: no refusal
    refuse_untrusted("bwrap", [inspect_model(MODELS / "lambda_layer.h5")], False, "")  # contained: no refusal


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs of our own (root only), unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_and_nothing_half_written(tiny_disk, capsys):
    (tiny_disk / "report.md").write_text("the previous report")
    code = cli.main(["report", str(REPO / "tests" / "data" / "seed-article-results.json"), "-o", str(tiny_disk)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "cannot write it (No space left on device); the previous version is kept" in err
    assert sorted(p.name for p in tiny_disk.iterdir() if p.name.startswith(".")) == []  # no half-written temporary file
    html = tiny_disk / "report.html"
    assert not html.exists() or html.read_text().rstrip().endswith("</html>")


def test_python_dash_m_harness_is_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("harness ")


def test_completion_in_a_real_bash_and_code_for_zsh_and_fish():
    """The code `harness completion bash` prints, loaded in bash, completes a flag of `run`
    (argcomplete calls harness back; the parser answers)."""
    import os
    import shutil
    import subprocess
    import sys

    harness = shutil.which("harness", path=os.path.dirname(sys.executable))
    assert harness, "the harness entry point beside this Python"
    script = (
        'eval "$(harness completion bash)"; COMP_WORDS=(harness run --fail-o); COMP_CWORD=2; '
        'COMP_LINE="harness run --fail-o"; COMP_POINT=${#COMP_LINE}; _python_argcomplete harness --fail-o run; echo "[${COMPREPLY[*]}]"'
    )
    env = {**os.environ, "PATH": f"{os.path.dirname(harness)}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[--fail-on ]", done.stderr
    for shell in ("zsh", "fish"):
        code = subprocess.run([harness, "completion", shell], capture_output=True, text=True, timeout=60)
        assert code.returncode == 0 and "_ARGCOMPLETE" in code.stdout and "harness" in code.stdout


def test_a_keras_backend_given_to_backend_is_said_to_be_one(capsys):
    """--backend picks where cells run; jax there is the keras-backend axis mistaken for it."""
    for command in (["run", "m.yaml", "x.h5"], ["migrate", "x.h5", "--to", "keras==3.15.1", "-o", "out"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main([*command, "--backend", "jax"])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "'jax' is a Keras backend; --backend picks where cells run" in err and "keras-backend: [jax]" in err


def test_keras_backend_joins_the_migrate_target_spec():
    from harness.errors import UsageError
    from harness.migrate import parse_spec, with_backend

    assert with_backend("keras==3.15.1", "jax") == "keras==3.15.1,keras-backend==jax"
    assert with_backend("keras==3.15.1,keras-backend==torch", "torch") == "keras==3.15.1,keras-backend==torch"
    assert with_backend("2.21", None) == "2.21"
    with pytest.raises(UsageError, match="names keras-backend torch, --keras-backend jax"):
        with_backend("keras==3.15.1,keras-backend==torch", "jax")
    with pytest.raises(UsageError, match="unknown Keras backend 'mxnet'"):
        parse_spec("keras==3.15.1,keras-backend==mxnet")
