"""`harness run MATRIX MODEL...`: load models in every cell of a matrix and write the reports."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import UsageError
from ..escape import terminal
from ..exits import PASSED, Outcome
from .common import (
    RichProgress,
    add_gate_arguments,
    add_json_argument,
    add_sandbox_arguments,
    backend_choices,
    backend_name,
    new_console,
    overview,
    parse_shard,
    print_durations,
    print_follow_up,
    print_json,
    print_plan,
    summary_tables,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="load models in every cell of a matrix and write a report",
        description="Expand MATRIX into cells, resolve each to a lock with uv, build one environment per lock, load every MODEL in each cell (never in this process) and write results.json, report.md, report.html and junit.xml.",
    )
    parser.add_argument(
        "matrix", nargs="?", type=Path, help="the YAML matrix (see matrices/ for examples); default: `matrix` in [tool.harness]"
    )
    parser.add_argument(
        "models",
        nargs="*",
        type=Path,
        metavar="MODEL",
        help=".h5 / .keras files or SavedModel folders; default: `models` in [tool.harness] (pyproject.toml or harness.toml)",
    )
    parser.add_argument(
        "-o", "--outdir", type=Path, default=Path("harness-report"), help="where the report goes (default: ./harness-report)"
    )
    parser.add_argument(
        "--backend",
        type=backend_name,
        choices=backend_choices(),
        default="uv",
        help="uv virtualenvs (default) or Docker containers; auto: Docker when a daemon answers",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="cells run at once (default: cores, fewer if memory is short; with Ray, its resources decide)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only cells whose id matches GLOB (repeatable), e.g. 'py3.11-tensorflow2.15*'",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve and plan, print the environments (and rendered Dockerfiles) that would be built, run nothing",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="PATH",
        help="the SQLite result store (default: .harness/results.sqlite, or $HARNESS_STORE)",
    )
    parser.add_argument("--no-store", action="store_true", help="keep no history and reuse no result")
    parser.add_argument("--fresh", action="store_true", help="run every cell again, even those whose result the store holds")
    parser.add_argument(
        "--try-fixes",
        action="store_true",
        help="also try fixes that need another environment: tf-keras with TF_USE_LEGACY_KERAS=1 for Keras 2 files",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run the K-th of N stable slices of the cells (CI jobs in parallel); `harness merge` joins their results.json",
    )
    parser.add_argument("--refresh", action="store_true", help="ask the package index now for new releases, ignoring its cached listings")
    parser.add_argument(
        "--lf",
        "--last-failed",
        dest="last_failed",
        action="store_true",
        help="run only the cells that failed in the store's last run of this matrix (with --only: those of them that match); "
        "every cell when none failed or there is no earlier run, as pytest does",
    )
    add_json_argument(parser, "the results document (as results.json; with --dry-run, the plan)")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only warnings, the verdict and where the report is")
    loud.add_argument("-v", "--verbose", action="store_true", help="also print every load attempt and the fix of each result")
    parser.add_argument(
        "-x",
        "--fail-fast",
        dest="maxfail",
        action="store_const",
        const=1,
        help="stop at the first failed result: cells still running are stopped and left out; the exit code is 1",
    )
    parser.add_argument("--maxfail", type=int, metavar="N", help="stop after N failed results (as -x after the first)")
    parser.add_argument("--no-progress", action="store_true", help="no live bar and no per-cell lines (the tables and verdict still print)")
    parser.add_argument(
        "--durations", type=int, metavar="N", help="list the N slowest cells (environment build and loading), as pytest --durations"
    )
    cluster = parser.add_argument_group("where cells run")
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
    cluster.add_argument(
        "--python-downloads",
        action="store_true",
        help="let uv install a CPython a cell needs that this machine lacks (uv-managed, from uv's download source); "
        "without it, or UV_PYTHON_DOWNLOADS=automatic / python-downloads in uv.toml, such cells are skipped and the run is not a pass",
    )
    add_gate_arguments(parser)
    add_sandbox_arguments(parser)
    box = parser.add_argument_group("docker backend (override the matrix's docker: section)")
    box.add_argument(
        "--template", metavar="NAME|FILE", help="Dockerfile template: a name in dockerfiles/ (default, uv-cache) or a .j2 file"
    )
    box.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="base image, {python} filled in (default python:{python}-slim; air-gapped: 'harness-base:py{python}')",
    )
    box.add_argument("--cpus", type=float, metavar="N", help="CPUs per container (default 1)")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..matrix import load_matrix
    from ..pipeline import make_executor
    from ..report.github import report_to_github
    from ..runner import RunOptions, run
    from ..store import default_store

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("-j/--jobs must be at least 1")
    if args.maxfail is not None and args.maxfail < 1:
        raise UsageError("--maxfail must be at least 1")
    if args.matrix is None or not args.models:
        missing = "MATRIX and MODEL" if args.matrix is None and not args.models else "MATRIX" if args.matrix is None else "MODEL"
        raise UsageError(
            f"no {missing}: pass them (harness run MATRIX MODEL...) or set `matrix` and `models` under [tool.harness] "
            "in pyproject.toml or harness.toml"
        )
    if getattr(args, "config_file", None):
        console.print(f"[grey50]· defaults from {args.config_file} (flags on the command line win)[/]", highlight=False)
    docker = {"template": args.template, "base_image": args.base_image, "memory": args.memory, "cpus": args.cpus, "pids": args.pids}
    options = RunOptions(
        sandbox=args.sandbox,
        python_downloads=args.python_downloads,
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
        last_failed=args.last_failed,
        maxfail=args.maxfail,
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
    if args.json:  # stdout carries the document alone: progress and warnings go to stderr
        console = new_console(stderr=True)
    progress = RichProgress(console, -1 if args.quiet or args.json or args.no_progress else 1 if args.verbose else 0)
    start = time.monotonic()
    try:
        doc = run(matrix, args.models, options, progress, executor)
    finally:
        progress.stop()
    if args.dry_run:
        print_json(doc) if args.json else print_plan(console, doc)
        return PASSED
    # inside GitHub Actions: the step summary and ::error annotations (on stderr with --json: stdout is the document's)
    report_to_github(doc, emit=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    if args.json:
        print_json(doc)
        return doc
    if not args.quiet:
        overview(console, doc, args.outdir)
        if args.verbose:
            summary_tables(console, doc)
    if args.durations:
        print_durations(console, doc, args.durations)
    console.print(
        f"[bold]{len(doc['results'])} results in {time.monotonic() - start:.0f} s[/] · {terminal(args.outdir)}/: report.html, report.md, junit.xml"
    )
    print_follow_up(console, doc)
    return doc
