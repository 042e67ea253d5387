"""`harness cells MATRIX`: the cells a matrix expands to, resolved; nothing built."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ..escape import terminal
from ..exits import PASSED, Outcome
from .common import print_json, required

if TYPE_CHECKING:
    from ..matrix import Cell


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "cells",
        help="list the cells a matrix expands to, resolved",
        description="Expand MATRIX against the package index and resolve every cell with uv; nothing is built.",
    )
    parser.add_argument("matrix", nargs="?", type=Path, help="the YAML matrix; default: `matrix` in [tool.harness]")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--no-lock",
        action="store_true",
        help="expand against the index only: the releases each cell names, without resolving it with uv (seconds for 50,000 cells)",
    )
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..matrix import load_matrix
    from ..pipeline import expand_cells, resolve_cells
    from ..resolve import Lock, PackageIndex, Resolver, unresolvable_line

    matrix = load_matrix(required(args, "matrix"))
    index = PackageIndex()
    cells = expand_cells(matrix, index)
    if args.no_lock:
        return _expanded(matrix.name, cells, args.json, console)
    resolutions = resolve_cells(cells, Resolver(matrix.packages, index.config))
    rows: list[dict[str, Any]] = []
    for cell in cells:
        r = resolutions[cell]
        pins = Lock(r.text).pins if isinstance(r, Lock) else {}
        rows.append(
            {
                **_row(cell),
                "status": "resolved" if isinstance(r, Lock) else type(r).__name__.lower(),
                "lock": pins,
                "explanation": getattr(r, "explanation", None),
            }
        )
    if args.json:
        print_json(rows)
        return PASSED
    table = Table(title=f"{matrix.name}: {len(cells)} cells", title_justify="left")
    for column in ("cell", "resolution", "key packages"):
        table.add_column(column, overflow="fold")
    for row in rows:
        keys = ", ".join(
            f"{n} {v}"
            for n, v in row["lock"].items()
            if n in ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "tensorflow-addons", "jax", "jaxlib", "torch", "numpy", "h5py", "protobuf")
        )
        status = (
            "[green]resolved[/]"
            if row["status"] == "resolved"
            else f"[magenta]{row['status']}[/]: {terminal(unresolvable_line(row['explanation'] or ''))}"
        )
        table.add_row(row["id"], status + (" (override)" if row["overridden"] else ""), keys)
    console.print(table)
    return PASSED


def _row(cell: Cell) -> dict[str, Any]:
    """What a cell is, as `--json` gives it (resolved or not)."""
    return {
        "id": cell.id,
        "python": cell.python,
        "pins": dict(cell.pins),
        "env": dict(cell.env),
        "api": cell.api,
        "overridden": cell.override,
    }


def _expanded(name: str, cells: Sequence[Cell], as_json: bool, console: Console) -> Outcome:
    """One line per cell (a table of 50,000 rows would take longer to lay out than to expand)."""
    if as_json:
        print_json([_row(c) for c in cells])
        return PASSED
    console.print(f"[bold]{name}[/]: {len(cells)} cells (expanded, not resolved)", highlight=False)
    sys.stdout.write("".join(f"{c.id}\n" for c in cells))
    return PASSED
