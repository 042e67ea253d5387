"""Fixes that need another environment: a Keras 2 file that fails under Keras 3 is tried
again with tf-keras (the TensorFlow line's release) and TF_USE_LEGACY_KERAS=1.

Two pure functions around the pipeline's one loop: `legacy_tries` says which cells to
run (and for which results), the runner runs them like any cell (pipeline.run_cells),
and `apply_legacy` returns the results with what the tries showed. Fixes that need no
other environment (custom objects, compile=False) are tried by the probe itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from packaging.version import Version

from .diagnose import LOADS, CellResult
from .matrix import Cell, select_versions
from .modelfile import ModelInfo
from .recipes import environment, load_options, recipe

LEGACY_FIX = "tf-keras + TF_USE_LEGACY_KERAS=1"


@dataclass(frozen=True)
class LegacyTry:
    """One legacy cell to run for the failed results of one cell of the run."""

    original: str  # the run's cell id
    line: str  # its TensorFlow line
    cell: Cell | None  # None: no tf-keras release for that line
    models: tuple[str, ...]


def wants_legacy(result: CellResult, cell: Cell, info: ModelInfo) -> bool:
    """A Keras 2 file that failed to load under Keras 3 through tf.keras, not already legacy."""
    return (
        result.status == "load-error"
        and info.keras_major == 2
        and result.versions.get("keras", "").startswith("3")
        and cell.api == "tf.keras"
        and dict(cell.env).get("TF_USE_LEGACY_KERAS") != "1"
        and "tensorflow" in dict(cell.pins)
    )


def legacy_cell(cell: Cell, tf_keras: str) -> Cell:
    pins = (*((k, v) for k, v in cell.pins if k != "tf-keras"), ("tf-keras", tf_keras))
    env = tuple(sorted({**dict(cell.env), "TF_USE_LEGACY_KERAS": "1"}.items()))
    return Cell(python=cell.python, pins=pins, env=env, api="tf.keras", override=cell.override)


def legacy_tries(
    results: Sequence[CellResult],
    cells: Mapping[str, Cell],
    infos: Sequence[ModelInfo],
    tf_keras_releases: Callable[[str], Sequence[Version]],
) -> list[LegacyTry]:
    """Which legacy cells to run; `tf_keras_releases(python)` lists tf-keras's releases."""
    by_name = {i.name: i for i in infos}
    wanted: dict[str, list[str]] = {}
    for r in results:
        cell = cells.get(r.cell)
        if cell is not None and r.model in by_name and wants_legacy(r, cell, by_name[r.model]):
            wanted.setdefault(r.cell, []).append(r.model)
    tries = []
    for cell_id, models in wanted.items():
        cell = cells[cell_id]
        line = ".".join(str(dict(cell.pins)["tensorflow"]).split(".")[:2])
        releases = select_versions(line, tf_keras_releases(cell.python))
        tries.append(LegacyTry(cell_id, line, legacy_cell(cell, str(releases[0])) if releases else None, tuple(models)))
    return tries


def apply_legacy(results: Sequence[CellResult], tries: Sequence[LegacyTry], outcomes: Sequence[CellResult]) -> list[CellResult]:
    """The results with each try's outcome: loaded-after-fix where legacy mode loaded the model,
    else the failure kept with why the fix did not help (new values, same order)."""
    got = {(r.cell, r.model): r for r in outcomes}
    tried = {(t.original, m): t for t in tries for m in t.models}
    return [_applied(r, tried[(r.cell, r.model)], got) if (r.cell, r.model) in tried else r for r in results]


def _applied(r: CellResult, attempt: LegacyTry, got: Mapping[tuple[str, str], CellResult]) -> CellResult:
    tried = (*r.fixes_tried, LEGACY_FIX)
    outcome = got.get((attempt.cell.id, r.model)) if attempt.cell else None
    if attempt.cell is not None and outcome is not None and outcome.status in LOADS:
        release = dict(attempt.cell.pins)["tf-keras"]
        return replace(
            r,
            status="loaded-after-fix",
            fixes_tried=tried,
            fix_worked=LEGACY_FIX,
            detail=f"loads with tf-keras {release} and TF_USE_LEGACY_KERAS=1 (cell {outcome.cell})",
            # only what was tried: re-saving with Keras 3 was not, so it is not claimed
            fix=f"install tf-keras=={release} and set TF_USE_LEGACY_KERAS=1 (proven: it loads in {outcome.cell})",
            recipe=recipe(
                env=environment(
                    {
                        "python": attempt.cell.python,
                        "pins": dict(attempt.cell.pins),
                        "env": dict(attempt.cell.env),
                        "api": attempt.cell.api,
                    },
                    outcome.cell,
                ),
                load=load_options(outcome.fix_worked, outcome),
                proven=True,
                where=outcome.cell,
            ),
        )
    why = (
        f"no tf-keras release for tensorflow {attempt.line}"
        if attempt.cell is None
        else f"tf-keras legacy mode did not load it either ({outcome.status if outcome else 'not run'})"
    )
    fix = r.fix.replace("(--try-fixes tries it)", f"(tried: {why})") if r.fix else r.fix  # it was tried: say how it went
    return replace(r, fixes_tried=tried, detail="; ".join(x for x in (r.detail, why) if x), fix=fix)
