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
    backend_name,
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
    parser.add_argument("matrix", nargs="?", type=Path, help="the YAML matrix; default: `matrix` in [tool.harness]")
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL", help="default: `models` in [tool.harness]")
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
    parser.add_argument("--backend", type=backend_name, choices=backend_choices(), default="uv")
    parser.add_argument(
        "--timeout", type=int, default=120, metavar="MINUTES", help="how long a shard job may run (default 120; the merge job 30)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="default: .github/workflows/harness.yml or .gitlab/harness.yml (include it); '-' prints it"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the output even if harness schedule did not write it, or it was edited"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing: exit 0 when the file is what this command would write, 1 (with a diff) when it is stale or edited (for CI)",
    )
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..errors import UsageError
    from ..escape import visible
    from ..exits import Verdict
    from ..matrix import HOST_PYTHON, load_matrix
    from ..schedule import (
        DEFAULT_OUTPUT,
        Schedule,
        check,
        differences,
        edited,
        github_workflow,
        gitlab_ci,
        gitlab_include_hint,
        owned,
        stale,
    )
    from .common import required

    matrix = load_matrix(required(args, "matrix"))  # a broken matrix fails here, not in CI next Monday
    required(args, "models")
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
        ),
        fmt=args.format,
    )
    text = github_workflow(schedule) if args.format == "github" else gitlab_ci(schedule)
    output = args.output or DEFAULT_OUTPUT[args.format]
    if str(output) == "-":
        sys.stdout.write(text)
        return PASSED
    now = output.read_text(encoding="utf-8", errors="replace") if output.is_file() else None
    if args.check:
        if now is None:
            console.print(f"[red]{visible(str(output))}: missing[/]; write it with the same command without --check")
            return Verdict(failed=True)
        if not stale(now, text):
            console.print(f"{visible(str(output))}: up to date")
            return PASSED
        sys.stdout.write(shown(differences(now, text, str(output))))
        console.print(f"[red]{visible(str(output))}: stale[/] (the diff above is what this command would change); run it without --check")
        return Verdict(failed=True)
    if now is not None and not owned(output) and not args.force:
        raise UsageError(f"{output}: exists and harness schedule did not write it; pass --force to replace it, or -o another file")
    if now is not None and edited(now) and not args.force:
        sys.stderr.write(shown(differences(now, text, str(output))))
        raise UsageError(
            f"{output}: edited below its header since harness schedule wrote it (the diff above is what replacing it would undo); "
            "put the change in the command's options, or pass --force to replace it"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    console.print(f"wrote {output}: {args.shards} shard(s), cron '{args.cron}', fails on {args.fail_on}; commit it to enable the schedule")
    if args.format == "gitlab" and output.name != ".gitlab-ci.yml":
        console.print(gitlab_include_hint(output, Path.cwd()), markup=False, highlight=False)
    return PASSED


def shown(diff: str) -> str:
    """A diff of a file anyone could have edited, printed with its control characters as escapes, line by line."""
    from ..escape import visible

    return "".join(visible(line) + "\n" for line in diff.splitlines())
