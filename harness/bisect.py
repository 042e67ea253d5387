"""Find the first release of one package where a model's outcome changes.

    harness bisect model.h5 --axis tensorflow --package tensorflow-cpu --from 2.12 --to latest

The candidates are the newest patch of every minor line between --from and --to (every
release with --patches). The oldest is evaluated first; then a binary search looks for
the first candidate whose outcome differs from it, assuming the outcome changes once.
With n candidates that is 1 + ceil(log2(n)) environments: 5 for TF 2.12 to 2.21.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from packaging.version import Version

from .backends import Backend
from .cell import run_cell
from .diagnose import CellResult
from .errors import NothingToDo, UsageError
from .matrix import HOST_PYTHON, Cell, LoadOptions, version_kind
from .modelfile import ModelInfo
from .plan import EnvSpec
from .resolve import Lock, PackageIndex, Resolver


@dataclass(frozen=True)
class Step:
    version: str
    result: CellResult

    def outcome(self, by: str) -> tuple[str | None, ...]:
        if by == "exception":
            return (self.result.status, (self.result.exception or {}).get("type"), self.result.cause)
        return (self.result.status,)


@dataclass
class Bisection:
    axis: str
    candidates: list[str]
    steps: list[Step] = field(default_factory=list)
    first_change: Step | None = None
    before: Step | None = None

    @property
    def evaluated(self) -> list[str]:
        return [s.version for s in self.steps]


def candidates(versions: Sequence[Version], start: str | None, stop: str | None, patches: bool = False) -> list[Version]:
    """Releases between start and stop (release lines or exact versions; stop may be latest)."""
    finals = sorted(v for v in versions if not v.is_prerelease and not v.is_devrelease)
    if start:
        low = Version(start)
        finals = [v for v in finals if v.release[: len(low.release)] >= low.release]
    if stop and stop != "latest":
        high = Version(stop)
        finals = [v for v in finals if v.release[: len(high.release)] <= high.release]
    if patches:
        return finals
    newest: dict[tuple[int, ...], Version] = {}
    for v in finals:
        newest[v.release[:2]] = v  # ascending order: the last one seen is the newest patch
    return sorted(newest.values())


def search(points: Sequence[str], evaluate: Callable[[str], Step], by: str = "status") -> Bisection:
    """Oldest first, then binary search for the first point whose outcome differs."""
    result = Bisection(axis="", candidates=list(points))
    if not points:
        return result
    first = evaluate(points[0])
    result.steps.append(first)
    known = {0: first}
    low, high = 0, len(points)  # high == len(points): "no change", never evaluated
    while high - low > 1:
        middle = (low + high) // 2
        step = evaluate(points[middle])
        result.steps.append(step)
        known[middle] = step
        if step.outcome(by) == first.outcome(by):
            low = middle
        else:
            high = middle
    if high < len(points):
        result.first_change, result.before = known[high], known[low]
    return result


def max_steps(n: int) -> int:
    return 1 + math.ceil(math.log2(n)) if n > 1 else n


def bisect_model(
    info: ModelInfo,
    axis: str,
    install: str,
    backend: Backend,
    load: LoadOptions,
    start: str | None = None,
    stop: str | None = "latest",
    python: str = HOST_PYTHON,
    patches: bool = False,
    by: str = "status",
    on_step: Callable[[Step], None] | None = None,
) -> Bisection:
    for bound in (start, stop):
        if bound and bound != "latest" and version_kind(bound) == "specifier":
            raise UsageError(f"--from/--to take a version or a release line, not '{bound}'")
    index = PackageIndex()
    points = [str(v) for v in candidates(index.versions(install, python), start, stop, patches)]
    if len(points) < 2:
        raise NothingToDo(
            f"{install}: {len(points)} release(s) for Python {python} between {start or 'the first'} and {stop}: nothing to bisect"
        )
    resolver = Resolver({axis: install}, index.config)

    def evaluate(version: str) -> Step:
        cell = Cell(python=python, pins=((axis, version),))
        lock = resolver.resolve(cell)
        if not isinstance(lock, Lock):
            step = Step(version, CellResult(model=info.name, cell=cell.id, status="unresolvable", detail=getattr(lock, "explanation", "")))
        else:
            [found] = run_cell(cell, EnvSpec(python, lock.text, backend.name, backend.fingerprint), backend, [info], load)
            step = Step(version, found)
        if on_step:
            on_step(step)
        return step

    result = search(points, evaluate, by)
    result.axis = axis
    return result
