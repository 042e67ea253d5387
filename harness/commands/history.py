"""`harness history`: the runs in the result store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..escape import terminal
from ..exits import PASSED, Outcome
from .common import (
    open_store,
    print_json,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("history", help="list the runs in the result store")
    parser.add_argument("--store", type=Path, default=None, metavar="PATH", help="default: .harness/results.sqlite or $HARNESS_STORE")
    parser.add_argument("--json", action="store_true", help="the runs as JSON, one object per run")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..outcomes import FAILED, LOADS

    store = open_store(args.store)
    counts = store.status_counts()

    def tally(run: dict[str, Any]) -> dict[str, int]:
        mine = counts.get(run["id"], {})
        return {
            "loaded": sum(n for s, n in mine.items() if s in LOADS),
            "failed": sum(n for s, n in mine.items() if s in FAILED),
            "not_tested": sum(n for s, n in mine.items() if s not in LOADS and s not in FAILED),
        }

    if args.json:
        print_json(
            [{**run, **tally(run), "complete": bool(run["complete"]), "interrupted": bool(run["interrupted"])} for run in store.runs()]
        )
        return PASSED
    table = Table(title=f"runs in {terminal(store.path)}", title_justify="left")
    for column in ("run", "started", "matrix", "backend", "results", "loaded", "failed", "not tested", "state"):
        table.add_column(column, justify="right" if column in ("results", "loaded", "failed", "not tested") else "left")
    for run in store.runs():
        state = "complete" if run["complete"] else "interrupted" if run["interrupted"] else "unfinished (killed?)"
        state += f" · shard {run['shard']}" if run["shard"] else ""
        n = tally(run)
        table.add_row(
            str(run["id"]),
            terminal(run["started"]),
            terminal(run["matrix"]),
            terminal(run["backend"]),
            str(run["results"]),
            f"[green]{n['loaded']}[/]",
            f"[red]{n['failed']}[/]" if n["failed"] else "0",
            str(n["not_tested"]),
            state,
        )
    console.print(table)
    return PASSED
