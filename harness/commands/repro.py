"""`harness repro RESULTS.json CELL -o DIR`: a stand-alone reproduction of one cell."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome, Verdict


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "repro",
        help="write a stand-alone reproduction of one cell (Dockerfile, lock, load script, README)",
        description="Write DIR with the rendered Dockerfile, the locked requirements, the probe and its request, the model reference "
        "(sha256; the file too with --copy-model), the outcome seen and a README with the exact commands. --verify rebuilds it and "
        "checks the outcome is the same (exit 0) or not (exit 1).",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS.json")
    parser.add_argument("cell", metavar="CELL_ID")
    parser.add_argument("-o", "--outdir", type=Path, required=True)
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="a model file of the run (needed by --copy-model and --verify; checked against its sha256); repeatable. "
        "Paths in a results file are never followed: it may come from someone else's machine",
    )
    parser.add_argument("--copy-model", action="store_true", help="copy the model file(s) into the folder")
    parser.add_argument("--verify", action="store_true", help="build the folder's image, run it, compare the outcome")
    parser.add_argument("--base-image", metavar="IMAGE", help="base image for the Dockerfile ({python} filled in)")
    parser.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="a Dockerfile template of yours (a Jinja2 file, rendered sandboxed); default: the one the run used if the harness ships it",
    )
    parser.add_argument("--custom-objects", type=Path, metavar="FILE", help="the custom objects module the run used, copied into the folder")
    parser.add_argument(
        "--trust-models", action="store_true", help="try safe_mode=False as the run did with --trust-models (it runs a file's code)"
    )
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..escape import terminal
    from ..report import load_results
    from ..repro import verify_repro, write_repro

    doc = load_results(args.results)
    paths = {p.name: p for p in args.model}
    repro = write_repro(
        doc, args.cell, args.outdir, paths, args.copy_model, args.base_image, args.custom_objects, args.template, args.trust_models
    )
    console.print(f"wrote {terminal(args.outdir)}: Dockerfile, requirements.lock, probe.py, request.json, model.json, expected.json, README.md")
    if not args.verify:
        return PASSED
    console.print("· verifying: building the folder's image and running it")
    seen = verify_repro(repro, doc, paths)
    same = seen == repro.expected
    for model, outcome in seen.items():
        mark = "[green]same[/]" if outcome == repro.expected.get(model) else f"[red]differs[/] (expected {terminal(repro.expected.get(model))})"
        said = terminal(f"{model}: {outcome['status']} {outcome['exception_type'] or ''} ({outcome['cause'] or '-'})")
        console.print(f"  {said} {mark}")
    console.print("[green]reproduced[/]" if same else "[red]not reproduced[/]")
    return Verdict(failed=not same)
