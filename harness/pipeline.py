"""The stages every command that loads models is built from, as plain functions, and the
one loop that runs cells (`run_cells`).

load matrix -> inspect models -> expand -> select -> shard -> resolve -> plan -> (cache)
-> run_cells -> outputs / fixes / history (pure) -> record -> report.

`harness run` (runner.py), `harness crossload`, the cross-environment fixes, bisect and
repro compose these; none of them writes its own loop over cells.
"""

from __future__ import annotations

import concurrent.futures as cf
import fnmatch
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import __version__, proc
from .backends import Backend
from .cell import CellTask
from .diagnose import CellResult
from .errors import Interrupted, NothingToDo, UsageError
from .executor import Executor, LocalExecutor, default_jobs
from .gate import default_fail_on
from .inspection import inspect_files
from .matrix import Cell, Matrix, combinations, expand_versions
from .modelfile import ModelInfo
from .paths import name_part
from .plan import EnvJob, EnvSpec, plan
from .probe import PROBE_VERSION
from .recorder import now
from .request import refuse_untrusted
from .resolve import INDEX_TTL, LOCK_TTL, Lock, PackageIndex, Resolution, ResolveFailed, Resolver, Unresolvable, python_requirement
from .sandbox import unsandboxed_reason


@dataclass(frozen=True)
class RunOptions:
    outdir: Path
    backend: str = "uv"
    jobs: int | None = None
    only: tuple[str, ...] = ()
    dry_run: bool = False
    store: Path | None = None  # the SQLite store; None: no store, no cache
    fresh: bool = False  # run every cell even when the store has its result
    try_fixes: bool = False  # also try fixes that need another environment (tf-keras legacy mode)
    docker: Mapping[str, Any] = field(default_factory=dict)  # flags over the matrix's docker section
    shard: tuple[int, int] | None = None  # (K, N): run the K-th of N stable slices of the cells
    refresh: bool = False  # ask the package index now, ignoring cached release lists and locks
    fail_on: str | None = None  # what makes the exit code 1 (gate.FAIL_ON); None: per baseline
    baseline: Path | None = None  # accepted outcomes (harness baseline)
    executor: str = "local"  # local threads, or ray (cells as tasks on a Ray cluster)
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a cluster started on this machine
    ray_cpus: float = 1.0  # what each cell asks Ray for
    ray_memory: str = "1.5g"
    sandbox: str = "auto"  # what contains a uv cell: bwrap, none, or auto (bwrap where it works)
    python_downloads: bool = False  # uv may install the CPython a cell needs (else such cells are skipped: not tested)
    trust_models: bool = False  # run files that carry code even where no sandbox exists
    memory: str | None = None  # per cell (uv sandbox and Docker); None: 4g
    pids: int | None = None  # per cell; None: 512
    last_failed: bool = False  # only the cells that failed in the store's last run of this matrix
    maxfail: int | None = None  # stop after this many failed results (-x: 1)

    @property
    def gate(self) -> str:
        return self.fail_on or default_fail_on(self.baseline)


class Progress(Protocol):
    def stage(self, text: str) -> None: ...
    def warn(self, text: str) -> None:
        """What the user must see even with -q (running unsandboxed, a run stopped early)."""

    def start(self, total: int) -> None: ...
    def cell_stage(self, cell: str, stage: str) -> None:
        """What a running cell is doing (called from the threads that run cells)."""

    def cell_done(self, results: Sequence[CellResult]) -> None: ...


class QuietProgress:
    def stage(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
        pass

    def cell_stage(self, cell: str, stage: str) -> None:
        pass

    def cell_done(self, results: Sequence[CellResult]) -> None:
        pass


@dataclass
class Planned:
    """Everything decided before anything is built (what --dry-run shows)."""

    cells: list[Cell]
    resolutions: dict[Cell, Resolution]
    jobs: list[EnvJob]
    skipped: dict[Cell, str] = field(default_factory=dict)
    positions: dict[Cell, int] = field(default_factory=dict)  # place in the full expansion (merge orders by it)


def inspect_models(paths: Iterable[str | Path]) -> list[ModelInfo]:
    infos = inspect_files(paths)
    for info in infos:
        name_part(info.name, "model file name")  # it names the model's folders of outputs and files
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise UsageError(
            f"two models share a file name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}); rename one so the report can tell them apart"
        )
    return infos


def expand_cells(matrix: Matrix, index: PackageIndex) -> list[Cell]:
    return expand_versions(matrix, combinations(matrix), index.versions)


def check_trust(backend: Backend, infos: Sequence[ModelInfo], options: RunOptions) -> None:
    """Refuse, before anything is built, the files every cell would refuse (request.refuse_untrusted)."""
    refuse_untrusted(backend.sandbox, infos, options.trust_models, why_unsandboxed(options))


def why_unsandboxed(options: RunOptions) -> str:
    return "--sandbox none was given" if options.sandbox == "none" else unsandboxed_reason()


def select_cells(cells: Sequence[Cell], only: Sequence[str]) -> list[Cell]:
    if not only:
        return list(cells)
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, pattern) for pattern in only)]


