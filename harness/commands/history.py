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
    store = open_store(args.store)
    if args.json:
        print_json([{**run, "complete": bool(run["complete"]), "interrupted": bool(run["interrupted"])} for run in store.runs()])
        return PASSED
    table = Table(title=f"runs in {terminal(store.path)}", title_justify="left")
    for column in ("run", "started", "matrix", "backend", "results", "state"):
        table.add_column(column)
    for run in store.runs():
        state = "complete" if run["complete"] else "interrupted" if run["interrupted"] else "unfinished (killed?)"
        state += f" · shard {run['shard']}" if run["shard"] else ""
        table.add_row(str(run["id"]), terminal(run["started"]), terminal(run["matrix"]), terminal(run["backend"]), str(run["results"]), state)
    console.print(table)
    return PASSED
