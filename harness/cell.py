"""One cell: build (or reuse) its environment, probe the models in it, diagnose each.

The only reader of a probe's result: the channel is read bounded (channel.py), and
every outcome goes through diagnose. Used by every command that loads models (run,
crossload, bisect, the cross-environment fixes, a cluster's workers); it imports no
runner and no executor, so an executor can ship a CellTask without an import circle.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import activity, proc
from .backends import Backend, EnvBuildFailed, Prepared
from .channel import ProbeReport, read_channel
from .diagnose import Cause, CellResult, ProbeOutcome, Status, diagnose, diagnose_static
from .matrix import Cell, LoadOptions
from .modelfile import ModelInfo
from .plan import EnvSpec
from .request import probe_request, refuse_untrusted
from .sandbox import unsandboxed_reason


def run_cell(
    cell: Cell, env: EnvSpec, backend: Backend, infos: Sequence[ModelInfo], load: LoadOptions, logs: Path | None = None
) -> list[CellResult]:
    """Prepare the cell's environment, probe every model in it, diagnose each.

    A file that carries code (a Lambda, a function serialised by value) is probed in a
    sandbox of its own, so its code can change nothing but its own result; the others
    share one probe (one framework import).
    """
    results = [diagnose_static(cell, i) for i in infos if i.settled]
    runnable = [i for i in infos if not i.settled]
    if not runnable:
        return results
    try:
        with activity.slot("build"):
            prepared = backend.prepare(env)
    except EnvBuildFailed as exc:
        status: Status = "infra-error" if exc.infra else "unresolvable"
        cause: Cause | None = None if exc.infra else "version-mismatch"
        return results + [CellResult(model=i.name, cell=cell.id, status=status, cause=cause, detail=str(exc)) for i in runnable]
    plain = [i for i in runnable if not i.carries_code]
    groups = ([plain] if plain else []) + [[i] for i in runnable if i.carries_code]
    stderr: list[str] = []
    for group in groups:
        with activity.slot("probe"):
            results += probe_group(cell, prepared, backend, group, load, logs, stderr)
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{cell.id}.log").write_text("\n".join(stderr))
        if prepared.log and Path(prepared.log).exists():
            shutil.copy(prepared.log, logs / f"{cell.id}.build.log")
    order = {i.name: n for n, i in enumerate(infos)}
    return sorted(results, key=lambda r: order.get(r.model, 0))


def probe_group(
    cell: Cell, prepared: Prepared, backend: Backend, infos: Sequence[ModelInfo], load: LoadOptions, logs: Path | None, stderr: list[str]
) -> list[CellResult]:
    """One probe run for `infos`: its channel read bounded and validated, then diagnosed."""
    refuse_untrusted(backend.sandbox, infos, load.trusted, unsandboxed_reason())
    request = probe_request(infos, load, cell.api)
    done = backend.run_probe(prepared, request, dict(cell.env), timeout=load.timeout * len(infos) + 15)
    if len(infos) == 1 or stderr:
        stderr.append(f"--- {', '.join(i.name for i in infos)}")
    stderr.append(done.stderr)
    diagnosed, report = read_probe(cell, infos, done)
    if report.problems:
        stderr.append("harness: the result channel had problems: " + "; ".join(report.problems))
    saved = keep_outputs(report.outputs, infos, cell, logs.parent / "outputs" if logs is not None else None)
    files = keep_files(report.files, infos, cell, logs.parent / "files" if logs is not None else None)
    return [
        replace(r, outputs=saved.get(r.model), files=files.get(r.model, {}), sandbox=backend.sandbox, carries_code=info.carries_code)
        for r, info in zip(diagnosed, infos, strict=True)
    ]


def read_probe(cell: Cell, infos: Sequence[ModelInfo], done: proc.Completed) -> tuple[list[CellResult], ProbeReport]:
    """A finished probe run -> one diagnosed result per model (models m0, m1, ... in order).

    The one place a probe's output becomes results: the runner and `harness repro --verify` both call it.
    """
    report = read_channel(done.stdout, [f"m{i}" for i in range(len(infos))])
    outcome = ProbeOutcome(report.result, done.returncode, done.stderr, done.timed_out, done.seconds)
    return [diagnose(cell, info, f"m{i}", outcome) for i, info in enumerate(infos)], report


def write_fresh(target: Path, data: bytes) -> str:
    """Write what a cell sent to a path the harness chose; never write through what is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.write_bytes(data)
    return str(target)


def keep_outputs(outputs: Mapping[str, bytes], infos: Sequence[ModelInfo], cell: Cell, folder: Path | None) -> dict[str, str]:
    """Write the outputs the probe sent to OUTDIR/outputs/<model>/<cell>.npz (for comparing)."""
    kept = {}
    for i, info in enumerate(infos):
        data = outputs.get(f"m{i}")
        if folder is not None and data is not None:
            kept[info.name] = write_fresh(folder / info.name / f"{cell.id}.npz", data)
    return kept


# What each role a cell may send back is called here: the cell names no file.
FILE_NAMES = {
    "architecture": "architecture.json",
    "weights": "weights.h5",
    "weights3": "weights.weights.h5",
    "rebuilt": "rebuilt.keras",
    "rebuilt_h5": "rebuilt.h5",
    "input": "input.npz",
    "serving": "serving.zip",
}


def keep_files(
    sent: Mapping[str, Mapping[str, bytes]], infos: Sequence[ModelInfo], cell: Cell, folder: Path | None
) -> dict[str, dict[str, str]]:
    """Write the files the probe sent (harness migrate) to OUTDIR/files/<model>/<cell>/<fixed name>."""
    kept: dict[str, dict[str, str]] = {}
    for i, info in enumerate(infos):
        for role, data in (sent.get(f"m{i}") or {}).items():
            if folder is None or role not in FILE_NAMES:
                continue
            kept.setdefault(info.name, {})[role] = write_fresh(folder / info.name / cell.id / FILE_NAMES[role], data)
    return kept


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class CellTask:
    """A cell as an executor task: plain data (a cluster executor ships it), every exception a result."""

    cell: Cell
    env: EnvSpec
    backend: Backend
    infos: tuple[ModelInfo, ...]
    load: LoadOptions
    logs: Path  # OUTDIR/logs; outputs go next to it (OUTDIR/outputs)

    def __call__(self) -> list[CellResult]:
        try:
            return run_cell(self.cell, self.env, self.backend, self.infos, self.load, self.logs)
        except Exception as exc:  # noqa: BLE001 - one cell's failure never stops the others
            return self.failed(f"harness error: {type(exc).__name__}: {exc}")

    def failed(self, detail: str) -> list[CellResult]:
        return [CellResult(model=i.name, cell=self.cell.id, status="infra-error", detail=detail) for i in self.infos]
