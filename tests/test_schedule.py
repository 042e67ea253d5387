"""The generated CI files, validated and run: the very commands they contain, on a real matrix.

The GitHub workflow is checked against the workflow schema (check-jsonschema's vendored
copy of SchemaStore's), then executed job by job on this machine: every `run:` step in
bash as written (after substituting `${{ matrix.shard }}`), every `uses:` step by a
small stand-in for that action (checkout copies the repository, the artifact and cache
actions copy folders). Each job gets its own working folder, as each GitHub job gets its
own machine. The merged report must equal an unsharded run's, and a second scheduled
run must reuse every result through the restored store and show the trend.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import cli

REPO = Path(__file__).resolve().parent.parent
MATRIX = """\
name: scheduled
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
packages:
  tensorflow: tensorflow-cpu
"""
KNOWN_ACTIONS = (
    "actions/checkout@",
    "actions/setup-python@",
    "actions/cache@",
    "actions/cache/restore@",
    "actions/cache/save@",
    "actions/upload-artifact@",
    "actions/download-artifact@",
)


def validate(path: Path, schema: str) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run([str(checker), "--builtin-schema", schema, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


class Runner:
    """Runs one workflow's jobs here, with stand-ins for the actions it uses."""

    def __init__(self, root: Path, repo: Path, env: dict[str, str]):
        self.root, self.repo, self.env = root, repo, env
        self.artifacts = root / "artifacts"
        self.caches = root / "caches"
        self.run_id = 0
        self.log: list[tuple[str, str, int]] = []  # (job, step, exit code)
        self.uv_keys: list[str] = []  # the keys uv's cache was looked up by

    def expand(self, text: str, context: dict[str, str], work: Path | None = None) -> str:
        def value(m: re.Match[str]) -> str:
            hashed = re.fullmatch(r"hashFiles\('([^']+)'\)", m.group(1))
            if hashed:  # as GitHub's: a digest of the files' contents
                assert work is not None
                return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(work.glob(hashed.group(1))))).hexdigest()
            return context[m.group(1)]

        out = re.sub(r"\$\{\{\s*([\w.]+|hashFiles\('[^']+'\))\s*\}\}", value, text)
        assert "${{" not in out, f"an expression the stand-in runner does not know: {text}"
        return out

    def run_workflow(self, workflow: dict[str, Any]) -> dict[str, int]:
        self.run_id += 1
        codes = {}
        for job_id, job in workflow["jobs"].items():  # jobs are listed in dependency order
            values = job.get("strategy", {}).get("matrix", {}).get("shard", [None])
            for shard in values:
                context = {"github.workflow": "wf", "github.run_id": str(self.run_id), "runner.os": "Linux"}
                if shard is not None:
                    context["matrix.shard"] = str(shard)
                name = f"{job_id}-{shard}" if shard is not None else job_id
                codes[name] = self.run_job(name, job["steps"], context)
        return codes

    def run_job(self, name: str, steps: list[dict[str, Any]], context: dict[str, str]) -> int:
        work = self.root / f"run{self.run_id}" / name
        work.mkdir(parents=True)
        summary = work.parent / f"{name}.summary.md"
        failed = 0
        self.post: list[tuple[str, dict[str, str]]] = []
        for step in steps:
            if failed and step.get("if") != "!cancelled()":  # nothing here cancels, so !cancelled() is always true
                continue
            if "run" in step:
                command = self.expand(step["run"], context)
                env = {**self.env, "GITHUB_STEP_SUMMARY": str(summary)}
                code = subprocess.run(["bash", "-e", "-c", command], cwd=work, env=env).returncode
            else:
                code = self.use(step["uses"], {k: self.expand(str(v), context, work) for k, v in step.get("with", {}).items()}, work)
            self.log.append((name, step.get("name") or step.get("uses") or "", code))
            failed = failed or code
        for action, given in self.post:  # actions/cache saves at the end of the job, when its key was not found
            self.use(action, given, work)
        return failed

    def use(self, action: str, given: dict[str, str], work: Path) -> int:
        assert action.startswith(KNOWN_ACTIONS), f"a stand-in is missing for {action}"
        if action.startswith("actions/checkout@"):
            shutil.copytree(self.repo, work, dirs_exist_ok=True)
        elif action.startswith("actions/setup-python@"):
            assert given["python-version"].split()[-1] == f"{sys.version_info.major}.{sys.version_info.minor}"
        elif action.startswith("actions/cache@"):  # restore now (by key, then prefix); save in the job's post step
            self.use("actions/cache/restore@", given, work)
            if not (self.caches / given["key"]).exists():
                self.post.append(("actions/cache/save@", {"key": given["key"], "path": given["path"]}))
            self.uv_keys.append(given["key"])
        elif action.startswith("actions/cache/restore@"):
            keys = sorted(
                (p for p in self.caches.glob("*") if p.name == given["key"] or p.name.startswith(given["restore-keys"])),
                key=os.path.getmtime,
            )
            if keys:
                shutil.copytree(keys[-1], work / given["path"], dirs_exist_ok=True)
        elif action.startswith("actions/cache/save@"):
            if (work / given["path"]).exists() and not (self.caches / given["key"]).exists():  # keys are immutable
                shutil.copytree(work / given["path"], self.caches / given["key"])
        elif action.startswith("actions/upload-artifact@"):
            source = work / given["path"]
            if not source.exists():
                return 0 if given.get("if-no-files-found", "warn") != "error" else 1
            shutil.copytree(source, self.artifacts / f"run{self.run_id}" / given["name"])
        elif action.startswith("actions/download-artifact@"):
            for artifact in sorted((self.artifacts / f"run{self.run_id}").iterdir()):
                if fnmatch.fnmatch(artifact.name, given["pattern"]):
                    shutil.copytree(artifact, work / given["path"] / artifact.name)
        return 0


