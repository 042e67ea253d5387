"""Errors a user can act on. Each class carries its exit code; `main` prints one line."""

from __future__ import annotations

import re

# scheme://user:password@host or scheme://token@host: the secret part of a URL's userinfo.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]*)(?::(?P<password>[^/\s@]*))?@")


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


class InfraUnavailable(HarnessError):
    """The package index, the network or the disk failed before any cell could be tried:
    nothing was tested, which is never a pass (the same exit code as a run of untested cells)."""

    exit_code = 5


class Interrupted(HarnessError):
    exit_code = 130


def located(path: object, line: int | None, message: str) -> str:
    """`file:line: message`, the form editors and CI logs turn into links."""
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it hidden: https://user:***@host/...

    Index URLs carry passwords and tokens (UV_INDEX_URL=https://user:token@host/simple);
    every message, log, report and traceback the harness writes goes through this.
    """

    def hide(found: re.Match[str]) -> str:
        if found.group("password") is not None:
            return f"{found.group('scheme')}{found.group('user')}:***@"
        return f"{found.group('scheme')}***@"  # a bare token as the user name

    return _USERINFO.sub(hide, text)


def without_credentials(url: str) -> str:
    """`url` with its user name and password left out (https://host/simple): for files that
    leave this machine (a reproduction folder), where even a hidden `***` has no place."""
    return _USERINFO.sub(lambda found: found.group("scheme"), url)
