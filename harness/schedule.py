"""`harness schedule`: a CI file that runs the harness on a schedule, sharded.

GitHub Actions: a cron trigger (and a manual one), one job per shard running
`harness run --shard K/N --fail-on none` (a shard never decides), the shards' results
uploaded as artifacts, then one job that merges them with `harness merge`, writes the
report to the step summary, uploads it, and fails only per `--fail-on`. Every Python of
the matrix is set up. uv's cache is kept by actions/cache under a key made of the cells'
locks (`harness cells --json`), so it changes when a new release changes a lock; the
result store (.harness/) travels between scheduled runs the same way, so unchanged cells
are not run again, the trend has history and `--fail-on regression` compares with the
previous run when there is no baseline file. Actions are pinned by commit, with their
release in a comment; every job has a timeout; the report runs unless the run was
cancelled (`!cancelled()`, not `always()`).

GitLab CI: the same jobs (`parallel: N` shards, a merge job with the JUnit report) in a
file of their own, `.gitlab/harness.yml`, that the project's `.gitlab-ci.yml` includes:
the harness never rewrites a file it did not write. The jobs run in GitLab's default
`test` stage and set their variables on themselves, so including the file changes no
other job. GitLab keeps cron schedules outside the file; its header says where to enter
the cron line. With `--backend docker` the jobs get a Docker-in-Docker service.

The files are built as data and dumped with PyYAML, so they are valid YAML by
construction; the tests lint them with actionlint, validate them against the published
schemas and run the commands they contain.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
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
from .escape import shell_word, visible
from .gate import FAIL_ON

FORMATS = ("github", "gitlab")
DEFAULT_OUTPUT = {"github": Path(".github/workflows/harness.yml"), "gitlab": Path(".gitlab/harness.yml")}
OWNED = "# Written by `harness schedule"  # the first line of every file this module writes
GITLAB_INCLUDE = "include:\n  - local: {path}"

# Actions pinned by commit (a tag can be moved; a commit cannot), with the release in a comment
# on the line, as Dependabot and Renovate keep them. Each commit is the tag's, read from
# workflows that pin them. A sub-action (actions/cache/restore) is its repository's, at its commit.
ACTIONS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/cache": ("5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
}
DIND = "docker:27-dind"


def uses(action: str) -> str:
    """`actions/cache/restore` -> `actions/cache/restore@<commit>  # v4.2.3` (the comment added when dumped)."""
    repository = "/".join(action.split("/")[:2])
    return f"{action}@{ACTIONS[repository][0]}"


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
    pythons: tuple[str, ...] = ()  # the matrix's Pythons: each is set up for its cells
    timeout: int = 120  # minutes a shard may take (the merge job gets 30)

    @property
    def other_pythons(self) -> tuple[str, ...]:
        return tuple(p for p in self.pythons if p != self.python)

    def shard_command(self, k: str, n: str, outdir: str, python_downloads: bool = False) -> str:
        shard = CiWord(f"{k}/{n}") if isinstance(k, CiWord) or isinstance(n, CiWord) else f"{k}/{n}"
        words = ["harness", "run", str(self.matrix), *map(str, self.models), "--shard", shard, "--fail-on", "none", "-o", outdir]
        if self.backend != "uv":
            words += ["--backend", self.backend]
        else:
            words += ["--sandbox", "bwrap"]  # no unsandboxed fallback in CI: a missing sandbox stops the job, said plainly
        if python_downloads:
            words.append("--python-downloads")  # the image has one Python: uv brings the matrix's others
        return _join(words)

    def cells_command(self) -> str:
        return _join(["harness", "cells", str(self.matrix), "--json"]) + " > harness-cells.json"

    def merge_command(self, results_glob: str) -> str:
        words = ["harness", "merge", "--allow-missing", "--fail-on", self.fail_on, "-o", "harness-report"]
        if self.baseline:
            words += ["--baseline", str(self.baseline)]
        return _join(words) + " " + results_glob  # the glob is left for the shell

    def install_command(self) -> str:
        """pip installs the harness; with the Docker backend, its docker extra too (docker-py)."""
        words = [self.install] if self.backend != "docker" else with_extra(self.install, "docker")
        return "python -m pip install " + " ".join(shell_word(w) for w in words)

    def command(self, fmt: str) -> str:
        """The `harness schedule` command that writes this file again."""
        words = ["harness", "schedule", str(self.matrix), *map(str, self.models), "--cron", self.cron, "--shards", str(self.shards)]
        words += ["--format", fmt, "--fail-on", self.fail_on, "--install", self.install, "--python", self.python]
        if self.baseline:
            words += ["--baseline", str(self.baseline)]
        if self.backend != "uv":
            words += ["--backend", self.backend]
        if self.timeout != 120:
            words += ["--timeout", str(self.timeout)]
        return shlex.join(words)

    def header(self, fmt: str) -> str:
        lines = [
            f"# Written by `{self.command(fmt)}` (harness {__version__}).",
            "# Run that command again to change it. Every cell's outcome, the trend and the regressions are in the",
            "# harness-report artifact" + (" and the run's summary page." if fmt == "github" else " and the pipeline's test report."),
        ]
        if fmt == "gitlab":
            lines.append(f"# GitLab keeps schedules outside this file: CI/CD > Schedules > New schedule, interval pattern '{self.cron}'.")
            lines.append("# .gitlab-ci.yml includes this file; the jobs run in stage 'test' (keep it in your stages).")
            if self.backend == "docker":
                lines.append(f"# The Docker backend needs a runner that allows privileged jobs (the {DIND} service).")
        if self.backend == "uv":
            lines += SANDBOX_NOTE[fmt]
        return "\n".join(lines) + "\n"


def sealed(header: str, body: str) -> str:
    """The file: its header, a line with the body's digest (so that an edit below it is seen), the body."""
    return f"{header}{DIGEST_LINE}{body_digest(body)}\n{body}"


