"""Fixes that need another environment, tried in sibling cells when --try-fixes asks:

- tf-keras legacy mode: a Keras 2 file that fails under Keras 3 is tried again with the
  tf-keras release of that TensorFlow line and TF_USE_LEGACY_KERAS=1;
- numpy: a TensorFlow that does not import beside numpy 2 (its ABI, or np names numpy
  removed) is tried again with the newest numpy the fix names (numpy<2, or numpy<1.24);
- tensorflow-addons: a file that needs Addons where it is missing, or where the installed
  release does not import with that TensorFlow, is tried again with the Addons release
  built for the TensorFlow line (its README's table, diagnose's ADDONS_SUPPORT).

Two pure functions around the pipeline's one loop: `sibling_tries` says which cells to run
(and for which results), the runner runs them like any cell (pipeline.run_cells), and
`apply_tries` returns the results with what the tries showed: loaded-after-fix with a
proven recipe (the sibling's pins and variables), or the failure kept with "tried: ...".
Fixes that need no other environment (custom objects, compile=False, a repaired config)
are tried by the probe itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .diagnose import LOADS, CellResult
from .matrix import Cell, select_versions
from .modelfile import ModelInfo
from .recipes import environment, load_options, recipe
from .rules import ADDONS_SUPPORT

LEGACY_FIX = "tf-keras + TF_USE_LEGACY_KERAS=1"


@dataclass(frozen=True)
class SiblingTry:
    """One sibling cell to run for the failed results of one cell of the run."""

    original: str  # the run's cell id
    fix: str  # what the sibling changes, as results name it (fix_worked)
    advice: str  # the fix sentence when it loads there ("install tf-keras==2.16.0 and set TF_USE_LEGACY_KERAS=1")
    cell: Cell | None  # None: no release to try (why in `missing`)
    models: tuple[str, ...]
    missing: str = ""
    said: str = ""  # what the sibling has, in words ("tf-keras 2.16.0 and TF_USE_LEGACY_KERAS=1")


# kept for callers that name the legacy try by its old name
LegacyTry = SiblingTry


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


def wants_numpy(result: CellResult) -> str | None:
    """The numpy bound the result's fix names, for a framework that did not import beside this numpy."""
    if result.status != "import-error" or result.missing_name not in ("numpy", "numpy ABI") or not result.fix:
        return None
    if "numpy<1.24" in result.fix:
        return "<1.24"
    if "numpy<2" in result.fix and result.versions.get("numpy", "").startswith("2"):
        return "<2"
    return None


def wants_addons(result: CellResult, cell: Cell, info: ModelInfo) -> bool:
    """Addons missing or broken where a release built for this TensorFlow line exists (Keras 2 only)."""
    return (
        result.status == "load-error"
        and bool(info.names("addons"))
        and result.cause in ("missing-dependency", "version-mismatch")
        and (result.missing_name or "").startswith(("Addons>", "tensorflow_addons"))
        and result.versions.get("keras", "").startswith("2")
        and "tensorflow" in dict(cell.pins)
    )


def legacy_cell(cell: Cell, tf_keras: str) -> Cell:
    pins = (*((k, v) for k, v in cell.pins if k != "tf-keras"), ("tf-keras", tf_keras))
    env = tuple(sorted({**dict(cell.env), "TF_USE_LEGACY_KERAS": "1"}.items()))
    return Cell(python=cell.python, pins=pins, env=env, api="tf.keras", override=cell.override)


def pinned_cell(cell: Cell, name: str, version: str) -> Cell:
    """The cell with one more (or another) pin."""
    pins = (*((k, v) for k, v in cell.pins if k != name), (name, version))
    return Cell(python=cell.python, pins=pins, env=cell.env, api=cell.api, override=cell.override)


