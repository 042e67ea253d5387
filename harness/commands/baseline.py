"""`harness baseline RESULTS.json`: accept a run's outcomes for --fail-on regression."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "baseline",
        help="accept the outcomes of a run as the baseline that --fail-on regression compares with",
        description="Write the outcome of every (model, cell) in RESULTS.json as accepted. Commit the file; "
        "`harness run ... --baseline FILE` then fails (exit 1) only on failures the baseline does not accept: "
        "a cell that loaded and now fails, or a new cell (a new release) that fails.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS.json", help="from harness run or harness merge")
    parser.add_argument("-o", "--output", type=Path, default=Path("harness-parser.json"), help="default: ./harness-parser.json")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..gate import write_baseline
    from ..report import load_results

    doc = load_results(args.results)
    if not doc["run"].get("complete"):
        console.print("[yellow]the run did not finish: cells it did not reach are not in the baseline (they count as new)[/]")
    baseline = write_baseline(doc, args.output)
    n = sum(len(cells) for cells in baseline["accepted"].values())
    console.print(f"wrote {args.output}: {n} accepted outcomes; use it with `harness run ... --baseline {args.output}`")
    return PASSED
