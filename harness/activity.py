"""What a running cell is doing, for the progress display: "building the environment: 41
packages", "importing TensorFlow", "loading model 2/3".

The executor that runs a cell task in this process sets a listener for it
(`reporting`); code deep inside the cell (the backend's build, the probe's channel)
calls `say`. Without a listener (a cluster worker, a test) nothing happens.

The executor also hands a cell its slots (`Slots`): environment builds and probes are
limited separately, so that environments build while other cells load (a pipeline:
build, then probe), with no more TensorFlow processes at once than memory holds.

The probe's channel is the cell's output: `ChannelStages` reads only the `kind` of each
message, and every stage it reports is one of its own fixed sentences with counts; no
text a cell wrote ever reaches the screen this way.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_listener: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("harness_activity", default=None)

MAX_LINE = 1 << 16  # a channel line longer than this is not one the stages need (outputs are in later lines)


@contextlib.contextmanager
def reporting(listener: Callable[[str], None]) -> Iterator[None]:
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def say(stage: str) -> None:
    listener = _listener.get()
    if listener is not None:
        with contextlib.suppress(Exception):  # a display that fails never fails a build or a cell
            listener(stage)


@dataclass(frozen=True)
class Slots:
    """How many environment builds and how many probes may run at once in this process."""

    builds: threading.BoundedSemaphore
    probes: threading.BoundedSemaphore

    @classmethod
    def of(cls, builds: int, probes: int) -> Slots:
        return cls(threading.BoundedSemaphore(max(1, builds)), threading.BoundedSemaphore(max(1, probes)))


_slots: contextvars.ContextVar[Slots | None] = contextvars.ContextVar("harness_slots", default=None)


@contextlib.contextmanager
def using(slots: Slots) -> Iterator[None]:
    token = _slots.set(slots)
    try:
        yield
    finally:
        _slots.reset(token)


@contextlib.contextmanager
def slot(kind: str) -> Iterator[None]:
    """A build slot ("build") or a probe slot ("probe") for what follows; no limit outside an
    executor that set them (a cluster worker, a direct call)."""
    slots = _slots.get()
    if slots is None:
        yield
        return
    semaphore = slots.builds if kind == "build" else slots.probes
    if not semaphore.acquire(blocking=False):
        say("environment ready, waiting for a free slot to load" if kind == "probe" else "waiting for a build slot")
        semaphore.acquire()
    try:
        yield
    finally:
        semaphore.release()


class ChannelStages:
    """Fed the probe's channel bytes as they arrive; says the stage each message starts."""

    def __init__(self, models: int):
        self.models = models
        self.loaded = 0
        self.pending = bytearray()
        self.skipping = False  # inside an over-long line: dropped up to its end
        self.listener = _listener.get()  # the feeding thread (proc's pump) is the cell's own

    def __call__(self, data: bytes) -> None:
        if self.listener is None:
            return
        *lines, tail = data.split(b"\n")
        if lines:
            first = bytes(self.pending) + lines[0]
            self.pending = bytearray()
            if self.skipping:
                self.skipping = False  # the end of an over-long line
            else:
                self._line(first)
            for line in lines[1:]:
                self._line(line)
        if self.skipping:
            return
        self.pending += tail
        if len(self.pending) > MAX_LINE:
            self.pending = bytearray()
            self.skipping = True

    def _line(self, line: bytes) -> None:
        if len(line) > MAX_LINE or not line.startswith(b'{"'):
            return
        try:
            kind = json.loads(line).get("kind")
        except (ValueError, AttributeError):
            return
        assert self.listener is not None
        if kind == "start":
            self.listener("importing TensorFlow")
        elif kind == "import":
            self.listener(f"loading model 1/{self.models}")
        elif kind == "model":
            self.loaded += 1
            if self.loaded < self.models:
                self.listener(f"loading model {self.loaded + 1}/{self.models}")