def last_failed(matrix: Matrix, store_path: Path | None) -> tuple[int, set[str]]:
    """(run id, cell ids with a failed result) of the store's newest whole run of this matrix."""
    from .diagnose import FAILED
    from .store import Store

    if store_path is None:
        raise UsageError("--last-failed reads the result store: drop --no-store")
    if not store_path.exists():
        return 0, set()
    store = Store(store_path)
    try:
        runs = store.earlier_runs(matrix.name)
        if not runs:
            return 0, set()
        newest = runs[0]["id"]
        return newest, {r["cell"] for r in store.results(newest) if r.get("status") in FAILED}
    finally:
        store.close()


class StopRun(Exception):
    """Raised by a run's on_cell to end the run early (--fail-fast): run_cells stops it as it
    stops on Ctrl-C, and returns."""


def resolve_workers() -> int:
    """How many `uv pip compile` run at once. A compile mostly waits on the index (measured: 1.3 s
    wall for 0.2 s of CPU), so several per core; 4 in all left 500 new cells at 131 s here."""
    return max(4, min(32, 8 * (os.cpu_count() or 1)))


def resolve_cells(cells: Sequence[Cell], resolver: Resolver, workers: int | None = None) -> dict[Cell, Resolution]:
    with cf.ThreadPoolExecutor(max_workers=workers or resolve_workers()) as pool:
        return dict(zip(cells, pool.map(resolver.resolve, cells), strict=True))