DIGEST_LINE = "# Edit the command above, not this file: harness schedule refuses to replace an edited one. body sha256 "


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def edited(text: str) -> bool | None:
    """Whether a file harness schedule wrote was edited below its header (its body no longer has
    the digest written above it); None for a file without the digest line (an older harness)."""
    _, found, rest = text.partition(DIGEST_LINE)
    if not found:
        return None
    digest, _, body = rest.partition("\n")
    return digest.strip() != body_digest(body)


def differences(old: str, new: str, name: str, limit: int = 60) -> str:
    """A unified diff of what would change, cut to `limit` lines."""
    lines = list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"{name} (now)", f"{name} (harness schedule)", n=1))
    cut = lines[:limit] + ([f"... ({len(lines) - limit} more lines)\n"] if len(lines) > limit else [])
    return "".join(cut)


def stale(old: str, new: str) -> bool:
    """Whether the file on disk says something else than harness schedule would write now
    (the harness version in the header aside: an upgrade alone does not make a file stale)."""

    def essence(text: str) -> str:
        return re.sub(r"\(harness [^)]*\)", "", text)

    return essence(old) != essence(new)


SANDBOX_NOTE = {
    "github": [
        "# Models load in a bubblewrap sandbox (a Lambda layer runs code inside load_model): the shard job installs it and",
        "# lifts Ubuntu 24.04's AppArmor limit on unprivileged user namespaces, which bubblewrap needs. A runner where that",
        "# cannot be done (a container without user namespaces) stops with 'bubblewrap cannot make a sandbox here':",
        "# use --backend docker there, or --sandbox none only for models you trust.",
    ],
    "gitlab": [
        "# Models load in a bubblewrap sandbox (a Lambda layer runs code inside load_model), which needs user namespaces.",
        "# Docker's default seccomp profile blocks them in a job container: on a Docker runner, allow them",
        "# (security_opt = [\"seccomp=unconfined\"] in the runner's config.toml) or use --backend docker; else the shard",
        "# stops with 'bubblewrap cannot make a sandbox here'. --sandbox none only for models you trust.",
    ],
}
BWRAP_INSTALL = {
    "github": (
        "command -v bwrap >/dev/null || { sudo apt-get update -q && sudo apt-get install -y -q bubblewrap; }\n"
        "if [ \"$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)\" = 1 ]; then\n"
        "  sudo sysctl -q -w kernel.apparmor_restrict_unprivileged_userns=0\n"
        "fi\n"
    ),
    "gitlab": "command -v bwrap >/dev/null || { apt-get update -q && apt-get install -y -q bubblewrap; }",
}


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


def check(schedule: Schedule, root: Path | None = None, fmt: str = "github") -> Schedule:
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

    for value, what in ((schedule.matrix, "matrix"), *((m, "model") for m in schedule.models), (schedule.baseline, "baseline file")):
        if value is not None:
            written(str(value), what)
    if schedule.install:
        written(schedule.install, "--install")
    check_cron(schedule.cron, fmt)
    if schedule.timeout < 1 or schedule.timeout > 360:
        raise UsageError(f"--timeout {schedule.timeout}: minutes between 1 and 360 (GitHub stops any job after 6 hours)")
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
        schedule.pythons,
        schedule.timeout,
    )


