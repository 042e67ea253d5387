"""Merge the results of shards (`harness run --shard K/N`) into one run.

The merged document is what an unsharded run of the same matrix would have written:
cells in expansion order (each shard records every cell's position in the full
expansion), every shard's results, outputs compared across shards (the reference cell
may have run in another shard), then the usual follow-up (new releases, trend, gate)
and reports. The merge is recorded in the store as one run, so history, diff and the
trend see scheduled sharded runs like any other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from .diagnose import CellResult
from .errors import UsageError
from .gate import load_baseline
from .matrix import LoadOptions
from .outputs import compare_outputs
from .paths import below, copy_regular, name_part
from .recipes import with_recipes
from .recorder import Recorder
from .report import load_results
from .store import Store


def merge_runs(
    paths: Sequence[Path],
    outdir: Path,
    store: Store | None = None,
    fail_on: str = "any",
    baseline: Path | None = None,
    allow_missing: bool = False,
    reference: Path | None = None,
) -> dict[str, Any]:
    if not paths:
        raise UsageError("harness merge needs the results.json of every shard")
    docs = [(Path(p), load_results(p)) for p in paths]
    accepted = load_baseline(baseline) if baseline else None
    check_compatible(docs)
    shards = check_shards(docs, allow_missing)
    docs.sort(key=lambda d: (d[1]["run"].get("shard") or {}).get("index", 0))
    first = docs[0][1]

    cells: dict[str, dict[str, Any]] = {}
    environments: dict[str, dict[str, Any]] = {}
    results: dict[tuple[str, str], dict[str, Any]] = {}
    outdir.mkdir(parents=True, exist_ok=True)
    for path, doc in docs:
        for cell in doc["cells"]:
            cells.setdefault(cell["id"], cell)
        for env in doc.get("environments", []):
            environments.setdefault(env["key"], env)
        for r in doc["results"]:
            try:
                CellResult.from_dict(r)
            except (ValueError, TypeError) as exc:
                raise UsageError(
                    f"{path}: a result of {r.get('model')} in {r.get('cell')} cannot be read ({exc}); is it a harness results.json?"
                ) from None
            results[(r["model"], r["cell"])] = carry_files(dict(r), path.parent, outdir)
        copy_logs(path.parent / "logs", outdir / "logs")
    order = sorted(cells.values(), key=lambda c: (c.get("position") is None, c.get("position") or 0))
    position = {c["id"]: i for i, c in enumerate(order)}
    model_order = {m["name"]: i for i, m in enumerate(first["models"])}
    merged_results = sorted(results.values(), key=lambda r: (position.get(r["cell"], 1 << 30), model_order.get(r["model"], 0)))

    runs = [d["run"] for _, d in docs]
    document = {
        **{k: first[k] for k in ("schema", "schema_version", "harness_version", "probe_version", "matrix", "models")},
        "run": {
            **{k: first["run"].get(k) for k in ("backend", "docker", "jobs", "try_fixes")},  # try_fixes: part of the cache key
            # the weakest containment of any shard is the merged report's
            **min(
                ({"sandbox": r.get("sandbox"), "sandbox_note": r.get("sandbox_note")} for r in (d["run"] for _, d in docs)),
                key=lambda box: box["sandbox"] != "none",
            ),
            "started": min(r["started"] for r in runs),
            "finished": None,
            "complete": all(r.get("complete") for r in runs) and not shards["missing"],
            "interrupted": any(r.get("interrupted") for r in runs),
            "shard": None,
            "merged_from": [
                {"results": str(p), "shard": d["run"].get("shard"), "started": d["run"]["started"], "complete": d["run"].get("complete")}
                for p, d in docs
            ],
            "missing_shards": shards["missing"],
            "fail_on": fail_on,
            "baseline": str(baseline) if baseline else None,
        },
        "cells": order,
        "environments": list(environments.values()),
        "results": [],
    }
    load = load_options(first["matrix"].get("load") or {}, reference)
    final = [CellResult.from_dict(r) for r in merged_results]
    if load.inference:
        final = compare_outputs(document["models"], final, load)
    # Each shard wrote its recipes from its own cells; the merged run may hold the evidence one
    # shard lacked (the file loads in a cell of another shard): the unproven ones are written again.
    final = with_recipes(
        [replace(r, recipe=None) if r.recipe is not None and not r.recipe.get("proven") else r for r in final],
        {c["id"]: c for c in order},
        try_fixes=bool(document["run"].get("try_fixes")),
        custom_objects=bool(load.custom_objects),
        trusted=load.trusted,
        inference=load.inference,
    )
    recorder = Recorder(outdir, document, store)
    recorder.add(final)
    return recorder.finish(
        None,
        document["run"]["complete"],
        document["run"]["interrupted"],
        fail_on,
        accepted,
        str(baseline),
        max(r.get("finished") or "" for r in runs),
    )


def check_compatible(docs: Sequence[tuple[Path, Mapping[str, Any]]]) -> None:
    (first_path, first), *rest = docs
    models = {m["name"]: m["sha256"] for m in first["models"]}
    for path, doc in rest:
        if doc["matrix"]["name"] != first["matrix"]["name"]:
            raise UsageError(
                f"{path}: matrix '{doc['matrix']['name']}' is not {first_path}'s '{first['matrix']['name']}'; merge shards of one matrix"
            )
        if doc.get("probe_version") != first.get("probe_version"):
            raise UsageError(
                f"{path}: made by another harness probe ({doc.get('probe_version')} vs {first.get('probe_version')}); run every shard with one harness version"
            )
        theirs = {m["name"]: m["sha256"] for m in doc["models"]}
        if theirs != models:
            raise UsageError(f"{path}: other model files than {first_path} (names or sha256 differ); every shard must load the same models")


def check_shards(docs: Sequence[tuple[Path, Mapping[str, Any]]], allow_missing: bool) -> dict[str, Any]:
    shard_of = [(p, d["run"].get("shard")) for p, d in docs]
    sharded = [s for _, s in shard_of if s]
    if not sharded:
        return {"missing": []}
    if len(sharded) != len(docs):
        plain = next(p for p, s in shard_of if not s)
        raise UsageError(f"{plain}: not a shard, but the other files are; merge the results of one sharded run")
    counts = {s["count"] for s in sharded}
    if len(counts) != 1:
        raise UsageError(f"shards of different splits ({', '.join(f'/{n}' for n in sorted(counts))}); merge the shards of one run")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for path, s in shard_of:
        assert s is not None
        if s["index"] in seen:
            raise UsageError(f"{path}: shard {s['index']}/{count} given twice (also {seen[s['index']]})")
        seen[s["index"]] = path
    missing = [k for k in range(1, count + 1) if k not in seen]
    if missing and not allow_missing:
        raise UsageError(
            f"shard(s) {', '.join(f'{k}/{count}' for k in missing)} missing; pass every shard's results.json, or --allow-missing for a partial report"
        )
    return {"missing": missing}


MAX_LOG_BYTES = 64 << 20  # a cell's log as a shard kept it (stderr is kept as 64 KiB head and tail): larger is not ours
MAX_LOGS = 100_000  # files in a shard's logs/ (two per cell)
MAX_CARRIED_OUTPUTS = 512 << 20  # a cell's saved outputs (outputs.MAX_OUTPUT_BYTES, compressed at most as large)


def carry_files(result: dict[str, Any], source: Path, outdir: Path) -> dict[str, Any]:
    """Outputs saved by a shard move with its results (wherever its artifact was unpacked).

    Found only where the harness writes them (outputs/<model>/<cell>.npz under the shard's
    folder), through real folders and as a regular file: a link anywhere on the way (a shard
    artifact may be someone else's) is not followed and the outputs count as missing.
    """
    if result.get("outputs"):
        model, cell = name_part(result["model"], "model name"), name_part(result["cell"], "cell id")
        saved = below(source, "outputs", model, f"{cell}.npz")
        if saved is not None and saved.stat().st_size <= MAX_CARRIED_OUTPUTS:
            target = outdir / "outputs" / model / saved.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if saved.resolve() != target.resolve():
                copy_regular(saved, target)
            result["outputs"] = str(target)
        else:
            result["outputs"] = None
    return result


def copy_logs(source: Path, target: Path) -> None:
    """A shard's logs/ (the cells' stderr and build logs): regular files only, none through a link."""
    folder = below(source.parent, source.name)
    if folder is None or not folder.is_dir() or folder.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda e: e.name)[:MAX_LOGS]
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size <= MAX_LOG_BYTES:
            # not copied: a name that is no single file name elsewhere (a backslash), or a file replaced by a link or a FIFO since
            with contextlib.suppress(OSError, UsageError):
                copy_regular(Path(entry.path), target / name_part(entry.name, "log name"))


def load_options(recorded: Mapping[str, Any], reference: Path | None = None) -> LoadOptions:
    """The matrix's load options as results.json records them, without its paths: a document
    names no file the harness opens (the reference outputs come from --reference)."""
    paths = {"custom_objects", "input", "reference"}
    known = {f.name for f in fields(LoadOptions)}
    values: dict[str, Any] = {k: v for k, v in recorded.items() if k in known and k not in paths}
    for key in ("resave", "rescue"):
        values[key] = tuple(values.get(key) or ())
    return LoadOptions(**values, reference=reference)
