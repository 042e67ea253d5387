"""`harness schedule MATRIX MODEL...`: a CI file that runs the matrix on a schedule."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome
from ..gate import FAIL_ON
from .common import (
    backend_choices,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "schedule",
        help="write a CI file that runs the matrix on a schedule, sharded, with a merged report",
        description="Write a GitHub Actions workflow (default .github/workflows/harness.yml) or a GitLab CI file: a cron trigger, "
        "one job per shard, the uv cache and the result store kept between runs, the merged report uploaded and shown "
        "(GitHub step summary, GitLab test report), failing only per --fail-on (default: regressions). "
        "Paths are relative to the repository root.",
    )
    parser.add_argument("matrix", type=Path)
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    parser.add_argument("--cron", default="0 6 * * 1", help="when, in UTC (default '0 6 * * 1': Mondays 06:00)")
    parser.add_argument("--shards", type=int, default=1, metavar="N", help="parallel jobs (default 1)")
    parser.add_argument("--format", choices=("github", "gitlab"), default="github")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="regression", help="what fails the scheduled run (default: regression)")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="a committed baseline (harness baseline); default: the previous run")
    parser.add_argument(
        "--install",
        default="",
        metavar="SPEC",
        help="what pip installs in CI, e.g. 'harness @ git+https://github.com/your-org/harness@v0.1.0' "
        "(default: where this harness was installed from, when that is a git or https URL)",
    )
    parser.add_argument("--python", default="3.11", help="the runner's Python for the harness itself (cells bring their own)")
    parser.add_argument("--backend", choices=backend_choices(), default="uv")
    parser.add_argument(
        "--timeout", type=int, default=120, metavar="MINUTES", help="how long a shard job may run (default 120; the merge job 30)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="default: .github/workflows/harness.yml or .gitlab/harness.yml (include it); '-' prints it"
    )
    parser.add_argument("--force", action="store_true", help="replace the output even if harness schedule did not write it")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..errors import UsageError
    from ..matrix import HOST_PYTHON, load_matrix
    from ..schedule import DEFAULT_OUTPUT, Schedule, check, github_workflow, gitlab_ci, gitlab_include_hint, owned

    matrix = load_matrix(args.matrix)  # a broken matrix fails here, not in CI next Monday
    pythons = {str(v) for name, values in matrix.axes if name == "python" for v in values}
    pythons |= {str(c.values["python"]) for c in matrix.include if "python" in c.values}
    schedule = check(
        Schedule(
            args.matrix,
            tuple(args.models),
            args.cron,
            args.shards,
            args.fail_on,
            args.baseline,
            args.install,
            args.python,
            args.backend,
            tuple(sorted(pythons or {HOST_PYTHON})),
            args.timeout,
        )
    )
    text = github_workflow(schedule) if args.format == "github" else gitlab_ci(schedule)
    output = args.output or DEFAULT_OUTPUT[args.format]
    if str(output) == "-":
        sys.stdout.write(text)
        return PASSED
    if output.exists() and not owned(output) and not args.force:
        raise UsageError(f"{output}: exists and harness schedule did not write it; pass --force to replace it, or -o another file")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    console.print(f"wrote {output}: {args.shards} shard(s), cron '{args.cron}', fails on {args.fail_on}; commit it to enable the schedule")
    if args.format == "gitlab" and output.name != ".gitlab-ci.yml":
        console.print(gitlab_include_hint(output, Path.cwd()), markup=False, highlight=False)
    return PASSED
