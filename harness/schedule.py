"""`harness schedule`: a CI file that runs the harness on a schedule, sharded.

GitHub Actions: a cron trigger (and a manual one), one job per shard running
`harness run --shard K/N --fail-on none` (a shard never decides), the shards' results
uploaded as artifacts, then one job that merges them with `harness merge`, writes the
report to the step summary, uploads it, and fails only per `--fail-on`. uv's cache is
kept by astral-sh/setup-uv; the result store (.harness/) travels between scheduled runs
through actions/cache, so unchanged cells are not run again, the trend has history and
`--fail-on regression` compares with the previous run when there is no baseline file.

GitLab CI: the same two stages (`parallel: N` shards, a merge job with the JUnit report);
GitLab keeps cron schedules outside the file, so the file runs on scheduled and manual
pipelines and its header says where to enter the cron line.

The files are built as data and dumped with PyYAML, so they are valid YAML by
construction; the tests validate them against the published schemas and run the
commands they contain.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .errors import UsageError
from .gate import FAIL_ON

FORMATS = ("github", "gitlab")
DEFAULT_OUTPUT = {"github": Path(".github/workflows/harness.yml"), "gitlab": Path(".gitlab-ci.yml")}
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?LW#]+$")


@dataclass(frozen=True)
class Schedule:
    matrix: Path
    models: tuple[Path, ...]
    cron: str = "0 6 * * 1"
    shards: int = 1
    fail_on: str = "regression"
    baseline: Path | None = None
    install: str = ""  # a pip requirement; see default_install()
    python: str = "3.11"
    backend: str = "uv"

    def shard_command(self, k: str, n: str, outdir: str) -> str:
        words = ["harness", "run", str(self.matrix), *map(str, self.models), "--shard", f"{k}/{n}", "--fail-on", "none", "-o", outdir]
        if self.backend != "uv":
            words += ["--backend", self.backend]
        return _join(words)

    def merge_command(self, results_glob: str) -> str:
        words = ["harness", "merge", "--allow-missing", "--fail-on", self.fail_on, "-o", "harness-report"]
        if self.baseline:
            words += ["--baseline", str(self.baseline)]
        return _join(words) + " " + results_glob  # the glob is left for the shell

    def install_command(self) -> str:
        """pip installs the harness; with the Docker backend, its docker extra too (docker-py)."""
        words = [self.install] if self.backend != "docker" else with_extra(self.install, "docker")
        return "python -m pip install " + " ".join(shlex.quote(w) for w in words)

    def command(self, fmt: str) -> str:
        """The `harness schedule` command that writes this file again."""
        words = ["harness", "schedule", str(self.matrix), *map(str, self.models), "--cron", self.cron, "--shards", str(self.shards)]
        words += ["--format", fmt, "--fail-on", self.fail_on, "--install", self.install, "--python", self.python]
        if self.baseline:
            words += ["--baseline", str(self.baseline)]
        if self.backend != "uv":
            words += ["--backend", self.backend]
        return shlex.join(words)

    def header(self, fmt: str) -> str:
        lines = [
            f"# Written by `{self.command(fmt)}` (harness {__version__}).",
            "# Run that command again to change it. Every cell's outcome, the trend and the regressions are in the",
            "# harness-report artifact" + (" and the run's summary page." if fmt == "github" else " and the pipeline's test report."),
        ]
        if fmt == "gitlab":
            lines.append(f"# GitLab keeps schedules outside this file: CI/CD > Schedules > New schedule, interval pattern '{self.cron}'.")
        return "\n".join(lines) + "\n"


def with_extra(requirement: str, extra: str) -> list[str]:
    """`harness @ git+…` -> `harness[docker] @ git+…`; a requirement pip reads but packaging does
    not (a local path) gets the extra's own package beside it."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return [requirement, "docker>=7"]
    parsed.extras.add(extra)
    return [str(parsed)]


