"""`harness report RESULTS.json`: re-render the reports of a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome
from .common import (
    add_json_argument,
    overview,
    print_follow_up,
    print_json,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="re-render the reports from a results.json",
        description="Re-render report.md, report.html and junit.xml from a results.json. Exits 0 once they are written "
        "(the run's own exit code said whether cells failed); 2 when the file cannot be read.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS.json")
    parser.add_argument("-o", "--outdir", type=Path, default=None, help="default: the folder of RESULTS.json")
    add_json_argument(parser, "the results document as read")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..report import load_results, write_reports

    doc = load_results(args.results)
    outdir = args.outdir or args.results.parent
    outdir.mkdir(parents=True, exist_ok=True)
    written = write_reports(doc, outdir)
    if args.json:
        print_json(doc)
        return PASSED
    overview(console, doc, outdir)
    console.print("wrote " + ", ".join(str(p) for p in written))
    print_follow_up(console, doc)
    return PASSED  # rendering is the command's job; whether cells failed was the run's verdict
