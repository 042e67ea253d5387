"""`harness merge RESULTS.json...`: the shards of a run joined into one report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import Outcome
from .common import (
    add_gate_arguments,
    add_json_argument,
    overview,
    print_follow_up,
    print_json,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "merge",
        help="merge the results.json of shards into one report, as an unsharded run would have written it",
        description="Join the results of `harness run --shard K/N` (every K of one N), compare outputs across shards, "
        "record the merged run in the store and write the reports. Exit codes as `harness run`, per --fail-on.",
    )
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS.json")
    parser.add_argument("-o", "--outdir", type=Path, default=Path("harness-report"), help="default: ./harness-report")
    parser.add_argument("--allow-missing", action="store_true", help="write a partial report when a shard's results are missing (exit 1)")
    parser.add_argument("--store", type=Path, default=None, metavar="PATH", help="default: .harness/results.sqlite or $HARNESS_STORE")
    parser.add_argument("--no-store", action="store_true", help="do not record the merged run")
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="FILE",
        help="expected outputs (.npy/.npz) to compare every cell's with, as load.reference does for a run "
        "(a results file's own paths are never opened)",
    )
    add_gate_arguments(parser)
    add_json_argument(parser, "the merged results document")
    parser.add_argument("-q", "--quiet", action="store_true", help="no tables: the one-line outcome and what failed")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..escape import terminal
    from ..gate import default_fail_on
    from ..merge import merge_runs
    from ..report.github import report_to_github
    from ..store import Store, default_store

    store = None if args.no_store else Store(args.store or default_store())
    fail_on = args.fail_on or default_fail_on(args.baseline)
    doc = merge_runs(args.results, args.outdir, store, fail_on, args.baseline, args.allow_missing, args.reference)
    recorded = (doc["matrix"].get("load") or {}).get("reference")
    if recorded and not args.reference:
        console.print(f"[yellow]the shards' matrix names reference outputs ({terminal(recorded)}): pass --reference FILE to compare with them[/]")
    # inside GitHub Actions: the merged report is the step summary, each regression an ::error annotation
    report_to_github(doc, emit=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    if args.json:
        print_json(doc)
        return doc
    if not args.quiet:
        overview(console, doc, args.outdir)
    console.print(
        f"[bold]merged {len(args.results)} results file(s): {len(doc['results'])} results[/] · report: {terminal(args.outdir)}/report.html, report.md"
    )
    print_follow_up(console, doc)
    missing = doc["run"].get("missing_shards")
    if missing:
        console.print(f"[red]partial report: shard(s) {', '.join(map(str, missing))} missing[/]")
    return doc  # exits.exit_code: a partial merge fails
