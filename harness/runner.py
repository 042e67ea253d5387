"""One run, as one explicit sequence of stages:

load matrix -> inspect models -> expand -> select -> resolve -> plan -> prepare -> probe
-> diagnose -> record -> report.

Every cell ends as a CellResult, whatever goes wrong inside it; only Ctrl-C escapes,
and then the finished cells are written before the run stops.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import __version__, proc
from .backends import Backend, get_backend
from .cell import CellTask, run_cell
from .diagnose import CellResult
from .errors import Interrupted, NothingToDo, UsageError
from .executor import Executor, LocalExecutor, default_jobs
from .fixes import try_legacy_fixes
from .gate import default_fail_on, load_baseline
from .history import follow_up
from .keys import options_key, result_key
from .matrix import Cell, Matrix, combinations, expand_versions
from .modelfile import ModelInfo, inspect_model
from .outputs import compare_outputs
from .paths import write_atomic
from .plan import EnvJob, EnvSpec, plan
from .probe import PROBE_VERSION
from .report import write_reports
from .resolve import INDEX_TTL, LOCK_TTL, Lock, PackageIndex, Resolution, ResolveFailed, Resolver, Unresolvable
from .sandbox import Limits, unsandboxed_reason
from .store import Store, StoredResult


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
    trust_models: bool = False  # run files that carry code even where no sandbox exists
    memory: str | None = None  # per cell (uv sandbox and Docker); None: 4g
    pids: int | None = None  # per cell; None: 512

    @property
    def gate(self) -> str:
        return self.fail_on or default_fail_on(self.baseline)


class Progress(Protocol):
    def stage(self, text: str) -> None: ...
    def start(self, total: int) -> None: ...
    def cell_done(self, results: Sequence[CellResult]) -> None: ...


class QuietProgress:
    def stage(self, text: str) -> None:
        pass

    def start(self, total: int) -> None:
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


# --------------------------------------------------------------------------- stages


def inspect_models(paths: Iterable[str | Path]) -> list[ModelInfo]:
    infos = [inspect_model(p) for p in paths]
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise UsageError(
            f"two models share a file name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}); rename one so the report can tell them apart"
        )
    return infos


def expand_cells(matrix: Matrix, index: PackageIndex) -> list[Cell]:
    return expand_versions(matrix, combinations(matrix), index.versions)


def check_trust(backend: Backend, infos: Sequence[ModelInfo], options: RunOptions) -> None:
    """Refuse to run files that carry code where nothing contains it, unless the user trusts them."""
    if backend.sandbox != "none" or options.trust_models:
        return
    coded = [i.name for i in infos if i.carries_code]
    if coded:
        raise UsageError(
            f"{', '.join(coded)}: carries Python code that runs when it loads, and cells are not sandboxed here "
            f"({why_unsandboxed(options)}); install bubblewrap or use --backend docker, or pass --trust-models if you trust the file"
        )


def why_unsandboxed(options: RunOptions) -> str:
    return "--sandbox none was given" if options.sandbox == "none" else unsandboxed_reason()


def select_cells(cells: Sequence[Cell], only: Sequence[str]) -> list[Cell]:
    if not only:
        return list(cells)
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, pattern) for pattern in only)]


def resolve_cells(cells: Sequence[Cell], resolver: Resolver, workers: int = 4) -> dict[Cell, Resolution]:
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
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
                results.append(
                    CellResult(
                        model=info.name,
                        cell=cell.id,
                        status="unresolvable",
                        cause="version-mismatch",
                        fix="these pins cannot be installed together; set `resolution: override` to force them",
                        detail=resolution.explanation,
                    )
                )
            elif isinstance(resolution, ResolveFailed):
                results.append(CellResult(model=info.name, cell=cell.id, status="infra-error", detail=resolution.explanation))
            elif cell in planned.skipped:
                results.append(CellResult(model=info.name, cell=cell.id, status="skipped", detail=planned.skipped[cell]))
    return results


class Recorder:
    """Keeps the run document; after every cell writes results.json (atomically) and the store."""

    def __init__(self, outdir: Path, document: dict[str, Any], store: Store | None = None):
        self.outdir = outdir
        self.document = document
        self.store = store
        shard = document["run"].get("shard")
        self.run_id = (
            store.start_run(document["matrix"]["name"], document["run"]["backend"], f"{shard['index']}/{shard['count']}" if shard else None)
            if store
            else 0
        )
        if store:
            store.record_cells(self.run_id, document["cells"])
        load = dict(document["matrix"].get("load", {}))
        load["try_fixes"] = bool(load.get("try_fixes") or document["run"].get("try_fixes"))  # --try-fixes counts too
        self.options = options_key(load, document["run"]["backend"])
        self.env_keys = {c["id"]: c.get("env_key") for c in document["cells"]}
        self.models = {m["name"]: m["sha256"] for m in document["models"]}

    def _stored(self, record: Mapping[str, Any], env_key: str) -> StoredResult:
        sha256 = self.models[record["model"]]
        return StoredResult(record, sha256, env_key, self.options, PROBE_VERSION, result_key(sha256, record["cell"], env_key, self.options, PROBE_VERSION))

    def add(self, results: Sequence[CellResult]) -> None:
        self.add_records([r.to_dict() for r in results])

    def add_records(self, records: Sequence[dict[str, Any]]) -> None:
        self.document["results"].extend(records)
        if self.store:
            for cell in dict.fromkeys(r["cell"] for r in records):
                env_key = self.env_keys.get(cell)
                if env_key:  # only cells that ran in an environment are worth caching
                    self.store.add(self.run_id, [self._stored(r, env_key) for r in records if r["cell"] == cell and r["model"] in self.models])
        self.flush()

    def cached(self, cell: Cell, env_key: str, infos: Sequence[ModelInfo]) -> list[CellResult]:
        """Results the store holds for these models in this cell, unchanged since."""
        if not self.store:
            return []
        found = [self.store.cached(result_key(i.sha256, cell.id, env_key, self.options, PROBE_VERSION)) for i in infos]
        return [replace(CellResult.from_dict(r), cached=True) for r in found if r]

    def flush(self) -> None:
        write_atomic(self.outdir / "results.json", json.dumps(self.document, indent=1, default=str))

    def finish(
        self,
        complete: bool,
        interrupted: bool,
        fail_on: str = "any",
        baseline: Mapping[str, Any] | None = None,
        baseline_name: str | None = None,
        finished: str | None = None,
    ) -> dict[str, Any]:
        """Stamp the run, compare it with earlier ones (history.follow_up), write the reports."""
        self.document["run"].update(finished=finished or _now(), complete=complete, interrupted=interrupted, store_run=self.run_id or None)
        if self.store:
            self.store.update(self.run_id, self.document["results"])  # statuses the later stages changed
        follow_up(self.document, self.store, self.run_id or None, fail_on, baseline, baseline_name)
        if self.store:
            self.store.finish_run(self.run_id, complete, interrupted)
        self.flush()
        write_reports(self.document, self.outdir)
        return self.document


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


def run(
    matrix: Matrix,
    model_paths: Sequence[str | Path],
    options: RunOptions,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    progress = progress or QuietProgress()
    proc.resume()  # an earlier run in this process may have been interrupted
    if options.trust_models:  # the user vouches for the files: a load refused by safe_mode is retried without it
        matrix = dataclasses.replace(matrix, load=dataclasses.replace(matrix.load, trusted=True))
    if executor is None and not options.dry_run and options.executor != "local":
        executor = make_executor(options)  # first: a cluster connects while the models are read and the cells planned
    infos = inspect_models(model_paths)
    baseline = load_baseline(options.baseline) if options.baseline else None
    if not options.dry_run:
        check_outdir(options.outdir)
    backend = get_backend(
        options.backend, {**matrix.docker, **options.docker}, matrix.path, options.sandbox, Limits.parse(options.memory, options.pids)
    )
    check_trust(backend, infos, options)
    if backend.sandbox == "none" and not options.dry_run:
        progress.stage(f"NOT SANDBOXED: models run with your user's access to this machine ({why_unsandboxed(options)})")
    planned = plan_run(matrix, options, backend, progress)
    document = new_document(matrix, infos, planned, backend, options)
    if options.dry_run:
        return document
    create_outdir(options.outdir)
    recorder = Recorder(options.outdir, document, Store(options.store) if options.store else None)
    recorder.add(unrun_results(planned, infos))
    tasks = []
    reused: list[CellResult] = []
    for job in planned.jobs:
        for cell in job.cells:
            hits = [] if options.fresh else recorder.cached(cell, job.env.key, [i for i in infos if not i.settled])
            reused += hits
            missing = [i for i in infos if i.name not in {r.model for r in hits}]
            if missing:
                tasks.append(cell_task(cell, job.env, backend, missing, matrix, options.outdir / "logs"))
    if reused:
        progress.stage(f"{len(reused)} results from the store (model, environment, options and probe unchanged; --fresh runs them again)")
        recorder.add(reused)  # recorded under this run too: history and diff see every cell
    executor = executor or make_executor(options)
    executor.use_backend(backend)  # a cluster's workers build the same kind of environment
    progress.start(len(tasks))
    run_cells(executor, tasks, recorder, progress, lambda: recorder.finish(False, True, options.gate, baseline, str(options.baseline)))
    if options.try_fixes or matrix.load.try_fixes:
        progress.stage("trying tf-keras legacy mode where a Keras 2 file failed under Keras 3")
        index = PackageIndex()
        if try_legacy_fixes(document, infos, backend, matrix.load, Resolver(matrix.packages, index.config), index, run_cell):
            progress.stage("tf-keras legacy mode loaded some of them (loaded-after-fix)")
    if matrix.load.inference and options.shard:
        progress.stage("outputs are compared when the shards are merged (the reference cell may be in another shard)")
    elif matrix.load.inference and compare_outputs(document, matrix.load):
        progress.stage("some cells load but answer differently (loaded-output-mismatch)")
    return recorder.finish(True, False, options.gate, baseline, str(options.baseline))


def run_cells(
    executor: Executor, tasks: Sequence[CellTask], recorder: Recorder, progress: Progress, finish_interrupted: Callable[[], Any]
) -> None:
    """The one loop over cell tasks (run, crossload): each cell's results recorded as they come.

    Ctrl-C kills every child process and starts no more, closes the executor's stream (a
    cluster cancels its tasks), lets the caller stamp the partial document, and raises
    Interrupted: what finished is kept.
    """
    stream = executor.run_all(tasks)
    try:
        for results in stream:
            recorder.add(results)
            progress.cell_done(results)
    except KeyboardInterrupt:
        proc.kill_all()
        close = getattr(stream, "close", None)
        if close:
            close()
        finish_interrupted()
        raise Interrupted(f"interrupted: {len(recorder.document['results'])} finished results kept in {recorder.outdir}") from None


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
            "started": _now(),
            "finished": None,
            "complete": False,
            "interrupted": False,
            "backend": backend.name,
            "sandbox": backend.sandbox,
            "sandbox_note": None if backend.sandbox != "none" else f"not sandboxed: {why_unsandboxed(options)}",
            "docker": backend.settings_record() if backend.name == "docker" else None,  # repro and merge read it
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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