def default_install() -> str | None:
    """Where this harness came from, as a requirement CI can install; None when CI could not reach it.

    Not `harness==VERSION`: another project owns the name "harness" on PyPI, and a CI file
    must never install a stranger's package by accident.
    """
    import importlib.metadata

    try:
        origin = json.loads(importlib.metadata.distribution("harness").read_text("direct_url.json") or "null")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    if isinstance(origin, dict) and origin.get("vcs_info", {}).get("vcs") == "git":
        commit = origin["vcs_info"].get("commit_id")
        return f"harness @ git+{origin['url']}" + (f"@{commit}" if commit else "")
    if isinstance(origin, dict) and origin.get("url", "").startswith(("https://", "http://")) and "archive_info" in origin:
        return f"harness @ {origin['url']}"
    return None  # a local folder or wheel: not on the CI runner


def check(schedule: Schedule, root: Path | None = None) -> Schedule:
    """Paths relative to the repository root (where CI checks out), a sane cron, a known gate."""
    root = (root or Path.cwd()).resolve()

    def relative(path: Path, what: str) -> Path:
        full = (root / path).resolve()
        if not full.exists():
            raise UsageError(f"{path}: no such {what}; give paths relative to the repository root, as CI checks it out")
        try:
            return full.relative_to(root)
        except ValueError:
            raise UsageError(f"{path}: outside {root}; CI only sees files in the repository, commit the {what} there") from None

    fields_ = schedule.cron.split()
    if len(fields_) != 5 or not all(_CRON_FIELD.match(f) for f in fields_):
        raise UsageError(
            f"--cron '{schedule.cron}': expected 5 fields (minute hour day month weekday), e.g. '0 6 * * 1' for Mondays 06:00 UTC"
        )
    if schedule.shards < 1 or schedule.shards > 256:
        raise UsageError(f"--shards {schedule.shards}: between 1 and 256 (GitHub runs at most 256 jobs per matrix)")
    if schedule.fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {schedule.fail_on}: choose one of {', '.join(FAIL_ON)}")
    matrix = relative(schedule.matrix, "matrix")
    models = tuple(relative(m, "model") for m in schedule.models)
    baseline = relative(schedule.baseline, "baseline file") if schedule.baseline else None
    install = schedule.install or default_install()
    if not install:
        raise UsageError(
            "--install: say what CI installs, e.g. --install 'harness @ git+https://github.com/your-org/harness@v0.1.0' "
            "(this harness came from a local folder, which CI cannot reach; the PyPI name 'harness' is another project)"
        )
    return Schedule(
        matrix,
        models,
        schedule.cron,
        schedule.shards,
        schedule.fail_on,
        baseline,
        install,
        schedule.python,
        schedule.backend,
    )