def _line(cell: Cell) -> str:
    return ".".join(str(dict(cell.pins)["tensorflow"]).split(".")[:2])


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def sibling_tries(
    results: Sequence[CellResult],
    cells: Mapping[str, Cell],
    infos: Sequence[ModelInfo],
    releases: Callable[[str, str], Sequence[Version]],
) -> list[SiblingTry]:
    """Which sibling cells to run; `releases(package, python)` lists a package's releases."""
    by_name = {i.name: i for i in infos}
    wanted: dict[tuple[str, str], list[str]] = {}
    for r in results:
        cell, info = cells.get(r.cell), by_name.get(r.model)
        if cell is None:
            continue
        if info is not None and wants_legacy(r, cell, info):
            wanted.setdefault((r.cell, "legacy"), []).append(r.model)
        bound = wants_numpy(r)
        if bound:
            wanted.setdefault((r.cell, "numpy" + bound), []).append(r.model)
        if info is not None and wants_addons(r, cell, info):
            wanted.setdefault((r.cell, "addons"), []).append(r.model)
    tries = []
    for (cell_id, kind), models in wanted.items():
        cell = cells[cell_id]
        if kind == "legacy":
            line = _line(cell)
            found = select_versions(line, releases("tf-keras", cell.python))
            tries.append(
                SiblingTry(
                    cell_id,
                    LEGACY_FIX,
                    f"install tf-keras=={found[0]} and set TF_USE_LEGACY_KERAS=1" if found else "",
                    legacy_cell(cell, str(found[0])) if found else None,
                    tuple(models),
                    "" if found else f"no tf-keras release for tensorflow {line}",
                    f"tf-keras {found[0]} and TF_USE_LEGACY_KERAS=1" if found else "",
                )
            )
        elif kind.startswith("numpy"):
            bound = kind[len("numpy") :]
            newest = [v for v in sorted(releases("numpy", cell.python), reverse=True) if not v.is_prerelease and v in SpecifierSet(bound)]
            tries.append(
                SiblingTry(
                    cell_id,
                    f"numpy{bound}",
                    f"pin numpy=={newest[0]}" if newest else "",
                    pinned_cell(cell, "numpy", str(newest[0])) if newest else None,
                    tuple(models),
                    "" if newest else f"no numpy{bound} release for Python {cell.python}",
                    f"numpy {newest[0]}" if newest else "",
                )
            )
        else:
            line = _line(cell)
            fitting = [a for a, (low, high) in ADDONS_SUPPORT.items() if _minor(low) <= _minor(line) <= _minor(high)]
            found = select_versions(fitting[0], releases("tensorflow-addons", cell.python)) if fitting else []
            tries.append(
                SiblingTry(
                    cell_id,
                    f"tensorflow-addons=={found[0]}" if found else "tensorflow-addons",
                    f"install tensorflow-addons=={found[0]} (built for tensorflow {line})" if found else "",
                    pinned_cell(cell, "tensorflow-addons", str(found[0])) if found else None,
                    tuple(models),
                    "" if found else f"no tensorflow-addons release supports tensorflow {line}",
                    f"tensorflow-addons {found[0]}" if found else "",
                )
            )
    return tries


def legacy_tries(
    results: Sequence[CellResult],
    cells: Mapping[str, Cell],
    infos: Sequence[ModelInfo],
    tf_keras_releases: Callable[[str], Sequence[Version]],
) -> list[SiblingTry]:
    """The tf-keras legacy tries alone (`tf_keras_releases(python)` lists tf-keras's releases)."""
    every = sibling_tries(results, cells, infos, lambda package, python: tf_keras_releases(python) if package == "tf-keras" else [])
    return [t for t in every if t.fix == LEGACY_FIX]


def apply_tries(results: Sequence[CellResult], tries: Sequence[SiblingTry], outcomes: Sequence[CellResult]) -> list[CellResult]:
    """The results with each try's outcome: loaded-after-fix where the sibling loaded the model,
    else the failure kept with why the fix did not help (new values, same order). A result
    tried by several siblings takes the first that loaded it."""
    got = {(r.cell, r.model): r for r in outcomes}
    tried: dict[tuple[str, str], list[SiblingTry]] = {}
    for t in tries:
        for m in t.models:
            tried.setdefault((t.original, m), []).append(t)
    out = []
    for r in results:
        for attempt in tried.get((r.cell, r.model), []):
            r = _applied(r, attempt, got)
            if r.fix_worked == attempt.fix:
                break
        out.append(r)
    return out


apply_legacy = apply_tries


def _applied(r: CellResult, attempt: SiblingTry, got: Mapping[tuple[str, str], CellResult]) -> CellResult:
    tried = (*r.fixes_tried, attempt.fix)
    outcome = got.get((attempt.cell.id, r.model)) if attempt.cell else None
    if attempt.cell is not None and outcome is not None and outcome.status in LOADS:
        extra = f" with {outcome.fix_worked}" if outcome.fix_worked else ""
        return replace(
            r,
            status="loaded-after-fix",
            fixes_tried=tried,
            fix_worked=attempt.fix,
            detail=f"loads with {attempt.said or attempt.fix}{extra} (cell {outcome.cell})",
            # only what was tried: re-saving with Keras 3 was not, so it is not claimed
            fix=f"{attempt.advice}{extra} (proven: it loads in {outcome.cell})",
            recipe=recipe(
                env=environment(
                    {"python": attempt.cell.python, "pins": dict(attempt.cell.pins), "env": dict(attempt.cell.env), "api": attempt.cell.api},
                    outcome.cell,
                ),
                load=load_options(outcome.fix_worked, outcome),
                proven=True,
                where=outcome.cell,
            ),
        )
    why = attempt.missing or f"{attempt.fix} did not load it either ({outcome.status if outcome else 'not run'})"
    if attempt.fix == LEGACY_FIX and attempt.cell is not None:
        why = f"tf-keras legacy mode did not load it either ({outcome.status if outcome else 'not run'})"
    fix = r.fix or ""
    if "(--try-fixes tries it)" in fix:
        fix = fix.replace("(--try-fixes tries it)", f"(tried: {why})")
    elif fix:
        fix = f"{fix} (tried: {why})"
    return replace(r, fixes_tried=tried, detail="; ".join(x for x in (r.detail, why) if x), fix=fix or r.fix)
