"""`harness crossload MATRIX --build BUILD.py`: save in every cell, load every saved file in every cell."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import Outcome
from .common import (
    RichProgress,
    add_sandbox_arguments,
    backend_choices,
    backend_name,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "crossload",
        help="save a model in every cell with your build script, then load every saved file in every cell",
        description="Run BUILD.py in each cell as `python BUILD.py OUTDIR` (your trusted script; it saves model files there), "
        "then load every saved file in every cell. Writes the usual reports plus crossload.md: saved-by rows, loaded-by columns.",
    )
    parser.add_argument("matrix", nargs="?", type=Path, help="the YAML matrix; default: `matrix` in [tool.harness]")
    parser.add_argument("--build", type=Path, required=True, metavar="BUILD.py", help="e.g. examples/build_dense.py")
    parser.add_argument("-o", "--outdir", type=Path, default=Path("harness-crossload"))
    parser.add_argument("--backend", type=backend_name, choices=backend_choices(), default="uv")
    parser.add_argument("-j", "--jobs", type=int, default=None)
    parser.add_argument("--only", action="append", default=[], metavar="GLOB")
    parser.add_argument("--base-image", metavar="IMAGE")
    add_sandbox_arguments(parser)
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..crossload import crossload
    from ..matrix import load_matrix
    from ..runner import RunOptions
    from .common import required

    matrix = load_matrix(required(args, "matrix"))
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
    return doc