def github_workflow(s: Schedule) -> str:
    n = str(s.shards)
    store_key = "harness-store-${{ github.workflow }}"
    restore_store = {
        "name": "Restore the result store (unchanged cells are reused; history for trends and regressions)",
        "uses": "actions/cache/restore@v4",
        "with": {"path": ".harness", "key": store_key + "-${{ github.run_id }}", "restore-keys": store_key + "-"},
    }
    setup = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": s.python}},
        {
            "name": "Set up uv with its cache",
            "uses": "astral-sh/setup-uv@v6",
            "with": {"enable-cache": True, "cache-dependency-glob": str(s.matrix)},
        },
        restore_store,
        {"name": "Install harness", "run": s.install_command()},
    ]
    workflow: dict[str, Any] = {
        "name": f"Keras load compatibility ({s.matrix.stem})",
        "on": {"schedule": [{"cron": s.cron}], "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": "harness-${{ github.workflow }}", "cancel-in-progress": False},
        "jobs": {
            "shard": {
                "name": f"shard ${{{{ matrix.shard }}}}/{n}",
                "runs-on": "ubuntu-latest",
                "strategy": {"fail-fast": False, "matrix": {"shard": list(range(1, s.shards + 1))}},
                "steps": [
                    *setup,
                    {
                        "name": f"Load the models in shard ${{{{ matrix.shard }}}}/{n} of the cells",
                        "run": s.shard_command("${{ matrix.shard }}", n, "harness-shard-${{ matrix.shard }}"),
                    },
                    {
                        "name": "Upload the shard's results",
                        "if": "always()",
                        "uses": "actions/upload-artifact@v4",
                        "with": {
                            "name": "harness-shard-${{ matrix.shard }}",
                            "path": "harness-shard-${{ matrix.shard }}",
                            "if-no-files-found": "warn",
                        },
                    },
                ],
            },
            "report": {
                "name": "merged report",
                "needs": "shard",
                "if": "always()",
                "runs-on": "ubuntu-latest",
                "steps": [
                    *setup,
                    {
                        "name": "Download every shard's results",
                        "uses": "actions/download-artifact@v4",
                        "with": {"pattern": "harness-shard-*", "path": "harness-shards"},
                    },
                    {"name": f"Merge the shards (fails on: {s.fail_on})", "run": s.merge_command("harness-shards/*/results.json")},
                    {
                        "name": "Write the report to the step summary",
                        "if": "always()",
                        "run": 'cat harness-report/report.md >> "$GITHUB_STEP_SUMMARY"',
                    },
                    {
                        "name": "Upload the merged report",
                        "if": "always()",
                        "uses": "actions/upload-artifact@v4",
                        "with": {"name": "harness-report", "path": "harness-report"},
                    },
                    {
                        "name": "Save the result store",
                        "if": "always()",
                        "uses": "actions/cache/save@v4",
                        "with": {"path": ".harness", "key": store_key + "-${{ github.run_id }}"},
                    },
                ],
            },
        },
    }
    return s.header("github") + _dump(workflow)


def gitlab_ci(s: Schedule) -> str:
    rules = [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}, {"if": '$CI_PIPELINE_SOURCE == "web"'}]
    store = {"key": "harness-store", "paths": [".harness/"]}
    config: dict[str, Any] = {
        "stages": ["shard", "report"],
        "variables": {
            "UV_CACHE_DIR": "$CI_PROJECT_DIR/.uv-cache",
            "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.pip-cache",
            "HARNESS_STORE": "$CI_PROJECT_DIR/.harness/results.sqlite",
        },
        ".harness": {"image": f"python:{s.python}-bookworm", "before_script": [s.install_command()]},
        "harness-shard": {
            "extends": ".harness",
            "stage": "shard",
            "rules": rules,
            **({"parallel": s.shards} if s.shards > 1 else {}),
            "cache": [{"key": "harness-uv", "paths": [".uv-cache/", ".pip-cache/"]}, {**store, "policy": "pull"}],
            "script": [s.shard_command("${CI_NODE_INDEX:-1}", "${CI_NODE_TOTAL:-1}", "harness-shard-${CI_NODE_INDEX:-1}")],
            "artifacts": {"when": "always", "paths": ["harness-shard-*/"], "expire_in": "1 week"},
        },
        "harness-report": {
            "extends": ".harness",
            "stage": "report",
            "rules": [{**rule, "when": "always"} for rule in rules],
            "needs": [{"job": "harness-shard", "artifacts": True}],
            "cache": [{**store, "policy": "pull-push", "when": "always"}],
            "script": [s.merge_command("harness-shard-*/results.json")],
            "artifacts": {
                "when": "always",
                "paths": ["harness-report/"],
                "reports": {"junit": "harness-report/junit.xml"},
                "expire_in": "90 days",
            },
        },
    }
    return s.header("gitlab") + _dump(config)


def _join(words: Sequence[str]) -> str:
    """Shell words; CI expressions (`${{ matrix.shard }}`, `${CI_NODE_INDEX:-1}`) stay as written: CI or the shell fills them in."""
    return " ".join(word if "${" in word else shlex.quote(word) for word in words)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # shared steps are written out in full: no &id001 anchors for a reader to chase


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=200, default_flow_style=False)
