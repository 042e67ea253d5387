"""The only module that starts processes.

Every child runs in its own session, so a timeout or Ctrl-C kills the whole process
group (TensorFlow starts helper threads and sometimes processes), and nothing is left
running after the harness exits.

What a child prints is untrusted and unbounded (a model's code runs in the probe): each
stream is read as it comes and only a bounded head and tail are kept, and at the
deadline the group is killed and its pipes are abandoned after a short grace, so a
descendant that escaped the group and holds the pipes cannot hold the harness.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .errors import HarnessError

STREAM_KEEP = 64 * 1024  # bytes kept of each stream's head, and of its tail
PIPE_GRACE = 3.0  # seconds to wait for the pipes to close once the child is gone

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
    truncated: bool = False  # a stream printed more than was kept (see Capture)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def signal(self) -> int | None:
        """The signal that killed the process (negative return codes), if any."""
        return -self.returncode if self.returncode < 0 else None


class Capture:
    """A stream's bytes, bounded: the first `head` and last `tail` bytes, and a count.

    With tail=0 it keeps only the head (a channel whose start is what matters) and says
    how much it dropped; memory never grows past head + tail whatever the child writes.
    """

    def __init__(self, head: int = STREAM_KEEP, tail: int = STREAM_KEEP):
        self.head_limit, self.tail_limit = head, tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_limit:
            self.tail += data
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        if not self.tail_limit or not self.dropped:  # a channel keeps its start, unmarked (truncated says so)
            return head + self.tail.decode("utf-8", "replace")
        gap = f"\n[... harness: {self.dropped} bytes not kept ...]\n" if self.dropped else ""
        return head + gap + self.tail.decode("utf-8", "replace")


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    stdout_keep: int | None = None,
    on_timeout: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
    watch: Callable[[bytes], None] | None = None,
) -> Completed:
    """Run `argv` to completion (or to `timeout`, then kill its process group).

    stdout_keep: keep that many bytes of stdout from its start and no tail (a channel);
    by default both streams keep a bounded head and tail. on_timeout: also called at the
    deadline, for what the group kill does not reach (a container). watch: called with each
    chunk of stdout as it arrives (the progress display reads a probe's channel along).
    """
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
            pass_fds=tuple(pass_fds),
        )
    except FileNotFoundError as exc:
        raise HarnessError(f"cannot run '{argv[0]}': {exc.strerror}") from exc
    with _live_lock:
        _live.add(child)
    if _stopping.is_set():  # kill_all ran between the check above and the registration: it missed this one
        _kill_group(child)
    out = Capture(stdout_keep, 0) if stdout_keep is not None else Capture()
    err = Capture()
    timed_out = False
    try:
        timed_out = _pump(child, out, err, start + timeout if timeout is not None else None, stdin, on_timeout, watch)
    finally:
        with _live_lock:
            _live.discard(child)
        if child.poll() is None:  # interrupted while waiting: leave nothing behind
            _kill_group(child)
            child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    return Completed(
        argv=argv,
        returncode=child.returncode,
        stdout=out.text(),
        stderr=err.text(),
        seconds=time.monotonic() - start,
        timed_out=timed_out,
        truncated=bool(out.dropped or err.dropped),
    )


def _pump(
    child: subprocess.Popen[bytes],
    out: Capture,
    err: Capture,
    deadline: float | None,
    stdin: str | None,
    on_timeout: Callable[[], None] | None,
    watch: Callable[[bytes], None] | None = None,
) -> bool:
    """Read both pipes until they close (bounded), the deadline passes or the child is gone
    and the pipes stay open past the grace. Returns whether the deadline was hit."""
    if child.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write((stdin or "").encode())
        with contextlib.suppress(OSError):
            child.stdin.close()
    assert child.stdout is not None and child.stderr is not None
    streams = {child.stdout.fileno(): out, child.stderr.fileno(): err}
    timed_out = False
    abandon_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while streams:
            now = time.monotonic()
            if not timed_out and deadline is not None and now >= deadline:
                timed_out = True
                _kill_group(child)
                if on_timeout is not None:
                    on_timeout()
                abandon_at = now + PIPE_GRACE
            if abandon_at is None and child.poll() is not None:
                abandon_at = now + PIPE_GRACE  # exited: what still holds the pipes is a stray descendant
            if abandon_at is not None and now >= abandon_at:
                break
            for key, _ in selector.select(timeout=0.1):
                data = os.read(key.fd, 65536)
                if data:
                    streams[key.fd].feed(data)
                    if watch is not None and key.fd == child.stdout.fileno():
                        try:
                            watch(data)
                        except Exception:  # noqa: BLE001 - a display that fails never changes what the child did
                            watch = None
                else:
                    selector.unregister(key.fd)
                    del streams[key.fd]
    if child.poll() is None:  # the pipes closed (or were abandoned) first: wait, up to the deadline
        try:
            child.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(child)
            if on_timeout is not None:
                on_timeout()
            child.wait()
    if streams:  # still open: a descendant outside the group holds them; the group is killed, abandon them
        _kill_group(child)
    return timed_out


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)


def add_stop_hook(hook: Callable[[], None]) -> None:
    """Run `hook` on Ctrl-C too: for what is not a child process (a Docker container)."""
    if hook not in _stop_hooks:
        _stop_hooks.append(hook)


def resume() -> None:
    """A new run (in the same process, after an interrupted one) may start processes again."""
    _stopping.clear()


def kill_all() -> None:
    """Kill every child still running and start no more (Ctrl-C): finished results stay."""
    _stopping.set()
    with _live_lock:
        children = list(_live)
    for child in children:
        _kill_group(child)
    for hook in list(_stop_hooks):
        hook()
