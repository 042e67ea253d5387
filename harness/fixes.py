"""Fixes that need another environment: a Keras 2 file that fails under Keras 3 is tried
again with tf-keras (the TensorFlow line's release) and TF_USE_LEGACY_KERAS=1.

Fixes that need no other environment (custom objects, compile=False) are tried by the
probe itself, inside the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .backends import Backend, EnvBuildFailed
from .diagnose import LOADS, CellResult
from .matrix import Cell, LoadOptions, select_versions
from .modelfile import ModelInfo
from .plan import EnvSpec
from .resolve import Lock, PackageIndex, Resolver

LEGACY_FIX = "tf-keras + TF_USE_LEGACY_KERAS=1"


def wants_legacy(result: Mapping[str, Any], record: Mapping[str, Any], info: ModelInfo) -> bool:
    """A Keras 2 file that failed to load under Keras 3 through tf.keras, not already legacy."""
    keras = (result.get("versions") or {}).get("keras", "")
    return (
        result["status"] == "load-error"
        and info.keras_major == 2
        and keras.startswith("3")
        and record.get("api", "tf.keras") == "tf.keras"
        and record.get("env", {}).get("TF_USE_LEGACY_KERAS") != "1"
        and "tensorflow" in record.get("pins", {})
    )


def legacy_cell(record: Mapping[str, Any], tf_keras: str) -> Cell:
    pins = (*((k, v) for k, v in record["pins"].items() if k != "tf-keras"), ("tf-keras", tf_keras))
    env = tuple(sorted({**record.get("env", {}), "TF_USE_LEGACY_KERAS": "1"}.items()))
    return Cell(python=record["python"], pins=pins, env=env, api="tf.keras", override=bool(record.get("overridden")))


def try_legacy_fixes(
    doc: dict[str, Any],
    infos: Sequence[ModelInfo],
    backend: Backend,
    load: LoadOptions,
    resolver: Resolver,
    index: PackageIndex,
    run: Callable[[Cell, EnvSpec, Backend, Sequence[ModelInfo], LoadOptions], list[CellResult]],
) -> int:
    """Try the legacy fix for every result that wants it; returns how many it fixed."""
    by_name = {i.name: i for i in infos}
    cells = {c["id"]: c for c in doc["cells"]}
    wanted: dict[str, list[dict[str, Any]]] = {}
    for r in doc["results"]:
        record = cells.get(r["cell"])
        if record and r["model"] in by_name and wants_legacy(r, record, by_name[r["model"]]):
            wanted.setdefault(r["cell"], []).append(r)
    fixed = 0
    for cell_id, results in wanted.items():
        record = cells[cell_id]
        line = ".".join(record["pins"]["tensorflow"].split(".")[:2])
        releases = select_versions(line, index.versions("tf-keras", record["python"]))
        outcome = (
            _run_legacy(record, str(releases[0]), [by_name[r["model"]] for r in results], backend, load, resolver, run) if releases else {}
        )
        for r in results:
            r["fixes_tried"] = [*r.get("fixes_tried", []), LEGACY_FIX]
            got = outcome.get(r["model"])
            if got is not None and got.status in LOADS:
                r.update(
                    status="loaded-after-fix",
                    fix_worked=LEGACY_FIX,
                    detail=f"loads with tf-keras {releases[0]} and TF_USE_LEGACY_KERAS=1 (cell {got.cell})",
                )
                # only what was tried: re-saving with Keras 3 was not, so it is not claimed
                r["fix"] = f"install tf-keras=={releases[0]} and set TF_USE_LEGACY_KERAS=1 (tried: it loads)"
                fixed += 1
            else:
                why = (
                    f"no tf-keras release for tensorflow {line}"
                    if not releases
                    else f"tf-keras legacy mode did not load it either ({got.status if got else 'not run'})"
                )
                r["detail"] = "; ".join(x for x in (r.get("detail"), why) if x)
                if r.get("fix") and "(--try-fixes tries it)" in r["fix"]:  # it was tried: say how it went
                    r["fix"] = r["fix"].replace("(--try-fixes tries it)", f"(tried: {why})")
    return fixed


def _run_legacy(
    record: Mapping[str, Any],
    tf_keras: str,
    infos: Sequence[ModelInfo],
    backend: Backend,
    load: LoadOptions,
    resolver: Resolver,
    run: Callable[[Cell, EnvSpec, Backend, Sequence[ModelInfo], LoadOptions], list[CellResult]],
) -> dict[str, CellResult]:
    cell = legacy_cell(record, tf_keras)
    lock = resolver.resolve(cell)
    if not isinstance(lock, Lock):
        return {}
    try:
        results = run(cell, EnvSpec(cell.python, lock.text, backend.name, backend.fingerprint), backend, infos, load)
    except EnvBuildFailed:
        return {}
    return {r.model: r for r in results}