def written(value: str, what: str) -> str:
    """A value of the user's as it may stand in a generated CI file: quoted as a shell word there,
    so it only must not hold what quoting cannot stop: a control character (a newline would end
    the header's comment line) or a GitHub expression (`${{ ... }}` is evaluated before any shell
    runs, in a step's name and its command alike)."""
    if re.search(r"[\x00-\x1f\x7f]", value) or "${{" in value:
        raise UsageError(f"{what} {visible(value)!r}: a control character or '${{{{' cannot stand in a CI file; rename it")
    return value


GITHUB_MIN_INTERVAL = 300  # seconds: GitHub runs a schedule at most every 5 minutes


def check_cron(cron: str, fmt: str = "github") -> None:
    """Five fields the platform accepts, or a one-line error. Both read POSIX cron (croniter
    checks it, and that it ever fires); GitHub takes weekdays 0-6, none of `L`, `#`, `W`, `?`,
    and runs nothing more often than every 5 minutes; GitLab (fugit) takes `L` and `#`."""
    from croniter import croniter

    fields_ = cron.split()
    why = "expected 5 fields (minute hour day month weekday)" if len(fields_) != 5 else None
    if why is None and fmt == "github":
        odd = sorted({c for c in "L#W?" if c in cron})
        if odd:
            why = f"GitHub's cron has no {' '.join(repr(c) for c in odd)} (GitLab's has L and #)"
        elif re.search(r"(^|[,-])7($|[,/-])", fields_[4]):
            why = "GitHub's weekdays are 0-6 (Sunday is 0)"
    if why is None:
        try:
            runs = croniter(cron)
            fired = [runs.get_next(float) for _ in range(6)]  # also refuses a line that never fires (0 6 31 2 *)
        except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors (CroniterBadCronError and kin)
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        else:
            if fmt == "github" and min(b - a for a, b in itertools.pairwise(fired)) < GITHUB_MIN_INTERVAL:
                why = "GitHub runs a schedule at most every 5 minutes"
    if why:
        raise UsageError(f"--cron '{cron}': {why}; e.g. '0 6 * * 1' for Mondays 06:00 UTC")


