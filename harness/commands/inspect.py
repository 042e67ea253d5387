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
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..modelfile import describe, inspect_model, partial_note, readable

    infos = [inspect_model(p) for p in args.models]
    if args.json:
        print(json.dumps([describe(i) for i in infos], indent=1, default=str))
        return Verdict(failed=any(i.corrupt for i in infos))
    for info in infos:
        console.print(f"[bold]{info.path}[/]")
        console.print(f"  format        {info.format}   size {info.size} bytes   sha256 {info.sha256[:16]}")
        console.print(f"  saved by      Keras {info.keras_version or '?'}" + (f", backend {info.backend}" if info.backend else ""))
        if info.partial:
            console.print(f"  [dark_orange]not a model[/]   {partial_note(info)}")
        console.print(f"  classes       {', '.join(sorted({c.name for c in info.classes})) or '—'}")
        for kind, label in (("custom", "custom"), ("addons", "Addons"), ("lambda", "Lambda")):
            names = info.names(kind)
            if names:
                console.print(f"  {label:<13} [bold]{', '.join(names)}[/]")
        if info.loss or info.metrics or info.optimizer:
            console.print(
                f"  compiled      loss {readable(info.loss)}; metrics {readable(info.metrics)}; optimizer {info.optimizer or '—'}"
            )
        for risk in info.risks:
            console.print(f"  [dark_orange]risk[/]          {risk}")
        for problem in info.problems:
            console.print(f"  [red]corrupt[/]       {problem}")
        for doubt in info.doubts:
            console.print(f"  [dark_orange]may be damaged[/] {doubt} (not certain: runs still load it)", markup=True)
        if not info.problems and not info.doubts:
            console.print("  integrity     [green]no problem found[/]")
    return Verdict(failed=any(i.corrupt for i in infos))
