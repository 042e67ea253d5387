"""A recipe for every result that did not load as it is: what makes it load, as data, and
whether this run saw it work.

A recipe is an environment (a cell's Python, pins and variables), load options
(compile=False, safe_mode=False, custom objects, another file name) and config repairs.
It is **proven** when this run loaded the model that way: in the failing cell itself (the
probe's chain of options), in a sibling cell that --try-fixes ran (tf-keras legacy mode),
or in another cell of the same run (then the recipe is that cell's environment, and the
fix sentence says where it loads). Otherwise it says why it was not tried, and the fix
sentence says so in the same words: advice the run did not test is never worded as a fact.

Pure: results and the run's cells in, new results out (same order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .diagnose import LOADS, CellResult, options
from .outcomes import KERAS_BACKEND
from .probe import AS_H5, COMPILE, CUSTOM, REPAIRED, UNSAFE
from .rules import REPAIRED_SAID, SERVING_FAILED, serving_answered, standin_loaded

WANTS = ("load-error", "import-error", "crash", "timeout", "loaded-after-fix")
MARKS = ("(proven", "(tried", "(not tried", "proven:")


def environment(cell: Mapping[str, Any] | None, cell_id: str | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {
        "cell": cell_id,
        "python": cell.get("python"),
        "pins": {k: v for k, v in dict(cell.get("pins") or {}).items() if v is not None},
        "env": dict(cell.get("env") or {}),
        "api": cell.get("api"),
    }


def load_options(fix: str | None, result: CellResult | None = None, repairs: Sequence[str] = ()) -> dict[str, Any]:
    """A fix's name ("custom_objects+compile=False") as load options."""
    done = options(fix)
    named = [result.missing_name] if result is not None and result.missing_name else []
    return {
        "compile": False if COMPILE in done else None,
        "safe_mode": False if UNSAFE in done else None,
        "custom_objects": (named or ["(the objects of your --custom-objects file)"]) if CUSTOM in done else None,
        "file_name": ".h5" if AS_H5 in done else None,
        "repairs": list(repairs) if REPAIRED in done else [],
    }


def recipe(
    *,
    env: dict[str, Any] | None,
    load: dict[str, Any] | None = None,
    proven: bool,
    where: str | None = None,
    why: str | None = None,
) -> dict[str, Any]:
    return {
        "environment": env,
        "load": load or {"compile": None, "safe_mode": None, "custom_objects": None, "file_name": None, "repairs": []},
        "proven": proven,
        "where": where,
        "why": why,
    }


def with_recipes(
    results: Sequence[CellResult],
    cells: Mapping[str, Mapping[str, Any]],
    *,
    try_fixes: bool,
    custom_objects: bool,
    trusted: bool,
    repairs: Mapping[tuple[str, str], Sequence[str]] | None = None,
    inference: bool = False,
) -> list[CellResult]:
    """Each result that did not load as it is gets its recipe, and its fix sentence a mark.

    `cells`: the run's cells as results.json writes them (id -> python, pins, env, api);
    `repairs`: (model, Keras major) -> the config repairs the harness made (tryrepair);
    `inference`: outputs were saved and compared (outputs.py ran before this): a repaired
    config is proven only when it loads *and*, where the original loads as it is somewhere in
    the run, answers as the original does there."""

    def proof_of(x: CellResult) -> dict[str, Any]:
        """The recipe x's own cell proved (a sibling's, tf-keras legacy mode, carries its own)."""
        if x.recipe is not None:
            return dict(x.recipe)
        major = (x.versions.get("keras") or "")[:1]
        variant = f"{major}-{x.versions.get(KERAS_BACKEND)}"  # the probe prefers its backend's repaired file ("3-torch")
        made = (repairs or {}).get((x.model, variant)) or (repairs or {}).get((x.model, major), ())
        return recipe(env=environment(cells.get(x.cell), x.cell), load=load_options(x.fix_worked, x, made), proven=True, where=x.cell)

    loads: dict[str, list[CellResult]] = {}
    for r in results:
        if r.status in LOADS:
            loads.setdefault(r.model, []).append(r)
    legacy_failed: dict[str, str] = {}
    for r in results:
        cell = cells.get(r.cell) or {}
        legacy = cell.get("api") == "tf_keras" or dict(cell.get("env") or {}).get("TF_USE_LEGACY_KERAS") == "1"
        if legacy and r.status not in LOADS and r.status in WANTS:
            legacy_failed.setdefault(r.model, r.cell)
    out = []
    for r in results:
        if r.model in legacy_failed and r.fix and "TF_USE_LEGACY_KERAS=1" in r.fix and r.cell != legacy_failed[r.model]:
            # the run's own tf-keras cell already answers the advice: it does not load there either
            said = f"(tried in this run: tf-keras legacy mode does not load it either, cell {legacy_failed[r.model]})"
            replaced = r.fix.replace("(--try-fixes tries it)", said)
            r = replace(r, fix=replaced if said in replaced else f"{replaced} {said}")
        if r.status not in WANTS or r.recipe is not None:
            out.append(r)
            continue
        if r.status == "loaded-after-fix":
            proof = proof_of(r)
            # a sentence whose own words say what loaded it keeps them; any other says it plainly, apart from its advice
            fix = r.fix if r.fix and any(m in r.fix for m in MARKS) else f"{r.fix or 'it'}; it loads here with {r.fix_worked} (proven)"
            made = proof["load"].get("repairs") or []
            if fix and made:
                fix = fix.replace(REPAIRED_SAID, f"{REPAIRED_SAID}: {_shown(made)}", 1)
            original = next((x.cell for x in loads.get(r.model, []) if x.status == "loaded"), None)
            if REPAIRED in options(r.fix_worked) and original is not None and not (inference and r.output_diff):
                # a repaired config that loads is not yet the same model: where the original loads, outputs decide
                why = (
                    f"the repaired config loads here, but its outputs were not compared with the original's, which loads as it "
                    f"is in {original}: run with load.inference: true"
                )
                proof = dict(proof, proven=False, why=why)
                fix = (fix or "").replace(f"(proven: {REPAIRED_SAID}", f"(not proven: {why}; {REPAIRED_SAID}", 1)
            out.append(replace(r, recipe=proof, fix=fix))
            continue
        elsewhere = _nearest(r, [x for x in loads.get(r.model, []) if x.cell != r.cell])
        if elsewhere is not None:
            proof = (
                proof_of(elsewhere)
                if elsewhere.status == "loaded-after-fix"
                else recipe(env=environment(cells.get(elsewhere.cell), elsewhere.cell), proven=True, where=elsewhere.cell)
            )
            how = f" with {elsewhere.fix_worked}" if elsewhere.fix_worked else " as it is"
            said = f"it loads{how} in {proof['where']} (this run): use that environment"
            marked = _marked(r.fix, _why(r, try_fixes, custom_objects, trusted, loads_elsewhere=True)) if r.fix else None
            out.append(replace(r, recipe=proof, fix=f"{marked}; {said}" if marked else said))
            continue
        why = _why(r, try_fixes, custom_objects, trusted)
        out.append(
            replace(r, recipe=recipe(env=None, load=_advised(r), proven=False, why=why), fix=_marked(r.fix, why) if r.fix else r.fix)
        )
    return out


