"""Exit codes: the one function that decides them, and the table `harness --help` prints.

A command returns what it found (a run document, or a Verdict for commands that check
one thing); an error is an exception. `exit_code` turns either into the process's code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import HarnessError

OK, FAILED, USAGE, NOTHING_TO_DO, BACKEND_UNAVAILABLE, UNTESTED, INTERNAL, INTERRUPTED = 0, 1, 2, 3, 4, 5, 70, 130

MEANINGS = {
    OK: "all cells loaded (or loaded after a fix)",
    FAILED: "some cells failed to load (with --fail-on: what it names); diff: new failures; repro --verify: not reproduced",
    USAGE: "usage or matrix error",
    NOTHING_TO_DO: "nothing to do",
    BACKEND_UNAVAILABLE: "backend unavailable",
    UNTESTED: "not everything was tested: nothing at all (the index could not be reached, or every cell was skipped, "
    "unresolvable or an infrastructure error), or nothing failed but some cells were skipped (their Python is not on this "
    "machine: --python-downloads); never a pass",
    INTERNAL: "internal error (a bug)",
    INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class Verdict:
    """What a command that checks one thing found: `failed` when it does not hold."""

    failed: bool = False


PASSED = Verdict()  # what a command that found nothing wrong returns
Outcome = Mapping[str, Any] | Verdict


def exit_code(outcome: Outcome | BaseException) -> int:
    """The process's exit code for what a command returned or raised."""
    if isinstance(outcome, BaseException):
        if isinstance(outcome, HarnessError):
            return outcome.exit_code
        if isinstance(outcome, KeyboardInterrupt):
            return INTERRUPTED
        if isinstance(outcome, sqlite3.Error):
            return FAILED  # the store failed; SQLite rolled the write back
        return INTERNAL
    if isinstance(outcome, Verdict):
        return FAILED if outcome.failed else OK
    if (outcome.get("run") or {}).get("missing_shards"):
        return FAILED  # a partial merge is never a pass
    gate = outcome.get("gate")
    if gate:  # --fail-on against the baseline or the previous run
        if gate.get("untested"):
            return UNTESTED
        if gate.get("failed"):
            return FAILED
        return UNTESTED if gate.get("not_tested") else OK
    from .report.summary import failed  # a document older than the gate: any failure

    return FAILED if failed(outcome) else OK


def epilog() -> str:
    """The table for `harness --help`."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in MEANINGS.items())
