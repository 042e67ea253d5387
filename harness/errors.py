"""Errors a user can act on. Each class carries its exit code; `main` prints one line."""

from __future__ import annotations


class HarnessError(Exception):
    """A failure of the run as a whole (not of one cell: cells fail as results)."""

    exit_code = 1


class UsageError(HarnessError):
    """Bad input: arguments, a matrix file, a model file, an output folder."""

    exit_code = 2


class NothingToDo(HarnessError):
    exit_code = 3


class BackendUnavailable(HarnessError):
    exit_code = 4


class Interrupted(HarnessError):
    exit_code = 130


def located(path: object, line: int | None, message: str) -> str:
    """`file:line: message`, the form editors and CI logs turn into links."""
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"
