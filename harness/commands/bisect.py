"""`harness bisect MODEL`: the first release of a package where a model's outcome changes."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome
from .common import (
    STYLE,
    add_sandbox_arguments,
    backend_choices,
    backend_name,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bisect",
        help="find the first release of a package where a model's outcome changes",
        description="Evaluate the oldest candidate release, then binary-search for the first one whose outcome differs "
        "(1 + ceil(log2 n) environments). Candidates: the newest patch of each minor line between --from and --to.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL")
    parser.add_argument("--axis", default="tensorflow", help="the package to bisect (default tensorflow)")
    parser.add_argument("--package", help="what to install for the axis (default: the matrix's packages mapping, else the axis name)")
    parser.add_argument("--from", dest="start", metavar="VERSION", help="oldest release line or version (default: the oldest)")
    parser.add_argument("--to", dest="stop", default="latest", metavar="VERSION", help="newest release line or version (default latest)")
    parser.add_argument("--matrix", type=Path, help="take load options, packages and docker settings from this matrix")
    parser.add_argument("--python", default=None, help="the Python of every candidate (default: this one)")
    parser.add_argument("--patches", action="store_true", help="every release, not only the newest patch per minor line")
    parser.add_argument("--by", choices=("status", "exception"), default="status", help="what counts as a change (default status)")
    parser.add_argument("--backend", type=backend_name, choices=backend_choices(), default="uv")
    add_sandbox_arguments(parser)
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..backends import get_backend
    from ..bisect import Step, bisect_model, max_steps
    from ..escape import terminal
    from ..inspection import inspect_model
    from ..matrix import HOST_PYTHON, LoadOptions, load_matrix
    from ..report import summary
    from ..request import refuse_untrusted
    from ..sandbox import Limits, unsandboxed_reason

    info = inspect_model(args.model)
    matrix = load_matrix(args.matrix) if args.matrix else None
    install = args.package or (matrix.install_name(args.axis) if matrix else args.axis)
    backend = get_backend(
        args.backend, matrix.docker if matrix else {}, matrix.path if matrix else None, args.sandbox, Limits.parse(args.memory, args.pids)
    )
    load = replace(matrix.load if matrix else LoadOptions(), trusted=args.trust_models)
    refuse_untrusted(backend.sandbox, [info], load.trusted, unsandboxed_reason() if args.sandbox == "auto" else "--sandbox none was given")

    def show(step: Step) -> None:
        r = step.result
        label = summary.exception_label(r.to_dict())
        console.print(f"  {terminal(args.axis)} {step.version:<10} [{STYLE.get(r.status, 'white')}]{r.status}[/] {terminal(label)} {r.cause or ''}")

    console.print(f"· bisecting {terminal(info.name)} over {terminal(install)} ({terminal(args.start or 'oldest')} to {terminal(args.stop)})")
    result = bisect_model(
        info,
        args.axis,
        install,
        backend,
        load,
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
        return PASSED
    for step, word in ((result.before, "last with the old outcome"), (result.first_change, "first with the new outcome")):
        r = step.result
        console.print(
            terminal(f"  {word:<27} {args.axis} {step.version}: {r.status} {summary.exception_label(r.to_dict())} {r.cause or ''}".rstrip())
        )
    console.print(f"[bold]the outcome changes at {terminal(args.axis)} {result.first_change.version}[/] (after {result.before.version})")
    return PASSED
