"""The command line: argparse commands, exit codes, and the only module that draws on screen."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .backends import backend_names
from .diagnose import CellResult
from .errors import HarnessError, UsageError, redact
from .gate import FAIL_ON

STYLE = {
    "loaded": "green",
    "loaded-after-fix": "cyan",
    "load-error": "red",
    "import-error": "dark_orange",
    "unresolvable": "magenta",
    "skipped": "grey50",
    "timeout": "yellow",
    "crash": "bold red",
    "infra-error": "blue",
}

EPILOG = """\
examples:
  harness run matrices/seed-article.yaml examples/models/*.h5 -o report/
      build one uv environment per cell, load every model in each, write
      report/results.json, report.md, report.html and junit.xml
  harness cells matrices/keras3-transition.yaml
      show the cells a matrix expands to, with their resolved locks
  harness inspect model.h5
      what the file contains (format, saved-by versions, custom/Addons/Lambda
      classes, corruption), without TensorFlow
  harness run m.yaml model.h5 --only 'py3.11-tensorflow2.16*' --dry-run
      show what would be built for a subset of cells
  harness images base --python 3.9 && harness run m.yaml model.h5 --backend docker --base-image 'harness-base:py{python}'
      run cells in sandboxed containers on a machine with no container registry
  harness schedule matrices/seed-article.yaml models/m.h5 --cron '0 6 * * 1' --shards 4 --install 'harness @ git+https://github.com/your-org/harness'
      write a GitHub Actions workflow: weekly, 4 shards, merged report, failing on
      regressions only (harness baseline RESULTS.json accepts today's outcomes)

exit codes: 0 all cells loaded (or loaded after a fix), 1 some cells failed to load
(with --fail-on: what it names), 2 usage or matrix error, 3 nothing to do,
4 backend unavailable, 5 nothing was tested (the index could not be reached, or every
cell was skipped, unresolvable or an infrastructure error: never a pass), 70 internal
error (a bug), 130 interrupted
"""


# The --backend values: the registry's names (harness.backends.BACKENDS) and auto.
BACKEND_CHOICES = backend_names()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Find in which environments a saved Keras model loads, and why it fails where it does not.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show a Python traceback on errors (for bug reports)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="load models in every cell of a matrix and write a report",
        description="Expand MATRIX into cells, resolve each to a lock with uv, build one environment per lock, load every MODEL in each cell (never in this process) and write results.json, report.md, report.html and junit.xml.",
    )
    run.add_argument("matrix", type=Path, help="the YAML matrix (see matrices/ for examples)")
    run.add_argument("models", nargs="+", type=Path, metavar="MODEL", help=".h5 / .keras files or SavedModel folders")
    run.add_argument("-o", "--outdir", type=Path, default=Path("harness-report"), help="where the report goes (default: ./harness-report)")
    run.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="uv",
        help="uv virtualenvs (default) or Docker containers; auto: Docker when a daemon answers",
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="cells run at once (default: cores, fewer if memory is short; with Ray, its resources decide)",
    )
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only cells whose id matches GLOB (repeatable), e.g. 'py3.11-tensorflow2.15*'",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve and plan, print the environments (and rendered Dockerfiles) that would be built, run nothing",
    )
    run.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="PATH",
        help="the SQLite result store (default: .harness/results.sqlite, or $HARNESS_STORE)",
    )
    run.add_argument("--no-store", action="store_true", help="keep no history and reuse no result")
    run.add_argument("--fresh", action="store_true", help="run every cell again, even those whose result the store holds")
    run.add_argument(
        "--try-fixes",
        action="store_true",
        help="also try fixes that need another environment: tf-keras with TF_USE_LEGACY_KERAS=1 for Keras 2 files",
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run the K-th of N stable slices of the cells (CI jobs in parallel); `harness merge` joins their results.json",
    )
    run.add_argument("--refresh", action="store_true", help="ask the package index now for new releases, ignoring its cached listings")
    cluster = run.add_argument_group("where cells run")
    cluster.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local threads (default), or ray: one task per cell on a Ray cluster (needs the ray extra)",
    )
    cluster.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the cluster: HOST:6379 (GCS) or ray://HOST:10001 (Ray Client); default $RAY_ADDRESS, else one started on this machine",
    )
    cluster.add_argument("--ray-cpus", type=float, default=1.0, metavar="N", help="CPUs each cell asks Ray for (default 1)")
    cluster.add_argument(
        "--ray-memory",
        default="1.5g",
        metavar="SIZE",
        help="memory each cell asks Ray for (default 1.5g: Ray puts no more TensorFlow processes on a node than it holds)",
    )
    add_gate_arguments(run)
    add_sandbox_arguments(run)
    box = run.add_argument_group("docker backend (override the matrix's docker: section)")
    box.add_argument(
        "--template", metavar="NAME|FILE", help="Dockerfile template: a name in dockerfiles/ (default, uv-cache) or a .j2 file"
    )
    box.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="base image, {python} filled in (default python:{python}-slim; air-gapped: 'harness-base:py{python}')",
    )
    box.add_argument("--cpus", type=float, metavar="N", help="CPUs per container (default 1)")

    cells = commands.add_parser(
        "cells",
        help="list the cells a matrix expands to, resolved",
        description="Expand MATRIX against the package index and resolve every cell with uv; nothing is built.",
    )
    cells.add_argument("matrix", type=Path)
    cells.add_argument("--json", action="store_true", help="machine-readable output")

    inspect = commands.add_parser("inspect", help="static facts about a model file (no TensorFlow needed)")
    inspect.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")

    report = commands.add_parser("report", help="re-render the reports from a results.json")
    report.add_argument("results", type=Path, metavar="RESULTS.json")
    report.add_argument("-o", "--outdir", type=Path, default=None, help="default: the folder of RESULTS.json")

    cross = commands.add_parser(
        "crossload",
        help="save a model in every cell with your build script, then load every saved file in every cell",
        description="Run BUILD.py in each cell as `python BUILD.py OUTDIR` (your trusted script; it saves model files there), "
        "then load every saved file in every cell. Writes the usual reports plus crossload.md: saved-by rows, loaded-by columns.",
    )
    cross.add_argument("matrix", type=Path)
    cross.add_argument("--build", type=Path, required=True, metavar="BUILD.py", help="e.g. examples/build_dense.py")
    cross.add_argument("-o", "--outdir", type=Path, default=Path("harness-crossload"))
    cross.add_argument("--backend", choices=BACKEND_CHOICES, default="uv")
    cross.add_argument("-j", "--jobs", type=int, default=None)
    cross.add_argument("--only", action="append", default=[], metavar="GLOB")
    cross.add_argument("--base-image", metavar="IMAGE")
    add_sandbox_arguments(cross)

    bisect = commands.add_parser(
        "bisect",
        help="find the first release of a package where a model's outcome changes",
        description="Evaluate the oldest candidate release, then binary-search for the first one whose outcome differs "
        "(1 + ceil(log2 n) environments). Candidates: the newest patch of each minor line between --from and --to.",
    )
    bisect.add_argument("model", type=Path, metavar="MODEL")
    bisect.add_argument("--axis", default="tensorflow", help="the package to bisect (default tensorflow)")
    bisect.add_argument("--package", help="what to install for the axis (default: the matrix's packages mapping, else the axis name)")
    bisect.add_argument("--from", dest="start", metavar="VERSION", help="oldest release line or version (default: the oldest)")
    bisect.add_argument("--to", dest="stop", default="latest", metavar="VERSION", help="newest release line or version (default latest)")
    bisect.add_argument("--matrix", type=Path, help="take load options, packages and docker settings from this matrix")
    bisect.add_argument("--python", default=None, help="the Python of every candidate (default: this one)")
    bisect.add_argument("--patches", action="store_true", help="every release, not only the newest patch per minor line")
    bisect.add_argument("--by", choices=("status", "exception"), default="status", help="what counts as a change (default status)")
    bisect.add_argument("--backend", choices=BACKEND_CHOICES, default="uv")

    repro = commands.add_parser(
        "repro",
        help="write a stand-alone reproduction of one cell (Dockerfile, lock, load script, README)",
        description="Write DIR with the rendered Dockerfile, the locked requirements, the probe and its request, the model reference "
        "(sha256; the file too with --copy-model), the outcome seen and a README with the exact commands. --verify rebuilds it and "
        "checks the outcome is the same (exit 0) or not (exit 1).",
    )
    repro.add_argument("results", type=Path, metavar="RESULTS.json")
    repro.add_argument("cell", metavar="CELL_ID")
    repro.add_argument("-o", "--outdir", type=Path, required=True)
    repro.add_argument("--model", type=Path, action="append", default=[], help="where a model file is now (if it moved); repeatable")
    repro.add_argument("--copy-model", action="store_true", help="copy the model file(s) into the folder")
    repro.add_argument("--verify", action="store_true", help="build the folder's image, run it, compare the outcome")
    repro.add_argument("--base-image", metavar="IMAGE", help="base image for the Dockerfile ({python} filled in)")

    images = commands.add_parser("images", help="manage Docker images (base images for machines with no registry)")
    images_commands = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    base = images_commands.add_parser(
        "base",
        help="build a base image from a Debian root file system (debootstrap + docker import)",
        description="Build harness-base:pyX.Y with debootstrap (bullseye: 3.9, bookworm: 3.11, trixie: 3.13) and docker import; "
        "then run with --base-image 'harness-base:py{python}'. Needs root, debootstrap and a Debian mirror; about 45 s.",
    )
    base.add_argument("--python", action="append", required=True, choices=("3.9", "3.11", "3.13"), help="repeatable")

    merge = commands.add_parser(
        "merge",
        help="merge the results.json of shards into one report, as an unsharded run would have written it",
        description="Join the results of `harness run --shard K/N` (every K of one N), compare outputs across shards, "
        "record the merged run in the store and write the reports. Exit codes as `harness run`, per --fail-on.",
    )
    merge.add_argument("results", nargs="+", type=Path, metavar="RESULTS.json")
    merge.add_argument("-o", "--outdir", type=Path, default=Path("harness-report"), help="default: ./harness-report")
    merge.add_argument("--allow-missing", action="store_true", help="write a partial report when a shard's results are missing (exit 1)")
    merge.add_argument("--store", type=Path, default=None, metavar="PATH", help="default: .harness/results.sqlite or $HARNESS_STORE")
    merge.add_argument("--no-store", action="store_true", help="do not record the merged run")
    add_gate_arguments(merge)

    baseline = commands.add_parser(
        "baseline",
        help="accept the outcomes of a run as the baseline that --fail-on regression compares with",
        description="Write the outcome of every (model, cell) in RESULTS.json as accepted. Commit the file; "
        "`harness run ... --baseline FILE` then fails (exit 1) only on failures the baseline does not accept: "
        "a cell that loaded and now fails, or a new cell (a new release) that fails.",
    )
    baseline.add_argument("results", type=Path, metavar="RESULTS.json", help="from harness run or harness merge")
    baseline.add_argument("-o", "--output", type=Path, default=Path("harness-baseline.json"), help="default: ./harness-baseline.json")

    schedule = commands.add_parser(
        "schedule",
        help="write a CI file that runs the matrix on a schedule, sharded, with a merged report",
        description="Write a GitHub Actions workflow (default .github/workflows/harness.yml) or a GitLab CI file: a cron trigger, "
        "one job per shard, the uv cache and the result store kept between runs, the merged report uploaded and shown "
        "(GitHub step summary, GitLab test report), failing only per --fail-on (default: regressions). "
        "Paths are relative to the repository root.",
    )
    schedule.add_argument("matrix", type=Path)
    schedule.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    schedule.add_argument("--cron", default="0 6 * * 1", help="when, in UTC (default '0 6 * * 1': Mondays 06:00)")
    schedule.add_argument("--shards", type=int, default=1, metavar="N", help="parallel jobs (default 1)")
    schedule.add_argument("--format", choices=("github", "gitlab"), default="github")
    schedule.add_argument("--fail-on", choices=FAIL_ON, default="regression", help="what fails the scheduled run (default: regression)")
    schedule.add_argument(
        "--baseline", type=Path, metavar="FILE", help="a committed baseline (harness baseline); default: the previous run"
    )
    schedule.add_argument(
        "--install",
        default="",
        metavar="SPEC",
        help="what pip installs in CI, e.g. 'harness @ git+https://github.com/your-org/harness@v0.1.0' "
        "(default: where this harness was installed from, when that is a git or https URL)",
    )
    schedule.add_argument("--python", default="3.11", help="the runner's Python for the harness itself (cells bring their own)")
    schedule.add_argument("--backend", choices=BACKEND_CHOICES, default="uv")
    schedule.add_argument("-o", "--output", type=Path, help="default: .github/workflows/harness.yml or .gitlab-ci.yml; '-' prints it")

    history = commands.add_parser("history", help="list the runs in the result store")
    history.add_argument("--store", type=Path, default=None, metavar="PATH", help="default: .harness/results.sqlite or $HARNESS_STORE")

    diff = commands.add_parser(
        "diff",
        help="what changed between two runs: new failures, fixed cells, changed exceptions, cells seen for the first time",
        description="Compare two runs of the store (default: the last two runs of the newest run's matrix). Exit 1 when there are new failures.",
    )
    diff.add_argument(
        "runs", nargs="*", type=int, metavar="RUN", help="run ids from `harness history` (none: the last two; one: it and the run before)"
    )
    diff.add_argument("--store", type=Path, default=None, metavar="PATH")
    diff.add_argument("--json", action="store_true")

    gc = commands.add_parser(
        "gc",
        help="remove cached environments",
        description="Remove cached environments (uv venvs, or with --backend docker the harness-env images) not used for "
        "--older-than days (default 30), or all with --all.",
    )
    gc.add_argument("--all", action="store_true", help="remove every cached environment")
    gc.add_argument("--older-than", type=float, default=30.0, metavar="DAYS")
    gc.add_argument(
        "--backend",
        choices=BACKEND_CHOICES[1:],
        default="uv",
        help="whose cache: uv's environments (default) or Docker's harness-env images",
    )
    return parser


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    box = parser.add_argument_group(
        "containment (a model file's code runs when it loads: every cell is a sandbox)",
        "uv cells run under bubblewrap (no network, read-only file system but a capped scratch, own PIDs, "
        "none of your environment, limits); docker cells in a locked-down container.",
    )
    box.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="for uv cells: auto (bubblewrap where it works, else none, said at the top of every report), bwrap (fail without it), none",
    )
    box.add_argument(
        "--trust-models",
        action="store_true",
        help="run files that carry Python code (Lambda layers, functions saved by value) even where cells are not sandboxed",
    )
    box.add_argument("--memory", metavar="SIZE", help="memory limit per cell (default 4g)")
    box.add_argument("--pids", type=int, metavar="N", help="process and thread limit per cell (default 512)")


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="what makes the exit code 1: any failed cell (default), regression (failures the baseline or the previous run "
        "did not have; default with --baseline), attribute-error, or none",
    )
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="accepted outcomes, written by `harness baseline`")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: expected K/N, e.g. --shard 2/4 for the second of four slices") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N, e.g. --shard 1/{max(n, 1)}")
    return k, n


class RichProgress:
    """A live bar while cells run; one line per finished cell above it."""

    def __init__(self, console: Console):
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
        )
        self.task: Any = None

    def stage(self, text: str) -> None:
        self.console.print(f"[grey50]· {text}[/]")

    def start(self, total: int) -> None:
        self.console.print(f"[grey50]· running {total} cells[/]")
        self.bar.start()
        self.task = self.bar.add_task("cells", total=total)

    def cell_done(self, results: Sequence[CellResult]) -> None:
        for r in results:
            extra = " · ".join(
                x
                for x in (r.exception.get("type") if r.exception else "", r.cause or "", f"fixed by {r.fix_worked}" if r.fix_worked else "")
                if x
            )
            attr = " [black on yellow] AttributeError [/]" if r.attribute_error else ""
            self.console.print(f"[{STYLE.get(r.status, 'white')}]{r.status:>16}[/] {r.cell} [grey50]{r.model}[/] {extra}{attr}")
        if self.task is not None:
            self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()


def summary_tables(console: Console, doc: dict[str, Any]) -> None:
    """Per model: the boundary sentence, a row per cell, then each distinct fix once."""
    from .report import summary

    for model in doc.get("models", []):
        results = summary.results_for(doc, model["name"])
        table = Table(title=f"[bold]{model['name']}[/]: {summary.boundary(doc, model['name'])}", title_justify="left")
        for column in ("cell", "status", "exception", "cause", "fix"):
            table.add_column(column, overflow="fold")
        fixes: dict[str, int] = {}
        for r in results:
            number = fixes.setdefault(r["fix"], len(fixes) + 1) if r.get("fix") else None
            status = f"[{STYLE.get(r['status'], 'white')}]{r['status']}[/]" + (f" ({r['fix_worked']})" if r.get("fix_worked") else "")
            status += " [grey50]cached[/]" if r.get("cached") else ""
            table.add_row(r["cell"], status, summary.exception_label(r), r.get("cause") or "", f"[{number}]" if number else "")
        console.print(table)
        for fix, number in fixes.items():
            console.print(f"  [{number}] {fix}", markup=False)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from .matrix import load_matrix
    from .pipeline import make_executor
    from .report import summary
    from .runner import RunOptions, run
    from .store import default_store

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("-j/--jobs must be at least 1")
    docker = {"template": args.template, "base_image": args.base_image, "memory": args.memory, "cpus": args.cpus, "pids": args.pids}
    options = RunOptions(
        sandbox=args.sandbox,
        trust_models=args.trust_models,
        memory=args.memory,
        pids=args.pids,
        outdir=args.outdir,
        backend=args.backend,
        jobs=args.jobs,
        only=tuple(args.only),
        dry_run=args.dry_run,
        try_fixes=args.try_fixes,
        store=None if args.no_store else (args.store or default_store()),
        fresh=args.fresh,
        docker={k: v for k, v in docker.items() if v is not None},
        shard=parse_shard(args.shard),
        refresh=args.refresh,
        fail_on=args.fail_on,
        baseline=args.baseline,
        executor=args.executor,
        ray_address=args.ray_address,
        ray_cpus=args.ray_cpus,
        ray_memory=args.ray_memory,
    )
    # A cluster starts connecting before even the matrix is read: bench/bench_ray.py measured
    # 1.15x with this against 1.17x and 1.21x when the connection waited for run().
    executor = make_executor(options) if options.executor != "local" and not options.dry_run else None
    matrix = load_matrix(args.matrix)
    progress = RichProgress(console)
    start = time.monotonic()
    try:
        doc = run(matrix, args.models, options, progress, executor)
    finally:
        progress.stop()
    if args.dry_run:
        print_plan(console, doc)
        return 0
    summary_tables(console, doc)
    console.print(
        f"[bold]{len(doc['results'])} results in {time.monotonic() - start:.0f} s[/] · report: {args.outdir}/report.html, report.md, junit.xml, results.json"
    )
    print_follow_up(console, doc)
    return summary.exit_code(doc)


def print_follow_up(console: Console, doc: dict[str, Any]) -> None:
    """New releases and the gate's verdict, under the tables."""
    from .report import summary

    contained = summary.containment_text(doc)
    if contained.startswith("NOT"):
        console.print(f"[bold red]{contained}[/]", markup=True, highlight=False)
    infra = summary.infra_text(doc)
    if infra:
        console.print(f"[bold blue]{infra}[/]")
    news = summary.new_release_text(doc)
    if news:
        console.print(f"[bold blue]{news}[/]")
    gate = doc.get("gate")
    if gate and (gate["fail_on"] != "none" or gate.get("untested")):
        console.print(f"[{'red' if gate['failed'] or gate.get('untested') else 'green'}]{summary.gate_text(doc)}[/]")
        if gate["fail_on"] == "regression" and summary.shows_regressions(doc):
            for r in gate["regressions"]:
                console.print(
                    f"  regression: {r['model']} @ {r['cell']}: {r['status']} {r.get('exception') or ''} ({r['why']})", markup=False
                )


def cmd_merge(args: argparse.Namespace, console: Console) -> int:
    from .gate import default_fail_on
    from .merge import merge_runs
    from .report import summary
    from .store import Store, default_store

    store = None if args.no_store else Store(args.store or default_store())
    fail_on = args.fail_on or default_fail_on(args.baseline)
    doc = merge_runs(args.results, args.outdir, store, fail_on, args.baseline, args.allow_missing)
    summary_tables(console, doc)
    console.print(
        f"[bold]merged {len(args.results)} results file(s): {len(doc['results'])} results[/] · report: {args.outdir}/report.html, report.md"
    )
    print_follow_up(console, doc)
    missing = doc["run"].get("missing_shards")
    if missing:
        console.print(f"[red]partial report: shard(s) {', '.join(map(str, missing))} missing[/]")
        return 1
    return summary.exit_code(doc)


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    from .gate import write_baseline
    from .report import load_results

    doc = load_results(args.results)
    if not doc["run"].get("complete"):
        console.print("[yellow]the run did not finish: cells it did not reach are not in the baseline (they count as new)[/]")
    baseline = write_baseline(doc, args.output)
    n = sum(len(cells) for cells in baseline["accepted"].values())
    console.print(f"wrote {args.output}: {n} accepted outcomes; use it with `harness run ... --baseline {args.output}`")
    return 0


def cmd_schedule(args: argparse.Namespace, console: Console) -> int:
    from .matrix import load_matrix
    from .schedule import DEFAULT_OUTPUT, Schedule, check, github_workflow, gitlab_ci

    load_matrix(args.matrix)  # a broken matrix fails here, not in CI next Monday
    schedule = check(
        Schedule(
            args.matrix, tuple(args.models), args.cron, args.shards, args.fail_on, args.baseline, args.install, args.python, args.backend
        )
    )
    text = github_workflow(schedule) if args.format == "github" else gitlab_ci(schedule)
    output = args.output or DEFAULT_OUTPUT[args.format]
    if str(output) == "-":
        sys.stdout.write(text)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    console.print(f"wrote {output}: {args.shards} shard(s), cron '{args.cron}', fails on {args.fail_on}; commit it to enable the schedule")
    return 0


def cmd_crossload(args: argparse.Namespace, console: Console) -> int:
    from .crossload import crossload
    from .matrix import load_matrix
    from .report import summary
    from .runner import RunOptions

    matrix = load_matrix(args.matrix)
    docker = {k: v for k, v in {"base_image": args.base_image, "memory": args.memory, "pids": args.pids}.items() if v}
    options = RunOptions(
        outdir=args.outdir,
        backend=args.backend,
        jobs=args.jobs,
        only=tuple(args.only),
        docker=docker,
        sandbox=args.sandbox,
        trust_models=args.trust_models,
        memory=args.memory,
        pids=args.pids,
    )
    progress = RichProgress(console)
    try:
        doc = crossload(matrix, args.build, options, progress)
    finally:
        progress.stop()
    console.print((args.outdir / "crossload.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {args.outdir}/crossload.md, report.html, report.md, junit.xml, results.json")
    return summary.exit_code(doc)


def cmd_bisect(args: argparse.Namespace, console: Console) -> int:
    from .backends import get_backend
    from .bisect import Step, bisect_model, max_steps
    from .matrix import HOST_PYTHON, LoadOptions, load_matrix
    from .modelfile import inspect_model
    from .report import summary

    info = inspect_model(args.model)
    matrix = load_matrix(args.matrix) if args.matrix else None
    install = args.package or (matrix.install_name(args.axis) if matrix else args.axis)
    backend = get_backend(args.backend, matrix.docker if matrix else {}, matrix.path if matrix else None)

    def show(step: Step) -> None:
        r = step.result
        label = summary.exception_label(r.to_dict())
        console.print(f"  {args.axis} {step.version:<10} [{STYLE.get(r.status, 'white')}]{r.status}[/] {label} {r.cause or ''}")

    console.print(f"· bisecting {info.name} over {install} ({args.start or 'oldest'} to {args.stop})")
    result = bisect_model(
        info,
        args.axis,
        install,
        backend,
        matrix.load if matrix else LoadOptions(),
        args.start,
        args.stop,
        args.python or HOST_PYTHON,
        args.patches,
        args.by,
        on_step=show,
    )
    n = len(result.candidates)
    console.print(f"{len(result.evaluated)} environments for {n} candidates (at most {max_steps(n)}): {', '.join(result.evaluated)}")
    if result.first_change is None or result.before is None:
        console.print(f"no change: every release evaluated gives {result.steps[0].result.status}")
        return 0
    for step, word in ((result.before, "last with the old outcome"), (result.first_change, "first with the new outcome")):
        r = step.result
        console.print(
            f"  {word:<27} {args.axis} {step.version}: {r.status} {summary.exception_label(r.to_dict())} {r.cause or ''}".rstrip()
        )
    console.print(f"[bold]the outcome changes at {args.axis} {result.first_change.version}[/] (after {result.before.version})")
    return 0


def cmd_repro(args: argparse.Namespace, console: Console) -> int:
    from dataclasses import replace

    from .backends.docker import DockerSettings
    from .report import load_results
    from .repro import verify_repro, write_repro

    doc = load_results(args.results)
    settings = DockerSettings.of_run(doc)
    if args.base_image:
        settings = replace(settings, base_image=args.base_image)
    paths = {p.name: p for p in args.model}
    repro = write_repro(doc, args.cell, args.outdir, paths, args.copy_model, settings)
    console.print(f"wrote {args.outdir}: Dockerfile, requirements.lock, probe.py, request.json, model.json, expected.json, README.md")
    if not args.verify:
        return 0
    console.print("· verifying: building the folder's image and running it")
    seen = verify_repro(repro, doc, paths, settings)
    same = seen == repro.expected
    for model, outcome in seen.items():
        mark = "[green]same[/]" if outcome == repro.expected.get(model) else f"[red]differs[/] (expected {repro.expected.get(model)})"
        console.print(f"  {model}: {outcome['status']} {outcome['exception_type'] or ''} ({outcome['cause'] or '-'}) {mark}")
    console.print("[green]reproduced[/]" if same else "[red]not reproduced[/]")
    return 0 if same else 1


def _open_store(path: Path | None) -> Any:
    from .store import Store, default_store

    path = path or default_store()
    if not path.exists():
        raise UsageError(f"{path}: no result store yet (harness run writes one; --store PATH names another)")
    return Store(path)


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    store = _open_store(args.store)
    table = Table(title=f"runs in {store.path}", title_justify="left")
    for column in ("run", "started", "matrix", "backend", "results", "state"):
        table.add_column(column)
    for run in store.runs():
        state = "complete" if run["complete"] else "interrupted" if run["interrupted"] else "unfinished (killed?)"
        state += f" · shard {run['shard']}" if run["shard"] else ""
        table.add_row(str(run["id"]), run["started"], run["matrix"], run["backend"], str(run["results"]), state)
    console.print(table)
    return 0


def cmd_diff(args: argparse.Namespace, console: Console) -> int:
    from .store import diff_results

    store = _open_store(args.store)
    runs = store.runs()
    if len(args.runs) >= 2:
        first, second = args.runs[:2]
    else:
        whole = [r for r in runs if not r["shard"]]  # shards are parts of a run; their merge is the run
        newest = next((r for r in reversed(runs) if r["id"] == args.runs[0]), None) if args.runs else (whole[-1] if whole else None)
        if newest is None:
            raise UsageError("no such run in the store (harness history lists them)")
        earlier = [r for r in runs if r["matrix"] == newest["matrix"] and r["id"] < newest["id"] and not r["shard"]]
        if not earlier:
            raise UsageError(f"run {newest['id']} has no earlier run of matrix '{newest['matrix']}' to compare with")
        first, second = earlier[-1]["id"], newest["id"]
    changes = diff_results(store.results(first), store.results(second))
    if args.json:
        print(json.dumps({"before": first, "after": second, **changes}, indent=1))
    else:
        console.print(f"[bold]run {first} -> run {second}[/]")
        titles = {
            "new_failures": "new failures",
            "fixed": "fixed",
            "changed_exception": "changed exception type",
            "new_cells": "cells seen for the first time (new releases)",
            "gone_cells": "cells no longer in the matrix",
        }
        for key, title in titles.items():
            console.print(f"{title}: {len(changes[key])}")
            for c in changes[key]:
                console.print(
                    f"  {c['model']} @ {c['cell']}: {c['before'] or '-'} {c['exception_before'] or ''} -> {c['after'] or '-'} {c['exception_after'] or ''}",
                    markup=False,
                )
    return 1 if changes["new_failures"] else 0


def cmd_images(args: argparse.Namespace, console: Console) -> int:
    from .images import build_base_image

    for python in args.python:
        console.print(f"· building the base image for Python {python} (debootstrap, about 45 s)")
        console.print(f"[green]{build_base_image(python)}[/]")
    return 0


def print_plan(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title=f"{doc['matrix']['name']}: {len(doc['cells'])} cells (dry run: nothing built)", title_justify="left")
    for column in ("cell", "env", "lock"):
        table.add_column(column, overflow="fold")
    for cell in doc["cells"]:
        lock = cell["lock"]
        table.add_row(cell["id"], cell["env_key"] or "—", f"{len(lock)} packages" if lock else "[magenta]unresolvable or skipped[/]")
    console.print(table)
    for env in doc.get("environments", []):
        if env.get("build"):
            console.print(f"[bold]# environment {env['key']} ({', '.join(env['cells'])})[/]")
            console.print(env["build"], markup=False, highlight=False, soft_wrap=True)


def cmd_cells(args: argparse.Namespace, console: Console) -> int:
    from .matrix import load_matrix
    from .pipeline import expand_cells, resolve_cells
    from .resolve import Lock, PackageIndex, Resolver

    matrix = load_matrix(args.matrix)
    index = PackageIndex()
    cells = expand_cells(matrix, index)
    resolutions = resolve_cells(cells, Resolver(matrix.packages, index.config))
    rows: list[dict[str, Any]] = []
    for cell in cells:
        r = resolutions[cell]
        pins = Lock(r.text).pins if isinstance(r, Lock) else {}
        rows.append(
            {
                "id": cell.id,
                "python": cell.python,
                "pins": dict(cell.pins),
                "env": dict(cell.env),
                "api": cell.api,
                "overridden": cell.override,
                "status": "resolved" if isinstance(r, Lock) else type(r).__name__.lower(),
                "lock": pins,
                "explanation": getattr(r, "explanation", None),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title=f"{matrix.name}: {len(cells)} cells", title_justify="left")
    for column in ("cell", "resolution", "key packages"):
        table.add_column(column, overflow="fold")
    for row in rows:
        keys = ", ".join(
            f"{n} {v}"
            for n, v in row["lock"].items()
            if n in ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "tensorflow-addons", "numpy", "h5py", "protobuf")
        )
        status = (
            "[green]resolved[/]"
            if row["status"] == "resolved"
            else f"[magenta]{row['status']}[/]: {(row['explanation'] or '').splitlines()[0] if row['explanation'] else ''}"
        )
        table.add_row(row["id"], status + (" (override)" if row["overridden"] else ""), keys)
    console.print(table)
    return 0


def cmd_inspect(args: argparse.Namespace, console: Console) -> int:
    from .modelfile import describe, inspect_model, partial_note, readable

    infos = [inspect_model(p) for p in args.models]
    if args.json:
        print(json.dumps([describe(i) for i in infos], indent=1, default=str))
        return 1 if any(i.corrupt for i in infos) else 0
    for info in infos:
        console.print(f"[bold]{info.path}[/]")
        console.print(f"  format        {info.format}   size {info.size} bytes   sha256 {info.sha256[:16]}")
        console.print(f"  saved by      Keras {info.keras_version or '?'}" + (f", backend {info.backend}" if info.backend else ""))
        if info.partial:
            console.print(f"  [dark_orange]not a model[/]   {partial_note(info)}")
        console.print(f"  classes       {', '.join(sorted({c.name for c in info.classes})) or '—'}")
        for kind, label in (("custom", "custom"), ("addons", "Addons"), ("lambda", "Lambda")):
            names = info.names(kind)
            if names:
                console.print(f"  {label:<13} [bold]{', '.join(names)}[/]")
        if info.loss or info.metrics or info.optimizer:
            console.print(
                f"  compiled      loss {readable(info.loss)}; metrics {readable(info.metrics)}; optimizer {info.optimizer or '—'}"
            )
        for risk in info.risks:
            console.print(f"  [dark_orange]risk[/]          {risk}")
        for problem in info.problems:
            console.print(f"  [red]corrupt[/]       {problem}")
        for doubt in info.doubts:
            console.print(f"  [dark_orange]may be damaged[/] {doubt} (not certain: runs still load it)", markup=True)
        if not info.problems and not info.doubts:
            console.print("  integrity     [green]no problem found[/]")
    return 1 if any(i.corrupt for i in infos) else 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .report import load_results, summary, write_reports

    doc = load_results(args.results)
    outdir = args.outdir or args.results.parent
    outdir.mkdir(parents=True, exist_ok=True)
    written = write_reports(doc, outdir)
    summary_tables(console, doc)
    console.print("wrote " + ", ".join(str(p) for p in written))
    print_follow_up(console, doc)
    return summary.exit_code(doc)


def cmd_gc(args: argparse.Namespace, console: Console) -> int:
    from .backends import create_backend

    backend = create_backend(args.backend)
    console.print(backend.collect_garbage(None if args.all else args.older_than))
    return 0


COMMANDS = {
    "run": cmd_run,
    "cells": cmd_cells,
    "inspect": cmd_inspect,
    "report": cmd_report,
    "bisect": cmd_bisect,
    "crossload": cmd_crossload,
    "repro": cmd_repro,
    "images": cmd_images,
    "merge": cmd_merge,
    "baseline": cmd_baseline,
    "schedule": cmd_schedule,
    "history": cmd_history,
    "diff": cmd_diff,
    "gc": cmd_gc,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    # Logs (CI) are wider than the 80 columns rich assumes without a terminal.
    console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 160)
    try:
        return COMMANDS[args.command](args, console)
    except HarnessError as exc:
        if args.traceback or os.environ.get("HARNESS_TRACEBACK"):
            print_traceback()
        print(f"harness: error: {redact(str(exc))}", file=sys.stderr)  # one line, never wrapped
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except sqlite3.Error as exc:  # a full disk or a locked file under the store: SQLite rolled the write back
        print(
            f"harness: error: the result store: {exc}; nothing half-written (free space, or --store elsewhere / --no-store)",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug in harness: say so, with no secret in it
        print_traceback()
        print(
            f"harness: internal error: {redact(f'{type(exc).__name__}: {exc}')} (a bug: please report it with the traceback above)",
            file=sys.stderr,
        )
        return 70


def print_traceback() -> None:
    """The current exception's traceback, with credentials in URLs hidden."""
    import traceback

    print(redact(traceback.format_exc()), file=sys.stderr, end="")


def entry() -> None:
    """The `harness` command: main(), then an exit that Ray's teardown cannot change.

    After a run on a Ray cluster, an object reference collected during interpreter
    teardown (after the disconnect) makes Ray's core worker end the process with 1, seen
    once in a few Ctrl-C runs: the gate's code or 130 would be lost. The harness has
    written everything by then, so once the disconnect has finished it leaves without
    the teardown. After Ctrl-C it does not wait for the disconnect either: with warm
    environments the shutdown thread itself ended the process with 1 (seen 2 of 2 runs);
    the cells are cancelled by then, and Ray ends a departed driver's tasks.
    """
    code = main()
    if "ray" not in sys.modules:
        sys.exit(code)
    import threading

    if code != 130:  # interrupted: the cells were cancelled, and a driver that leaves ends its tasks anyway
        for thread in threading.enumerate():
            if thread.name == "ray-shutdown":
                thread.join(30)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
