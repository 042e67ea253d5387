"""`harness inspect MODEL...`: static facts about model files, read without TensorFlow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exits import Outcome, Verdict


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("inspect", help="static facts about a model file (no TensorFlow needed)")
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL", help="default: `models` in [tool.harness]")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..escape import terminal
    from ..inspection import inspect_files
    from ..modelfile import describe, partial_note, readable
    from .common import required

    infos = inspect_files(required(args, "models"))
    if args.json:
        print(json.dumps([describe(i) for i in infos], indent=1, default=str))
        return Verdict(failed=any(i.corrupt for i in infos))
    for info in infos:  # every value from the file passes escape.terminal: a class name is the file author's text
        console.print(f"[bold]{terminal(info.path)}[/]")
        console.print(f"  format        {info.format}   size {info.size} bytes   sha256 {info.sha256[:16]}")
        console.print(f"  saved by      Keras {terminal(info.keras_version or '?')}" + (f", backend {terminal(info.backend)}" if info.backend else ""))
        if info.partial:
            console.print(f"  [dark_orange]not a model[/]   {terminal(partial_note(info))}")
        console.print(f"  classes       {terminal(', '.join(sorted({c.name for c in info.classes})) or '—')}")
        for kind, label in (("custom", "custom"), ("addons", "Addons"), ("lambda", "Lambda")):
            names = info.names(kind)
            if names:
                console.print(f"  {label:<13} [bold]{terminal(', '.join(names))}[/]")
        if info.loss or info.metrics or info.optimizer:
            console.print(
                f"  compiled      loss {terminal(readable(info.loss))}; metrics {terminal(readable(info.metrics))}; "
                f"optimizer {terminal(info.optimizer or '—')}"
            )
        for risk in info.risks:
            console.print(f"  [dark_orange]risk[/]          {terminal(risk)}")
        for problem in info.problems:
            console.print(f"  [red]corrupt[/]       {terminal(problem)}")
        for doubt in info.doubts:
            console.print(f"  [dark_orange]may be damaged[/] {terminal(doubt)} (not certain: runs still load it)")
        for unread in info.unread:
            console.print(f"  [dark_orange]not read[/]      {terminal(unread)} (runs load it in a sandbox of its own)")
        if not info.problems and not info.doubts and not info.unread:
            console.print("  integrity     [green]no problem found[/]")
    return Verdict(failed=any(i.corrupt for i in infos))
