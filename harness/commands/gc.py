"""`harness gc`: remove cached environments."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome
from .common import (
    backend_choices,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "gc",
        help="remove cached environments",
        description="Remove cached environments (uv venvs, or with --backend docker the harness-env images) not used for "
        "--older-than days (default 30), or all with --all. For uv, the compiled bytecode that no remaining environment "
        "links goes too.",
    )
    parser.add_argument("--all", action="store_true", help="remove every cached environment")
    parser.add_argument("--older-than", type=float, default=30.0, metavar="DAYS")
    parser.add_argument(
        "--backend",
        choices=backend_choices()[1:],
        default="uv",
        help="whose cache: uv's environments (default) or Docker's harness-env images",
    )
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..backends import create_backend

    backend = create_backend(args.backend)
    console.print(backend.collect_garbage(None if args.all else args.older_than))
    return PASSED
