"""Where cell tasks run: a local thread pool, or a Ray cluster (ray_executor), one interface.

A task is a plain callable returning a value; the executor yields values as they
finish. Threads suffice locally because every task's work happens in child processes.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from . import activity, proc
from .backends import Backend

T = TypeVar("T")


class Executor(Protocol):
    def use_backend(self, backend: Backend) -> None:
        """The backend the cells run with (a cluster's workers create it from its name and
        portable_config(); a local executor uses the object itself)."""

    def run_all(self, tasks: Sequence[Any], on_stage: Callable[[str, str], None] | None = None) -> Iterator[Any]:
        """Yield each task's value as it finishes. Closing the iterator cancels the rest.

        The runner's tasks are CellTasks (plain data, callable): a local executor calls
        them in threads, a cluster executor (ray_executor) ships them to workers.
        on_stage(cell id, stage): what a running cell is doing (activity.py), where the
        executor can see it.
        """
        ...


class LocalExecutor:
    """`jobs` probes at once (each a TensorFlow process) and, beside them, up to `builds`
    environment builds: a cell builds while others load, then waits for a probe slot.
    With -j 1 there is no overlap: one cell at a time, start to end, in order."""

    def __init__(self, jobs: int, builds: int | None = None):
        self.jobs = max(1, jobs)
        self.builds = max(0, builds if builds is not None else default_builds(self.jobs))

    def use_backend(self, backend: Backend) -> None:
        pass  # the tasks carry it

    def run_all(self, tasks: Sequence[Callable[[], T]], on_stage: Callable[[str, str], None] | None = None) -> Iterator[T]:
        pool = cf.ThreadPoolExecutor(max_workers=self.jobs + self.builds, thread_name_prefix="cell")
        slots = activity.Slots.of(max(1, self.builds), self.jobs)
        futures = [pool.submit(_in_cell(task, slots, on_stage)) for task in tasks]
        try:
            for future in cf.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)


def _in_cell(task: Callable[[], T], slots: activity.Slots, on_stage: Callable[[str, str], None] | None) -> Callable[[], T]:
    """The task with its slots, and what it says (activity.say) passed on under its cell's id."""
    cell = getattr(getattr(task, "cell", None), "id", None)

    def call() -> T:
        with activity.using(slots):
            if on_stage is None or cell is None:
                return task()
            with activity.reporting(lambda stage: on_stage(cell, stage)):
                return task()

    return call


def default_builds(jobs: int) -> int:
    """Environment builds beside the probes: two per probe slot, at most 8. None with -j 1
    (one cell at a time).

    A build is uv's install (links from uv's cache, or downloads) and then the bytecode
    compile, which the uv backend runs one at a time on every core. More slots let the
    installs run while a compile does. Four new TensorFlow environments at -j 2, four
    interleaved runs each: median 16.3 s with four slots, 17.0 s with two.
    """
    return 0 if jobs == 1 else min(8, 2 * jobs)


def default_jobs(gib_per_cell: float = 1.5) -> int:
    """As many cells as there are cores, fewer when memory would not hold them.

    A TensorFlow process with a small model peaks near 0.5-1 GiB here; 1.5 GiB per cell
    leaves room for bigger models and for the page cache that keeps imports fast.
    """
    cores = proc.usable_cores()
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        available_gib = int(info["MemAvailable"].split()[0]) / (1024 * 1024)
    except (OSError, KeyError, ValueError):
        return cores
    return max(1, min(cores, int(available_gib // gib_per_cell)))
