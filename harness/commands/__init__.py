"""One module per command. Each has `add_parser(subparsers)`, which sets `main` as the
parser's default, and `main(args, console) -> Outcome` (a run document or an
exits.Verdict; errors are exceptions). cli.py parses, dispatches and turns the outcome
into an exit code (exits.exit_code); a new command is a new module listed here.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    baseline,
    bisect,
    cells,
    completion,
    crossload,
    diff,
    gc,
    history,
    images,
    inspect,
    merge,
    migrate,
    report,
    repro,
    run,
    schedule,
)

# In the order `harness --help` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    run,
    cells,
    inspect,
    report,
    crossload,
    bisect,
    migrate,
    repro,
    images,
    merge,
    baseline,
    schedule,
    history,
    diff,
    gc,
    completion,
)