def _shown(repairs: Sequence[str]) -> str:
    cut = [r if len(r) <= 90 else r[:87] + "..." for r in repairs[:3]]
    return "; ".join(cut) + (f"; and {len(repairs) - 3} more" if len(repairs) > 3 else "")


def _marked(fix: str | None, why: str) -> str | None:
    """The fix sentence with its mark: what the run saw, or why it was not tried (kept if it has one)."""
    if not fix:
        return fix
    if any(m in fix for m in MARKS):
        return fix
    mark = f" ({why if why.startswith('proven') else 'not tried: ' + why})"
    advice, served, seen = fix.partition(SERVING_FAILED)  # the mark goes with the advice, before what the run saw
    return f"{advice}{mark}{served}{seen}"


def _why(r: CellResult, try_fixes: bool, custom_objects: bool, trusted: bool, *, loads_elsewhere: bool = False) -> str:
    """Why the fix sentence's recipe was not run in this run."""
    fix = r.fix or ""
    if standin_loaded(r.attempts):
        return "it needs your function; with a stand-in in its place the model loads"
    if serving_answered(r.attempts):
        return "load_model does not read it here; only its serving signature answers, for inference (proven)"
    if r.cause == "custom-object" and not custom_objects:
        return "it needs your custom objects: pass --custom-objects FILE and the harness tries them"
    if r.cause == "safe-mode" and not trusted:
        return "it runs the file's code: pass --trust-models for a file you trust and the harness tries it"
    if not try_fixes and ("--try-fixes" in fix or "pin numpy<" in fix or "install tensorflow-addons==" in fix):
        return "run with --try-fixes to try it (in a sibling cell with that change)"
    if r.cause in ("corrupt-file", "not-a-model"):
        return "no load option makes a model of this file"
    if r.status == "import-error":
        return "the environment change it needs is not part of this run's matrix"
    if r.status in ("crash", "timeout"):
        return "the load did not finish, so nothing after it was tried"
    if loads_elsewhere:  # the sentence goes on to name the cell that loads it
        return "no load option the harness has made it load here"
    return "no load option the harness has made it load here, and no cell of this run loads it"


def _advised(r: CellResult) -> dict[str, Any]:
    """The load options the fix sentence names (what a script would pass), not proven."""
    fix = r.fix or ""
    return {
        "compile": False if "compile=False" in fix else None,
        "safe_mode": False if "safe_mode=False" in fix else None,
        "custom_objects": [r.missing_name] if r.cause == "custom-object" and r.missing_name else None,
        "file_name": ".h5" if "to a .h5 name" in fix else None,
        "repairs": [],
    }


def _nearest(r: CellResult, loaded: Sequence[CellResult]) -> CellResult | None:
    """Of the cells where the model loads, the one closest to r's: the same Keras major, then
    the closest TensorFlow release; loaded as it is before loaded with a fix."""
    if not loaded:
        return None

    def release(x: CellResult) -> tuple[int, ...]:
        version = x.versions.get("tensorflow") or x.versions.get("tensorflow-cpu") or ""
        return tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:2])

    mine = release(r)
    major = (r.versions.get("keras") or "")[:1]

    def distance(x: CellResult) -> tuple[int, int, int, str]:
        theirs = release(x)
        gap = abs((mine[1] if len(mine) > 1 else 0) - (theirs[1] if len(theirs) > 1 else 0))
        return (int((x.versions.get("keras") or "")[:1] != major), int(x.status != "loaded"), gap, x.cell)

    return min(loaded, key=distance)
