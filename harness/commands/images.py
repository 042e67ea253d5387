"""`harness images base`: Docker base images for machines with no registry."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("images", help="manage Docker images (base images for machines with no registry)")
    images_commands = parser.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    base = images_commands.add_parser(
        "base",
        help="build a base image from a Debian root file system (debootstrap + docker import)",
        description="Build harness-base:pyX.Y with debootstrap (bullseye: 3.9, bookworm: 3.11, trixie: 3.13) and docker import; "
        "then run with --base-image 'harness-base:py{python}'. Needs root, debootstrap and a Debian mirror; about 45 s.",
    )
    base.add_argument("--python", action="append", required=True, choices=("3.9", "3.11", "3.13"), help="repeatable")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..images import build_base_image

    for python in args.python:
        console.print(f"· building the base image for Python {python} (debootstrap, about 45 s)")
        console.print(f"[green]{build_base_image(python)}[/]")
    return PASSED
