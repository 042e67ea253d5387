"""The only module that starts processes.

Every child runs in its own session, so a timeout or Ctrl-C kills the whole process
group (TensorFlow starts helper threads and sometimes processes), and nothing is left
running after the harness exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .errors import HarnessError

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()
_stop_hooks: list[Callable[[], None]] = []


@dataclass(frozen=True)
class Completed:
    """What one command did: an outcome value, never re-parsed from logs."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def signal(self) -> int | None:
        """The signal that killed the process (negative return codes), if any."""
        return -self.returncode if self.returncode < 0 else None


def find_executable(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise HarnessError(f"'{name}' was not found on PATH; install it or put it on PATH")
    return found


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    stdin: str | None = None,
) -> Completed:
    """Run `argv` to completion (or to `timeout`, then kill its process group)."""
    argv = tuple(str(a) for a in argv)
    if _stopping.is_set():
        raise HarnessError("the run is stopping; no new processes are started")
    start = time.monotonic()
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise HarnessError(f"cannot run '{argv[0]}': {exc.strerror}") from exc
    with _live_lock:
        _live.add(child)
    if _stopping.is_set():  # kill_all ran between the check above and the registration: it missed this one
        _kill_group(child)
    timed_out = False
    try:
        try:
            out, err = child.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(child)
            out, err = child.communicate()
    finally:
        with _live_lock:
            _live.discard(child)
        if child.poll() is None:  # interrupted while waiting: leave nothing behind
            _kill_group(child)
            child.wait()
    return Completed(
        argv=argv,
        returncode=child.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        seconds=time.monotonic() - start,
        timed_out=timed_out,
    )


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)


def add_stop_hook(hook: Callable[[], None]) -> None:
    """Run `hook` on Ctrl-C too: for what is not a child process (a Docker container)."""
    if hook not in _stop_hooks:
        _stop_hooks.append(hook)


def kill_all() -> None:
    """Kill every child still running and start no more (Ctrl-C): finished results stay."""
    _stopping.set()
    with _live_lock:
        children = list(_live)
    for child in children:
        _kill_group(child)
    for hook in list(_stop_hooks):
        hook()
