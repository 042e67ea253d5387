"""`harness diff [RUN [RUN]]`: what changed between two runs of the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import UsageError
from ..escape import visible
from ..exits import Outcome, Verdict
from .common import (
    open_store,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "diff",
        help="what changed between two runs: new failures, fixed cells, changed exceptions, cells seen for the first time",
        description="Compare two runs of the store (default: the last two runs of the newest run's matrix). Exit 1 when there are new failures.",
    )
    parser.add_argument(
        "runs", nargs="*", type=int, metavar="RUN", help="run ids from `harness history` (none: the last two; one: it and the run before)"
    )
    parser.add_argument("--store", type=Path, default=None, metavar="PATH")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..store import diff_results

    store = open_store(args.store)
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
                    visible(
                        f"  {c['model']} @ {c['cell']}: {c['before'] or '-'} {c['exception_before'] or ''} -> "
                        f"{c['after'] or '-'} {c['exception_after'] or ''}"
                    ),
                    markup=False,
                )
    return Verdict(failed=bool(changes["new_failures"]))