def shard_cells(cells: Sequence[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """The K-th of N slices: every N-th cell of the expansion from the K-th on.

    Round robin over the expansion order keeps shards within one cell of each other
    and spreads each TensorFlow release over the shards; the same matrix and index
    give the same slices, so a shard re-run (or resumed) runs the same cells.
    """
    if shard is None:
        return list(cells)
    k, n = shard
    return list(cells[k - 1 :: n])


def plan_run(matrix: Matrix, options: RunOptions, backend: Backend, progress: Progress) -> Planned:
    index = PackageIndex(ttl=0.0 if options.refresh else INDEX_TTL)
    progress.stage("expanding the matrix against the package index")
    expanded = expand_cells(matrix, index)
    positions = {c: i for i, c in enumerate(expanded)}
    cells = select_cells(expanded, options.only)
    if not cells:
        raise NothingToDo(f"no cell matches --only {' '.join(options.only)}; `harness cells {matrix.path}` lists the ids")
    if options.last_failed:  # as pytest's --lf: with nothing recorded as failed, every cell runs
        run_id, failed = last_failed(matrix, options.store)
        chosen = [c for c in cells if c.id in failed]
        if not run_id:
            progress.stage(f"--last-failed: no earlier run of '{matrix.name}' in the store, so every cell runs")
        elif not chosen:
            progress.stage(f"--last-failed: no cell failed in run {run_id} of '{matrix.name}', so every cell runs")
        else:
            cells = chosen
            progress.stage(f"--last-failed: the {len(cells)} cell(s) that failed in run {run_id}")
    cells = shard_cells(cells, options.shard)
    progress.stage(f"resolving {len(cells)} cells with uv" + (f" (shard {options.shard[0]}/{options.shard[1]})" if options.shard else ""))
    resolutions = resolve_cells(cells, Resolver(matrix.packages, index.config, ttl=0.0 if options.refresh else LOCK_TTL))
    skipped = {c: backend.skip_reason(c.python) for c in cells if not backend.python_available(c.python)}
    locked = [(c, r.text) for c, r in resolutions.items() if isinstance(r, Lock) and c not in skipped]
    return Planned(cells, resolutions, plan(locked, backend.name, backend.fingerprint), skipped, positions)


def unrun_results(planned: Planned, infos: Sequence[ModelInfo]) -> list[CellResult]:
    """Cells that end before any environment: unresolvable, skipped, infra failures."""
    results = []
    for cell in planned.cells:
        resolution = planned.resolutions[cell]
        for info in infos:
            if isinstance(resolution, Unresolvable):
                needs = python_requirement(resolution.explanation)
                fix = (
                    f"{needs[0]} {needs[1]} needs Python {needs[2]} and this cell is Python {cell.python}: give the cell a Python "
                    f"that fits (the matrix's python axis) or pick another {needs[0]} release (resolution: override cannot lift a "
                    "package's own Python requirement)"
                    if needs
                    else "these pins cannot be installed together; set `resolution: override` to force them"
                )
                results.append(
                    CellResult(
                        model=info.name,
                        cell=cell.id,
                        status="unresolvable",
                        cause="version-mismatch",
                        fix=fix,
                        detail=resolution.explanation,
                    )
                )
            elif isinstance(resolution, ResolveFailed):
                results.append(CellResult(model=info.name, cell=cell.id, status="infra-error", detail=resolution.explanation))
            elif cell in planned.skipped:
                results.append(CellResult(model=info.name, cell=cell.id, status="skipped", detail=planned.skipped[cell]))
    return results


def check_outdir(outdir: Path) -> None:
    """Fail early, and create nothing, when the report could not be written there."""
    existing = outdir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "is not a folder" if not existing.is_dir() else "is not writable"
        raise UsageError(f"{outdir}: cannot write the report there ({existing} {why}); pick another folder with -o")


def create_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{outdir}: cannot write the report there ({exc.strerror}); pick another folder with -o") from None


def run_cells(
    executor: Executor,
    tasks: Sequence[CellTask],
    on_cell: Callable[[Sequence[CellResult]], None],
    on_interrupt: Callable[[], str],
    on_stage: Callable[[str, str], None] | None = None,
) -> None:
    """The one loop over cell tasks (run, crossload, the legacy fixes, bisect): `on_cell` gets
    each cell's results as they come (the recorder writes them).

    Ctrl-C kills every child process and starts no more, closes the executor's stream (a
    cluster cancels its tasks), lets the caller keep what finished (`on_interrupt` returns
    what to tell the user), and raises Interrupted.
    """
    stream = executor.run_all(tasks, on_stage)
    try:
        for results in stream:
            on_cell(results)
    except StopRun:
        proc.kill_all()  # the cells still running end here: their results are not kept
        close = getattr(stream, "close", None)
        if close:
            close()
        proc.resume()
    except KeyboardInterrupt:
        proc.kill_all()
        close = getattr(stream, "close", None)
        if close:
            close()
        raise Interrupted(on_interrupt()) from None


def collect(executor: Executor, tasks: Sequence[CellTask], what: str) -> list[CellResult]:
    """run_cells for stages that need every result before they go on (fixes, bisect steps)."""
    results: list[CellResult] = []
    run_cells(executor, tasks, results.extend, lambda: f"interrupted while {what}")
    return results


def make_executor(options: RunOptions) -> Executor:
    if options.executor == "ray":
        from .ray_executor import RayExecutor

        ray = RayExecutor(options.ray_address, options.ray_cpus, options.ray_memory)
        ray.connect()
        return ray
    if options.executor != "local":
        raise UsageError(f"--executor {options.executor}: choose local or ray")
    return LocalExecutor(options.jobs or default_jobs())


def cell_task(cell: Cell, env: EnvSpec, backend: Backend, infos: Sequence[ModelInfo], matrix: Matrix, logs: Path) -> CellTask:
    return CellTask(cell, env, backend, tuple(infos), matrix.load, logs)


def new_document(matrix: Matrix, infos: Sequence[ModelInfo], planned: Planned, backend: Backend, options: RunOptions) -> dict[str, Any]:
    env_keys = {cell: job.env.key for job in planned.jobs for cell in job.cells}
    cells = []
    for cell in planned.cells:
        resolution = planned.resolutions[cell]
        cells.append(
            {
                "id": cell.id,
                "python": cell.python,
                "pins": dict(cell.pins),
                "requested": dict(cell.requested),
                "install": {name: matrix.install_name(name) for name, _ in cell.pins},
                "env": dict(cell.env),
                "api": cell.api,
                "overridden": cell.override,
                "env_key": env_keys.get(cell),
                "lock": resolution.text.split() if isinstance(resolution, Lock) else None,
                "position": planned.positions.get(cell),
            }
        )
    return {
        "schema": "harness-results",
        "schema_version": 1,
        "harness_version": __version__,
        "probe_version": PROBE_VERSION,
        "run": {
            "started": now(),
            "finished": None,
            "complete": False,
            "interrupted": False,
            "backend": backend.name,
            "sandbox": backend.sandbox,
            "sandbox_note": None if backend.sandbox != "none" else f"not sandboxed: {why_unsandboxed(options)}",
            "docker": None,
            **backend.settings_record(),  # Docker's settings under "docker": repro and merge read them
            "jobs": options.jobs or default_jobs(),
            "shard": {"index": options.shard[0], "count": options.shard[1]} if options.shard else None,
            "fail_on": options.gate,
            "fail_on_given": options.fail_on is not None,
            "try_fixes": options.try_fixes,
            "baseline": str(options.baseline) if options.baseline else None,
        },
        "matrix": {
            "name": matrix.name,
            "path": str(matrix.path),
            "axes": [k for k, _ in matrix.axes],
            "packages": dict(matrix.packages),
            "load": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(matrix.load).items()},
        },
        "models": [info.to_dict() for info in infos],
        "cells": cells,
        "environments": [
            {
                "key": job.env.key,
                "python": job.env.python,
                "cells": [c.id for c in job.cells],
                **({"build": backend.describe(job.env)} if options.dry_run else {}),
            }
            for job in planned.jobs
        ],
        "results": [],
    }
