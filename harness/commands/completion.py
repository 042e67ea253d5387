"""`harness completion SHELL`: the shell code that completes harness's commands and flags.

    eval "$(harness completion bash)"            # ~/.bashrc
    eval "$(harness completion zsh)"             # ~/.zshrc
    harness completion fish | source             # ~/.config/fish/config.fish

argcomplete does the completing: the shell calls harness back with the line so far, and
the parser itself answers (cli.main hands it over before anything else runs).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from ..exits import PASSED, Outcome

SHELLS = ("bash", "zsh", "fish")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "completion",
        help="print the shell code that completes harness's commands and flags (bash, zsh, fish)",
        description='Print shell completion code. bash: eval "$(harness completion bash)" in ~/.bashrc; zsh: the same in '
        "~/.zshrc; fish: harness completion fish | source in ~/.config/fish/config.fish.",
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["harness"], shell=args.shell))
    return PASSED