def owned(path: Path) -> bool:
    """Whether `path` is a file this command wrote (its first line says so): the only kind it replaces."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(OWNED)
    except OSError:
        return False


def gitlab_include_hint(output: Path, root: Path) -> str:
    """What to add to .gitlab-ci.yml so that it runs the file, or that it already does."""
    main = root / ".gitlab-ci.yml"
    local = output.as_posix()
    if not main.exists():
        return f"create .gitlab-ci.yml with:\n{GITLAB_INCLUDE.format(path=local)}"
    if local in main.read_text(encoding="utf-8", errors="replace"):
        return f"{main.name} already includes {local}"
    return f"add to .gitlab-ci.yml (the harness does not edit it):\n{GITLAB_INCLUDE.format(path=local)}"


NOT_CANCELLED = "!cancelled()"  # runs after a failed step, not after a cancel (always() would)


def github_workflow(s: Schedule) -> str:
    n = str(s.shards)
    store_key = "harness-store-${{ github.workflow }}"
    uv_key = "harness-uv-${{ runner.os }}-shard${{ matrix.shard }}-"  # each shard keeps its own wheels (keys are immutable)
    restore_store = {
        "name": "Restore the result store (unchanged cells are reused; history for trends and regressions)",
        "uses": uses("actions/cache/restore"),
        "with": {"path": ".harness", "key": store_key + "-${{ github.run_id }}", "restore-keys": store_key + "-"},
    }
    pythons = [*sorted(set(s.other_pythons), key=_version_key), s.python]  # the last is the default `python`
    setup = [
        {"uses": uses("actions/checkout")},
        {
            "name": "Set up "
            + ("Python " + s.python if len(pythons) == 1 else "every Python of the matrix (the harness runs on the last)"),
            "uses": uses("actions/setup-python"),
            "with": {"python-version": "\n".join(pythons) + "\n" if len(pythons) > 1 else s.python},
        },
        restore_store,
        {"name": "Install harness", "run": s.install_command()},
    ]
    uv_cache = [
        {"name": "Resolve the cells (their locks key uv's cache)", "run": s.cells_command()},
        {
            "name": "Restore uv's cache (saved again when a lock changed)",
            "uses": uses("actions/cache"),
            "with": {"path": "~/.cache/uv", "key": uv_key + "${{ hashFiles('harness-cells.json') }}", "restore-keys": uv_key},
        },
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
                "timeout-minutes": s.timeout,
                "strategy": {"fail-fast": False, "matrix": {"shard": list(range(1, s.shards + 1))}},
                "steps": [
                    *setup,
                    *uv_cache,
                    *(
                        [{"name": "Install bubblewrap, the sandbox the models load in", "run": BWRAP_INSTALL["github"]}]
                        if s.backend == "uv"
                        else []
                    ),
                    {
                        "name": f"Load the models in shard ${{{{ matrix.shard }}}}/{n} of the cells",
                        "run": s.shard_command(CiWord("${{ matrix.shard }}"), n, CiWord("harness-shard-${{ matrix.shard }}")),
                    },
                    {
                        "name": "Upload the shard's results",
                        "if": NOT_CANCELLED,
                        "uses": uses("actions/upload-artifact"),
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
                "if": NOT_CANCELLED,
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 30,
                "steps": [
                    *setup,
                    {
                        "name": "Download every shard's results",
                        "uses": uses("actions/download-artifact"),
                        "with": {"pattern": "harness-shard-*", "path": "harness-shards"},
                    },
                    {
                        # harness merge writes the merged report to the step summary and annotates each regression
                        "name": f"Merge the shards (fails on: {s.fail_on})",
                        "run": s.merge_command("harness-shards/*/results.json"),
                    },
                    {
                        "name": "Upload the merged report",
                        "if": NOT_CANCELLED,
                        "uses": uses("actions/upload-artifact"),
                        "with": {"name": "harness-report", "path": "harness-report"},
                    },
                    {
                        "name": "Save the result store",
                        "if": NOT_CANCELLED,
                        "uses": uses("actions/cache/save"),
                        "with": {"path": ".harness", "key": store_key + "-${{ github.run_id }}"},
                    },
                ],
            },
        },
    }
    text = _dump(workflow)
    releases = dict(ACTIONS.values())
    text = re.sub(r"(uses: \S+@([0-9a-f]{40}))\n", lambda m: f"{m[1]}  # {releases[m[2]]}\n", text)
    return sealed(s.header("github"), text)


def gitlab_ci(s: Schedule) -> str:
    rules = [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}, {"if": '$CI_PIPELINE_SOURCE == "web"'}]
    store = {"key": "harness-store", "paths": [".harness/"]}
    variables = {
        "UV_CACHE_DIR": "$CI_PROJECT_DIR/.uv-cache",
        "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.pip-cache",
        "HARNESS_STORE": "$CI_PROJECT_DIR/.harness/results.sqlite",
    }
    template: dict[str, Any] = {
        "image": f"python:{s.python}-bookworm",
        "stage": "test",
        "timeout": f"{s.timeout} minutes",
        "variables": variables,
        "before_script": [s.install_command()],
    }
    if s.backend == "docker":
        # Docker-in-Docker with TLS, as GitLab documents it: the service's daemon at docker:2376
        template["services"] = [{"name": DIND, "alias": "docker"}]
        template["variables"] = {
            **variables,
            "DOCKER_HOST": "tcp://docker:2376",
            "DOCKER_TLS_CERTDIR": "/certs",
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": "/certs/client",
        }
    config: dict[str, Any] = {
        ".harness": template,
        "harness-shard": {
            "extends": ".harness",
            "rules": rules,
            **({"parallel": s.shards} if s.shards > 1 else {}),
            # GitLab uploads a job's cache again after every job (pull-push), so new wheels are kept under
            # one key; GitHub's keys are immutable, hence its key made of the locks.
            "cache": [{"key": "harness-uv", "paths": [".uv-cache/", ".pip-cache/"]}, {**store, "policy": "pull"}],
            "script": [
                *([BWRAP_INSTALL["gitlab"]] if s.backend == "uv" else []),
                s.shard_command(
                    CiWord("${CI_NODE_INDEX:-1}"),
                    CiWord("${CI_NODE_TOTAL:-1}"),
                    CiWord("harness-shard-${CI_NODE_INDEX:-1}"),
                    python_downloads=bool(s.other_pythons),
                )
            ],
            "artifacts": {"when": "always", "paths": ["harness-shard-*/"], "expire_in": "1 week"},
        },
        "harness-report": {
            "extends": ".harness",
            "timeout": "30 minutes",
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
    return sealed(s.header("gitlab"), _dump(config))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in version.split("."))


class CiWord(str):
    """A word this module writes with a CI expression in it (`${{ matrix.shard }}`,
    `harness-shard-${CI_NODE_INDEX:-1}`), left for CI or the shell to fill in. Only words made
    here are; a path or a value of the user's is always quoted (_join)."""


def _join(words: Sequence[str]) -> str:
    """Shell words, each quoted (escape.shell_word) but the CiWords this module made itself."""
    return " ".join(word if isinstance(word, CiWord) else shell_word(word) for word in words)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # shared steps are written out in full: no &id001 anchors for a reader to chase


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=200, default_flow_style=False)
