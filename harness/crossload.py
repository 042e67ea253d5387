"""Save-by-load matrix: build a model in every cell, load every saved file in every cell.

    harness crossload MATRIX --build BUILD.py [-o OUTDIR]

BUILD.py is the user's own (trusted) script, run in each cell as `python BUILD.py OUTDIR`;
whatever model files it writes there are then loaded, like any model, in every cell. The
report is the usual one (each saved file is a model named `<file>@<saving cell>`) plus a
2-D grid per file name in crossload.md: saved-by rows, loaded-by columns.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import proc
from .backends import Backend, EnvBuildFailed, get_backend
from .diagnose import CellResult
from .errors import Interrupted, NothingToDo, UsageError
from .escape import markdown as md
from .escape import markdown_code as code
from .executor import LocalExecutor, default_jobs
from .inspection import inspect_files
from .matrix import Cell, Matrix
from .modelfile import ModelInfo
from .paths import name_part
from .pipeline import (
    Progress,
    QuietProgress,
    RunOptions,
    cell_task,
    check_outdir,
    check_trust,
    create_outdir,
    new_document,
    plan_run,
    run_cells,
    why_unsandboxed,
)
from .plan import EnvSpec
from .recorder import Recorder
from .report import summary
from .report.markdown import ICONS
from .sandbox import Limits


@dataclasses.dataclass(frozen=True)
class Saved:
    cell: str
    ok: bool
    files: tuple[str, ...] = ()
    detail: str = ""


def save_in_cell(cell: Cell, env: EnvSpec, backend: Backend, script: Path, outdir: Path, timeout: float) -> Saved:
    target = (outdir / "saved" / cell.id).resolve()  # the script runs with the folder as its cwd
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        prepared = backend.prepare(env)
    except EnvBuildFailed as exc:
        return Saved(cell.id, False, detail=f"environment not built: {exc}")
    done = backend.run_script(prepared, script, target, dict(cell.env), timeout)
    # what the script wrote there: files and folders, not links (never followed out of the folder)
    files = tuple(sorted(p.name for p in target.iterdir() if not p.name.startswith(".") and not p.is_symlink()))
    if not done.ok:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return Saved(
            cell.id, False, files, f"the build script failed (exit {done.returncode}{', timed out' if done.timed_out else ''}):\n{tail}"
        )
    return Saved(cell.id, bool(files), files, "" if files else "the build script wrote no file")


def crossload(matrix: Matrix, script: Path, options: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    progress = progress or QuietProgress()
    if not script.is_file():
        raise UsageError(f"{script}: no such build script (a Python file run as `python BUILD.py OUTDIR` in every cell)")
    check_outdir(options.outdir)
    backend = get_backend(
        options.backend, {**matrix.docker, **options.docker}, matrix.path, options.sandbox, Limits.parse(options.memory, options.pids)
    )
    if backend.sandbox == "none":
        progress.warn(f"NOT SANDBOXED: the build script and the models run with your user's access to this machine ({why_unsandboxed(options)})")
    planned = plan_run(matrix, options, backend, progress)
    jobs = [(cell, job.env) for job in planned.jobs for cell in job.cells]
    if not jobs:
        raise NothingToDo("no cell of the matrix could be built (all unresolvable or skipped)")
    create_outdir(options.outdir)
    executor = LocalExecutor(options.jobs or default_jobs())
    progress.stage(f"saving with {script.name} in {len(jobs)} cells")
    try:
        saved = list(executor.run_all([_save_task(c, e, backend, script.resolve(), options.outdir, matrix.load.timeout) for c, e in jobs]))
    except KeyboardInterrupt:
        proc.kill_all()
        raise Interrupted(
            f"interrupted while saving: nothing loaded yet; the saved files so far are in {options.outdir / 'saved'}"
        ) from None
    infos = _saved_models(options.outdir, saved)
    if not infos:
        raise NothingToDo("the build script saved no model in any cell: " + "; ".join(f"{s.cell}: {s.detail}" for s in saved))
    check_trust(backend, infos, options)
    matrix = dataclasses.replace(matrix, load=dataclasses.replace(matrix.load, trusted=options.trust_models))
    progress.stage(f"loading {len(infos)} saved files in {len(jobs)} cells")
    document = new_document(matrix, infos, planned, backend, options)
    order = [c.id for c, _ in jobs]
    document["crossload"] = {
        "build": str(script),
        "saved": [dataclasses.asdict(s) for s in sorted(saved, key=lambda s: order.index(s.cell))],
    }
    recorder = Recorder(options.outdir, document)
    progress.start(len(jobs))
    tasks = [cell_task(c, e, backend, infos, matrix, options.outdir / "logs") for c, e in jobs]

    def on_cell(results: Sequence[CellResult]) -> None:
        recorder.add(results)
        progress.cell_done(results)

    def on_interrupt() -> str:
        recorder.finish(None, complete=False, interrupted=True)
        return f"interrupted: {len(recorder.results)} finished results kept in {options.outdir}"

    run_cells(executor, tasks, on_cell, on_interrupt)
    document = recorder.finish(None, complete=True, interrupted=False)
    (options.outdir / "crossload.md").write_text(render_grid(document))
    return document


def _save_task(cell: Cell, env: EnvSpec, backend: Backend, script: Path, outdir: Path, timeout: float) -> Any:
    return lambda: save_in_cell(cell, env, backend, script, outdir, timeout)


def saved_name(file: str, cell: str) -> str:
    """A saved file's model name: `dense.h5@py3.11-tensorflow2.15.1` (one file name, as every model name is)."""
    return f"{file}@{cell}"


def _saved_models(outdir: Path, saved: Sequence[Saved]) -> list[ModelInfo]:
    infos = []
    for s in saved:
        for name in s.files:
            try:
                [info] = inspect_files([outdir / "saved" / s.cell / name])
                infos.append(dataclasses.replace(info, name=name_part(saved_name(name, s.cell), "saved file name")))
            except UsageError:
                continue  # not a model (a log, a checkpoint index): nothing to load
    return infos


def render_grid(doc: dict[str, Any]) -> str:
    """crossload.md: per saved file name, saved-by rows and loaded-by columns."""
    saved = [s["cell"] for s in doc["crossload"]["saved"]]
    loaders = [c["id"] for c in doc["cells"] if c.get("env_key")]
    by_pair = {(r["model"], r["cell"]): r for r in doc["results"]}
    names = sorted({m["name"].rpartition("@")[0] for m in doc["models"]})
    lines = [
        f"# Save-by-load grid: {doc['matrix']['name']}",
        "",
        f"Built by {code(Path(doc['crossload']['build']).name)} in each row's cell, loaded in each column's.",
        "",
    ]
    for name in names:
        lines += [
            f"## {code(name)}",
            "",
            "| saved by \\ loaded by | " + " | ".join(code(c) for c in loaders) + " |",
            "|---" * (len(loaders) + 1) + "|",
        ]
        for saver in saved:
            cells = []
            for loader in loaders:
                r = by_pair.get((saved_name(name, saver), loader))
                cells.append("—" if r is None else f"{ICONS.get(r['status'], '')} {r['status']} {md(summary.exception_label(r))}".strip())
            lines.append(f"| {code(saver)} | " + " | ".join(cells) + " |")
        lines.append("")
    failures = [s for s in doc["crossload"]["saved"] if not s["ok"]]
    for s in failures:
        lines += [f"- {code(s['cell'])} saved nothing: {md(s['detail'].splitlines()[0] if s['detail'] else '')}"]
    return "\n".join(lines) + "\n"
