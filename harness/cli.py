"""The command line: parsing and dispatch. Each command lives in harness/commands/; the exit
code is decided in one place (exits.exit_code)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import HarnessError, redact
from .escape import controls_shown
from .exits import USAGE, epilog, exit_code

EPILOG = """\
examples:
  harness run matrices/seed-article.yaml examples/models/*.h5 -o report/
      build one uv environment per cell, load every model in each, write
      report/results.json, report.md, report.html and junit.xml
  harness cells matrices/keras3-transition.yaml
      show the cells a matrix expands to, with their resolved locks
  harness inspect model.h5
      what the file contains (format, saved-by versions, custom/Addons/Lambda
      classes, corruption), without TensorFlow
  harness run m.yaml model.h5 --only 'py3.11-tensorflow2.16*' --dry-run
      show what would be built for a subset of cells
  harness images base --python 3.9 && harness run m.yaml model.h5 --backend docker --base-image 'harness-base:py{python}'
      run cells in sandboxed containers on a machine with no container registry
  harness schedule matrices/seed-article.yaml models/m.h5 --cron '0 6 * * 1' --shards 4 --install 'harness @ git+https://github.com/your-org/harness'
      write a GitHub Actions workflow: weekly, 4 shards, merged report, failing on
      regressions only (harness baseline RESULTS.json accepts today's outcomes)

"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Find in which environments a saved Keras model loads, and why it fails where it does not.",
        epilog=EPILOG + epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show a Python traceback on errors (for bug reports)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from .commands import COMMANDS  # here, not at the top: `harness inspect` starts its reader before these imports
    from .commands.common import COLOR

    for command in COMMANDS:
        command.add_parser(commands)
    for sub in subparsers(parser).values():
        shared = sub.add_argument_group("every command")
        shared.add_argument("--color", choices=COLOR, default="auto", help="colour the output: auto (a terminal; NO_COLOR off), always, never")
        config = shared.add_mutually_exclusive_group()
        config.add_argument("--config", type=Path, metavar="FILE", dest="config_path", help="read defaults from FILE (harness.toml or pyproject.toml)")
        config.add_argument("--no-config", action="store_true", help="read no [tool.harness] defaults")
    return parser


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{command name: its parser}."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return dict(choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["inspect"] and "-h" not in words and "--help" not in words:
        from .inspection import start_early

        start_early([w for w in words[1:] if not w.startswith("-")])  # the reader starts while the parser is built
    parser = build_parser()
    config_error: HarnessError | None = None
    try:
        configure(parser, words)
    except HarnessError as exc:
        config_error = exc  # said once the command is known (`harness --help` still works)
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (harness completion SHELL): answer, exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args, extras = parser.parse_known_args(words)
    if extras:  # the command's own usage, not the top level's, as pytest and uv say it
        (subparsers(parser).get(args.command or "") or parser).error(f"unrecognized arguments: {' '.join(extras)}")
    if config_error is not None and args.command:
        print(f"harness: error: {redact(str(config_error))} (--no-config reads none)", file=sys.stderr)
        return exit_code(config_error)
    if not args.command:
        parser.print_help()
        return USAGE
    if os.environ.get("GITHUB_ACTIONS") == "true":  # no workflow command of a model's text is read from our output
        from .report.github import stop_commands

        stop_commands(sys.stderr if getattr(args, "json", False) else sys.stdout)
    from .commands.common import new_console

    console = new_console(color=getattr(args, "color", None))
    try:
        return exit_code(args.main(args, console))
    except HarnessError as exc:
        if args.traceback or os.environ.get("HARNESS_TRACEBACK"):
            print_traceback()
        print(f"harness: error: {controls_shown(redact(str(exc)))}", file=sys.stderr)  # one line, never wrapped
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print("harness: interrupted", file=sys.stderr)
        return exit_code(exc)
    except sqlite3.Error as exc:  # a full disk or a locked file under the store: SQLite rolled the write back
        print(
            f"harness: error: the result store: {exc}; nothing half-written (free space, or --store elsewhere / --no-store)",
            file=sys.stderr,
        )
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - a bug in harness: say so, with no secret in it
        print_traceback()
        print(
            f"harness: internal error: {controls_shown(redact(f'{type(exc).__name__}: {exc}'))} (a bug: please report it with the traceback above)",
            file=sys.stderr,
        )
        return exit_code(exc)


def configure(parser: argparse.ArgumentParser, words: Sequence[str]) -> None:
    """Every command's defaults from the repository's [tool.harness] (config.py): the nearest
    file, the one `--config FILE` names, or none with `--no-config`."""
    from .config import apply, find, load

    if "--no-config" in words:
        return
    named = next((words[n + 1] for n, w in enumerate(words[:-1]) if w == "--config"), None)
    named = named or next((w.split("=", 1)[1] for w in words if w.startswith("--config=")), None)
    found = load(Path(named)) if named else find(Path.cwd())
    if found is not None:
        apply(subparsers(parser), found)


def print_traceback() -> None:
    """The current exception's traceback, with credentials in URLs hidden."""
    import traceback

    print(controls_shown(redact(traceback.format_exc())), file=sys.stderr, end="")


def entry() -> None:
    """The `harness` command: main(), then an exit that Ray's teardown cannot change.

    After a run on a Ray cluster, an object reference collected during interpreter
    teardown (after the disconnect) makes Ray's core worker end the process with 1, seen
    once in a few Ctrl-C runs: the gate's code or 130 would be lost. The harness has
    written everything by then, so once the disconnect has finished it leaves without
    the teardown. After Ctrl-C it does not wait for the disconnect either: with warm
    environments the shutdown thread itself ended the process with 1 (seen 2 of 2 runs);
    the cells are cancelled by then, and Ray ends a departed driver's tasks.
    """
    code = main()
    if "ray" not in sys.modules:
        sys.exit(code)
    import threading

    if code != 130:  # interrupted: the cells were cancelled, and a driver that leaves ends its tasks anyway
        for thread in threading.enumerate():
            if thread.name == "ray-shutdown":
                thread.join(30)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