def comparable(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A results document's outcomes, without what differs between any two runs (times, stderr)."""
    return sorted(
        (r["model"], r["cell"], r["status"], (r.get("exception") or {}).get("type"), r.get("cause"), r.get("fix"), r.get("attribute_error"))
        for r in doc["results"]
    )


def markdown_body(path: Path) -> str:
    return markdown_body_text(path.read_text())


def markdown_body_text(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("<sub>")).rstrip("\n")


@pytest.mark.e2e
def test_generated_github_workflow_runs_sharded_and_merges_like_an_unsharded_run(tmp_path, saved_models, harness_cache, work_root, capsys):
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "matrix.yaml").write_text(MATRIX)
    for name in ("dense.h5", "residual_block.h5"):
        shutil.copy(saved_models[name], repo / "models" / name)

    # harness schedule, from the repository root as a user would
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        code = cli.main(
            [
                "schedule",
                "matrix.yaml",
                "models/dense.h5",
                "models/residual_block.h5",
                "--shards",
                "2",
                "--install",
                str(REPO),
                "--cron",
                "0 6 * * 1",
            ]
        )
        assert code == 0
        assert cli.main(["schedule", "matrix.yaml", "models/dense.h5", "--shards", "2", "--format", "gitlab", "--install", str(REPO)]) == 0
        assert "include:\n  - local: .gitlab/harness.yml" in capsys.readouterr().out
    finally:
        os.chdir(cwd)
    workflow_path = repo / ".github" / "workflows" / "harness.yml"
    validate(workflow_path, "vendor.github-workflows")
    validate(repo / ".gitlab" / "harness.yml", "vendor.gitlab-ci")

    workflow = yaml.safe_load(workflow_path.read_text())
    triggers = workflow["on"]  # written quoted, so YAML 1.1 readers do not take it for a boolean
    assert triggers["schedule"] == [{"cron": "0 6 * * 1"}] and "workflow_dispatch" in triggers
    shard, report = workflow["jobs"]["shard"], workflow["jobs"]["report"]
    assert shard["strategy"]["matrix"]["shard"] == [1, 2] and shard["strategy"]["fail-fast"] is False
    assert report["needs"] == "shard" and report["if"] == "!cancelled()"
    uses = [s.get("uses", "").split("@")[0] for s in shard["steps"] + report["steps"]]
    assert {
        "actions/cache",
        "actions/cache/restore",
        "actions/upload-artifact",
        "actions/download-artifact",
        "actions/cache/save",
    } <= set(uses)
    runs = [s["run"] for s in shard["steps"] + report["steps"] if "run" in s]
    assert any("--shard ${{ matrix.shard }}/2 --fail-on none" in r for r in runs)
    assert any(r.startswith("harness merge") and "--fail-on regression" in r for r in runs)
    assert any("--sandbox bwrap" in r for r in runs) and any("apt-get install -y -q bubblewrap" in r for r in runs)
    uv_cache = next(s for s in shard["steps"] if s.get("uses", "").startswith("actions/cache@"))["with"]
    assert uv_cache["path"] == "~/.cache/uv" and "hashFiles('harness-cells.json')" in uv_cache["key"]

    # a runner machine: a fresh venv where the workflow's own install step puts harness
    venv = work_root / "workflow-runner"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_STORE", "VIRTUAL_ENV")}
    # as on GitHub: harness run and merge see GITHUB_ACTIONS and write the step summary themselves
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", HARNESS_CACHE_DIR=str(harness_cache), PIP_QUIET="1", GITHUB_ACTIONS="true")
    runner = Runner(tmp_path / "ci", repo, env)

    codes = runner.run_workflow(workflow)
    # no reference yet (no baseline, no earlier run): residual_block's failures count, the merge step fails
    assert codes == {"shard-1": 0, "shard-2": 0, "report": 1}, runner.log
    assert [step for job, step, code in runner.log if code] == ["Merge the shards (fails on: regression)"]
    merged = tmp_path / "ci" / "run1" / "report" / "harness-report"
    summary = (tmp_path / "ci" / "run1" / "report.summary.md").read_text()
    assert markdown_body_text(summary) == markdown_body(merged / "report.md") and "residual_block.h5" in summary
    for k in (1, 2):  # a shard's summary is one line, marked partial
        said = (tmp_path / "ci" / "run1" / f"shard-{k}.summary.md").read_text()
        assert said.startswith(f"**harness: shard {k}/2** ran 2 results") and "partial" in said and said.count("\n") == 2
    shards = [json.loads((tmp_path / "ci" / "run1" / f"shard-{k}" / f"harness-shard-{k}" / "results.json").read_text()) for k in (1, 2)]
    assert [len(s["cells"]) for s in shards] == [1, 1] and shards[0]["cells"][0]["id"] != shards[1]["cells"][0]["id"]

    # the same matrix unsharded, with the same gate and an empty store: the same report
    alone = tmp_path / "alone"
    shutil.copytree(repo, alone)
    done = subprocess.run(
        ["harness", "run", "matrix.yaml", "models/dense.h5", "models/residual_block.h5", "--fail-on", "regression", "-o", "out"],
        cwd=alone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    merged_doc = json.loads((merged / "results.json").read_text())
    alone_doc = json.loads((alone / "out" / "results.json").read_text())
    assert comparable(merged_doc) == comparable(alone_doc)
    assert [c["id"] for c in merged_doc["cells"]] == [c["id"] for c in alone_doc["cells"]]
    assert markdown_body(merged / "report.md") == markdown_body(alone / "out" / "report.md")
    statuses = {(r["model"], r["cell"]): r["status"] for r in merged_doc["results"]}
    assert statuses == {
        ("dense.h5", "py3.11-tensorflow2.15.1"): "loaded",
        ("dense.h5", "py3.11-tensorflow2.21.0"): "loaded",
        ("residual_block.h5", "py3.11-tensorflow2.15.1"): "load-error",
        ("residual_block.h5", "py3.11-tensorflow2.21.0"): "load-error",
    }

    # next week's run: the store comes back from the cache, nothing changed
    codes = runner.run_workflow(workflow)
    assert codes == {"shard-1": 0, "shard-2": 0, "report": 0}, runner.log  # the failures are the previous run's: accepted
    # uv's cache was looked up by the cells' locks, one key per shard (each saves its own wheels), the same in both runs
    assert len(runner.uv_keys) == 4 and runner.uv_keys[:2] == runner.uv_keys[2:] and len(set(runner.uv_keys)) == 2
    assert [k.startswith(f"harness-uv-Linux-shard{n}-") for k, n in zip(runner.uv_keys, (1, 2, 1, 2), strict=True)] == [True] * 4
    cells = json.loads((tmp_path / "ci" / "run2" / "shard-1" / "harness-cells.json").read_text())
    assert {c["id"] for c in cells} == {"py3.11-tensorflow2.15.1", "py3.11-tensorflow2.21.0"} and all(c["lock"] for c in cells)
    second = tmp_path / "ci" / "run2" / "report" / "harness-report"
    doc = json.loads((second / "results.json").read_text())
    assert all(r.get("cached") for r in doc["results"])  # every shard reused the stored results
    assert doc["gate"]["reference"].startswith("run 1 ") and not doc["gate"]["regressions"]
    assert [h["id"] for h in doc["history"]["runs"]] == [1]
    assert doc["history"]["trend"]["residual_block.h5"]["py3.11-tensorflow2.21.0"] == [{"status": "load-error", "exception": "ValueError"}]
    html = (second / "report.html").read_text()
    assert html.count('<span class="trend">') == 4 and "passes (no regression against run 1" in html


def publish(index: Path, version: str) -> None:
    """Put a tiny real wheel of `harness-canary` on a local PEP 503 index (as a new upstream release)."""
    name, dist = "harness-canary", f"harness_canary-{version}"
    folder = index / name
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    files = {
        "harness_canary/__init__.py": f"__version__ = '{version}'\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f"{dist}.dist-info/RECORD", "".join(f"{p},,\n" for p in files) + f"{dist}.dist-info/RECORD,,\n")
    links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in sorted(folder.glob("*.whl")))
    (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    (index / "index.html").write_text(f'<!DOCTYPE html><html><body><a href="{name}/">{name}</a></body></html>\n')


@pytest.mark.e2e
def test_a_new_release_adds_a_cell_marked_new_without_editing_the_matrix(tmp_path, saved_models, harness_cache, monkeypatch, capsys):
    index = tmp_path / "index"
    publish(index, "1.0.0")
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX.replace('["2.15.1", "2.21.0"]', '["2.15.1"]\n  harness-canary: [">=1.0"]'))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", index.as_uri())
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    models = [str(saved_models["dense.h5"]), str(saved_models["residual_block.h5"])]

    assert cli.main(["run", str(matrix), *models, "-o", str(tmp_path / "week1")]) == 1  # residual_block fails: --fail-on any
    first = json.loads((tmp_path / "week1" / "results.json").read_text())
    assert [c["id"] for c in first["cells"]] == ["py3.11-tensorflow2.15.1-harness-canary1.0.0"]
    assert not any(c.get("new") for c in first["cells"])  # nothing to compare with yet

    publish(index, "1.1.0")  # upstream releases; nobody edits the matrix
    capsys.readouterr()
    assert cli.main(["run", str(matrix), *models, "-o", str(tmp_path / "week2"), "--refresh", "--fail-on", "regression"]) == 1
    out = capsys.readouterr().out
    second = json.loads((tmp_path / "week2" / "results.json").read_text())
    cells = {c["id"]: c for c in second["cells"]}
    assert list(cells) == ["py3.11-tensorflow2.15.1-harness-canary1.0.0", "py3.11-tensorflow2.15.1-harness-canary1.1.0"]
    assert cells["py3.11-tensorflow2.15.1-harness-canary1.1.0"]["new_versions"] == {"harness-canary": "1.1.0"}
    assert not cells["py3.11-tensorflow2.15.1-harness-canary1.0.0"].get("new")
    assert {(r["model"], r["cell"]): (r["status"], bool(r.get("cached"))) for r in second["results"]} == {
        ("dense.h5", "py3.11-tensorflow2.15.1-harness-canary1.0.0"): ("loaded", True),
        ("dense.h5", "py3.11-tensorflow2.15.1-harness-canary1.1.0"): ("loaded", False),
        ("residual_block.h5", "py3.11-tensorflow2.15.1-harness-canary1.0.0"): ("load-error", True),
        ("residual_block.h5", "py3.11-tensorflow2.15.1-harness-canary1.1.0"): ("load-error", False),
    }
    # the old cell's failure is the previous run's (accepted); the new release's failure is a regression
    assert [(r["model"], r["cell"], r["why"]) for r in second["gate"]["regressions"]] == [
        ("residual_block.h5", "py3.11-tensorflow2.15.1-harness-canary1.1.0", "new cell: not in the reference")
    ]
    assert "harness-canary==1.1.0" in cells["py3.11-tensorflow2.15.1-harness-canary1.1.0"]["lock"]
    assert "new releases since the last run: harness-canary 1.1.0 (1 new cell)" in out
    assert "New releases since the last run: harness-canary 1.1.0" in (tmp_path / "week2" / "report.md").read_text()
    assert cli.main(["diff", "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert [c["cell"] for c in diff["new_cells"]] == ["py3.11-tensorflow2.15.1-harness-canary1.1.0"] * 2

    # the team accepts this week's outcomes; the next run passes against that baseline, all from the store
    baseline = tmp_path / "harness-baseline.json"
    assert cli.main(["baseline", str(tmp_path / "week2" / "results.json"), "-o", str(baseline)]) == 0
    assert cli.main(["run", str(matrix), *models, "-o", str(tmp_path / "week3"), "--baseline", str(baseline)]) == 0
    third = json.loads((tmp_path / "week3" / "results.json").read_text())
    assert third["gate"]["fail_on"] == "regression" and third["gate"]["reference"] == f"baseline {baseline}"
    assert all(r.get("cached") for r in third["results"])
    # had residual_block.h5 been accepted as loading where it fails, the gate would say so (baseline edited by hand)
    accepted = json.loads(baseline.read_text())
    accepted["accepted"]["residual_block.h5"]["py3.11-tensorflow2.15.1-harness-canary1.0.0"]["status"] = "loaded"
    baseline.write_text(json.dumps(accepted))
    assert cli.main(["run", str(matrix), *models, "-o", str(tmp_path / "week4"), "--baseline", str(baseline)]) == 1
    assert "regression: residual_block.h5 @ py3.11-tensorflow2.15.1-harness-canary1.0.0: load-error ValueError (was loaded)" in (
        capsys.readouterr().out
    )
