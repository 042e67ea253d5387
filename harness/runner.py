"""`harness run`: the pipeline's stages (pipeline.py) in order, for a matrix and its models.

Every cell ends as a CellResult, whatever goes wrong inside it; only Ctrl-C escapes,
and then the finished cells are written before the run stops. The stages after the
cells (outputs compared, the legacy fixes, history and the gate) return new results;
the recorder writes them once at the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import proc
from .backends import Backend, get_backend
from .cell import CellTask
from .diagnose import CellResult
from .errors import Interrupted
from .executor import Executor
from .fixes import apply_tries, sibling_tries
from .gate import load_baseline
from .matrix import Matrix
from .modelfile import ModelInfo
from .outputs import compare_outputs
from .pipeline import (
    Planned,
    Progress,
    QuietProgress,
    RunOptions,
    StopRun,
    cell_task,
    check_outdir,
    check_trust,
    collect,
    create_outdir,
    inspect_models,
    make_executor,
    new_document,
    plan_run,
    run_cells,
    unrun_results,
    why_unsandboxed,
)
from .plan import EnvSpec
from .recipes import with_recipes
from .recorder import Recorder
from .resolve import Lock, PackageIndex, Resolver
from .sandbox import Limits
from .store import Store
from .tryrepair import repaired_files

__all__ = ["RunOptions", "run"]


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
        options.backend,
        {**matrix.docker, **options.docker},
        matrix.path,
        options.sandbox,
        Limits.parse(options.memory, options.pids),
        options.python_downloads,
    )
    check_trust(backend, infos, options)
    if backend.sandbox == "none" and not options.dry_run:
        progress.warn(f"NOT SANDBOXED: models run with your user's access to this machine ({why_unsandboxed(options)})")
    planned = plan_run(matrix, options, backend, progress)
    document = new_document(matrix, infos, planned, backend, options)
    if options.dry_run:
        return document
    create_outdir(options.outdir)
    recorder = Recorder(options.outdir, document, Store(options.store) if options.store else None)

    def finish_interrupted() -> str:
        recorder.finish(None, False, True, options.gate, baseline, str(options.baseline))
        return f"interrupted: {len(recorder.results)} finished results kept in {options.outdir}"

    recorder.add(unrun_results(planned, infos))
    tasks, reused = cell_tasks(planned, infos, backend, matrix, options, recorder)
    if reused:
        progress.stage(f"{len(reused)} results from the store (model, environment, options and probe unchanged; --fresh runs them again)")
        recorder.add(reused)  # recorded under this run too: history and diff see every cell
    executor = executor or make_executor(options)
    executor.use_backend(backend)  # a cluster's workers build the same kind of environment
    progress.start(len(tasks))

    stopped: list[str] = []
    failures: list[str] = []

    def on_cell(results: Sequence[CellResult]) -> None:
        recorder.add(results)
        progress.cell_done(results)
        failures.extend(f"{r.model} @ {r.cell}: {r.status}" for r in results if r.failed)
        if options.maxfail and len(failures) >= options.maxfail:
            stopped.append(failures[0] if options.maxfail == 1 else f"{len(failures)} failed results, the first {failures[0]}")
            raise StopRun

    run_cells(executor, tasks, on_cell, finish_interrupted, progress.cell_stage)
    results = recorder.results
    if stopped:
        flag = "-x/--fail-fast: stopped at the first failure" if options.maxfail == 1 else f"--maxfail {options.maxfail}: stopped"
        progress.warn(f"{flag} ({stopped[0]}); the cells not finished are not in the report")
        return recorder.finish(None, False, False, options.gate, baseline, str(options.baseline))
    if options.try_fixes or matrix.load.try_fixes:
        try:
            results = legacy_fixes(results, planned, infos, backend, matrix, options, executor, progress)
        except Interrupted:
            finish_interrupted()
            raise
    if any(r.status == "load-error" for r in results):  # the only ones it looks at; a passing run does not import it
        from .migrate import suggest

        results = suggest(results, infos, {c.id: c for c in planned.cells}, matrix.packages)  # harness migrate, where a strategy applies
    if matrix.load.inference and options.shard:
        progress.stage("outputs are compared when the shards are merged (the reference cell may be in another shard)")
    elif matrix.load.inference:
        compared = compare_outputs(document["models"], results, matrix.load)
        if any(a.status != b.status for a, b in zip(results, compared, strict=True)):
            progress.warn("some cells load but answer differently (loaded-output-mismatch)")
        results = compared
    results = with_recipes(
        results,
        {c["id"]: c for c in document["cells"]},
        try_fixes=bool(options.try_fixes or matrix.load.try_fixes),
        custom_objects=matrix.load.custom_objects is not None,
        trusted=matrix.load.trusted,
        repairs={(i.name, major): f.repairs for i in infos for major, f in repaired_files(i).items()} if matrix.load.fixes else {},
        inference=matrix.load.inference and not options.shard,
    )
    return recorder.finish(results, True, False, options.gate, baseline, str(options.baseline))


def cell_tasks(
    planned: Planned, infos: Sequence[ModelInfo], backend: Backend, matrix: Matrix, options: RunOptions, recorder: Recorder
) -> tuple[list[CellTask], list[CellResult]]:
    """A task per cell for the models the store has no result for, and the results it has."""
    tasks = []
    reused: list[CellResult] = []
    for job in planned.jobs:
        for cell in job.cells:
            hits = [] if options.fresh else recorder.cached(cell.id, job.env.key, [i for i in infos if not i.settled])
            reused += hits
            missing = [i for i in infos if i.name not in {r.model for r in hits}]
            if missing:
                tasks.append(cell_task(cell, job.env, backend, missing, matrix, options.outdir / "logs"))
    return tasks, reused


def legacy_fixes(
    results: Sequence[CellResult],
    planned: Planned,
    infos: Sequence[ModelInfo],
    backend: Backend,
    matrix: Matrix,
    options: RunOptions,
    executor: Executor,
    progress: Progress,
) -> list[CellResult]:
    """The fixes that need another environment (fixes.py), each in a sibling cell of its own:
    tf-keras legacy mode, a numpy the framework imports with, the Addons release for the line."""
    index = PackageIndex()
    tries = sibling_tries(results, {c.id: c for c in planned.cells}, infos, lambda package, python: index.versions(package, python))
    if not tries:
        return list(results)
    kinds = sorted({t.fix.split("==")[0].split("<")[0] for t in tries})
    progress.stage(f"trying fixes that need another environment in {len(tries)} sibling cells ({', '.join(kinds)})")
    resolver = Resolver(matrix.packages, index.config)
    by_name = {i.name: i for i in infos}
    tasks = []
    for attempt in tries:
        if attempt.cell is None:
            continue
        lock = resolver.resolve(attempt.cell)
        if isinstance(lock, Lock):
            env = EnvSpec(attempt.cell.python, lock.text, backend.name, backend.fingerprint)
            tasks.append(cell_task(attempt.cell, env, backend, [by_name[m] for m in attempt.models], matrix, options.outdir / "logs"))
    fixed = apply_tries(results, tries, collect(executor, tasks, "trying fixes in sibling cells"))
    if any(r.fix_worked in {t.fix for t in tries} for r in fixed):
        progress.stage("a sibling cell loaded some of them (loaded-after-fix)")
    return fixed
