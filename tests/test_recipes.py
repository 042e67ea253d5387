"""Recipes: what makes a result load, proven by what the run saw or said to be untried, and why."""

from __future__ import annotations

from dataclasses import replace

from harness.diagnose import CellResult
from harness.recipes import with_recipes

K2 = {"id": "py3.11-tensorflow2.15.1", "python": "3.11", "pins": {"tensorflow": "2.15.1"}, "env": {}, "api": "tf.keras"}
K3 = {"id": "py3.11-tensorflow2.21.0", "python": "3.11", "pins": {"tensorflow": "2.21.0"}, "env": {}, "api": "tf.keras"}
LEGACY = {
    "id": "py3.11-tensorflow2.21.0-tf-keras2.21.0-legacy",
    "python": "3.11",
    "pins": {"tensorflow": "2.21.0", "tf-keras": "2.21.0"},
    "env": {"TF_USE_LEGACY_KERAS": "1"},
    "api": "tf.keras",
}
CELLS = {c["id"]: c for c in (K2, K3, LEGACY)}


def run(results: list[CellResult], **options: bool) -> dict[tuple[str, str], CellResult]:
    done = with_recipes(
        results,
        CELLS,
        try_fixes=options.get("try_fixes", False),
        custom_objects=options.get("custom_objects", False),
        trusted=options.get("trusted", False),
        inference=options.get("inference", False),
        repairs={("m.h5", "3"): ["gru: reset_after=False (...)"]},
    )
    return {(r.model, r.cell): r for r in done}


def test_a_fix_the_cell_ran_is_proven_there_with_its_options():
    r = CellResult(
        "m.h5",
        K3["id"],
        "loaded-after-fix",
        cause="version-mismatch",
        fix="compile it again",
        fix_worked="compile=False",
        versions={"keras": "3.15.1"},
    )
    got = run([r])[("m.h5", K3["id"])]
    assert got.recipe == {
        "environment": {"cell": K3["id"], "python": "3.11", "pins": {"tensorflow": "2.21.0"}, "env": {}, "api": "tf.keras"},
        "load": {"compile": False, "safe_mode": None, "custom_objects": None, "file_name": None, "repairs": []},
        "proven": True,
        "where": K3["id"],
        "why": None,
    }
    assert got.fix == "compile it again; it loads here with compile=False (proven)"


def test_a_file_that_loads_in_another_cell_of_the_run_gets_that_cell_as_its_recipe():
    failed = CellResult(
        "m.h5", K3["id"], "load-error", cause="custom-object", missing_name="Block", fix="pass custom_objects", versions={"keras": "3.15.1"}
    )
    loaded = CellResult("m.h5", K2["id"], "loaded", versions={"keras": "2.15.0"})
    got = run([failed, loaded])
    recipe = got[("m.h5", K3["id"])].recipe
    assert (
        recipe is not None
        and recipe["proven"] is True
        and recipe["where"] == K2["id"]
        and recipe["environment"]["pins"] == {"tensorflow": "2.15.1"}
    )
    fix = got[("m.h5", K3["id"])].fix
    assert (
        fix
        == f"pass custom_objects (not tried: it needs your custom objects: pass --custom-objects FILE and the harness tries them); it loads as it is in {K2['id']} (this run): use that environment"
    )
    assert got[("m.h5", K2["id"])].recipe is None  # it loaded as it is: nothing to make it load


def test_each_untried_fix_says_why():
    def failed(cause: str, fix: str, **extra: object) -> CellResult:
        return CellResult("m.h5", K3["id"], "load-error", cause=cause, fix=fix, versions={"keras": "3.15.1"}, **extra)  # type: ignore[arg-type]

    cases = {
        "it needs your custom objects": failed("custom-object", "pass custom_objects={'Block': Block}", missing_name="Block"),
        "pass --trust-models": failed("safe-mode", "pass safe_mode=False"),
        "run with --try-fixes": failed("version-mismatch", "install tf-keras and set TF_USE_LEGACY_KERAS=1 (--try-fixes tries it)"),
        "no load option makes a model": failed("not-a-model", "build the model in code, then load_weights"),
        "with a stand-in": failed(
            "custom-object", "pass custom_objects={'<lambda>': f}", attempts=({"fix": "stand-in functions", "ok": True, "standin": True},)
        ),
    }
    for said, r in cases.items():
        got = run([r])[("m.h5", K3["id"])]
        assert got.recipe is not None and got.recipe["proven"] is False and said in got.recipe["why"], said
        assert got.fix is not None and got.fix.endswith(f"(not tried: {got.recipe['why']})")
    advised = run([cases["it needs your custom objects"]])[("m.h5", K3["id"])].recipe
    assert advised is not None and advised["load"]["custom_objects"] == ["Block"]


def test_the_run_s_own_legacy_cell_answers_the_legacy_advice():
    advice = "this file was saved by Keras 2.15.0: install tf-keras and set TF_USE_LEGACY_KERAS=1 (--try-fixes tries it)"
    k3 = CellResult("m.h5", K3["id"], "load-error", cause="version-mismatch", fix=advice, versions={"keras": "3.15.1"})
    legacy = CellResult("m.h5", LEGACY["id"], "load-error", cause="custom-object", fix="pass it", versions={"tf-keras": "2.21.0"})
    got = run([k3, legacy])[("m.h5", K3["id"])]
    assert got.fix is not None and "(--try-fixes tries it)" not in got.fix
    assert f"(tried in this run: tf-keras legacy mode does not load it either, cell {LEGACY['id']})" in got.fix


def test_a_repaired_config_is_not_proven_while_the_original_loads_somewhere_and_no_outputs_were_compared():
    repaired = CellResult(
        "m.h5",
        K3["id"],
        "loaded-after-fix",
        cause="version-mismatch",
        fix="set reset_after=False (proven: the repaired config loaded)",
        fix_worked="repaired config",
        versions={"keras": "3.15.1"},
    )
    original = CellResult("m.h5", K2["id"], "loaded", versions={"keras": "2.15.0"})
    got = run([repaired, original])[("m.h5", K3["id"])]
    assert got.recipe is not None and got.recipe["proven"] is False and "outputs were not compared" in got.recipe["why"]
    assert got.recipe["load"]["repairs"] == ["gru: reset_after=False (...)"]
    assert got.fix is not None and got.fix.startswith("set reset_after=False (not proven: ")
    # compared and equal (outputs.py left it loaded-after-fix with a diff): proven
    compared = run([replace(repaired, output_diff={"max_abs": 0.0}), original], inference=True)
    proof = compared[("m.h5", K3["id"])].recipe
    assert proof is not None and proof["proven"] is True
    # nowhere else loads it: the load is the proof
    alone = run([repaired])[("m.h5", K3["id"])].recipe
    assert alone is not None and alone["proven"] is True


def test_the_not_tried_mark_stays_with_the_advice_before_what_the_serving_signature_showed():
    from harness.rules import SERVING_FAILED

    seen = f"{SERVING_FAILED}TFSMLayer raised AttributeError: '_UserObject' object has no attribute 'add_slot'"
    advice = "a SavedModel of Keras 2.4.0: load with tf-keras and TF_USE_LEGACY_KERAS=1 (--try-fixes tries it)"
    r = CellResult("m.h5", K3["id"], "load-error", cause="version-mismatch", fix=advice + seen, versions={"keras": "3.15.1"})
    got = run([r])[("m.h5", K3["id"])]
    assert got.fix == f"{advice} (not tried: {got.recipe['why']}){seen}" and "--try-fixes" in got.recipe["why"]
    served = replace(r, fix=advice + " (proven for inference only: ...)", attempts=({"fix": "TFSMLayer", "ok": True, "serving": True},))
    got = run([served])[("m.h5", K3["id"])]
    assert got.recipe["proven"] is False and "only its serving signature answers" in got.recipe["why"]
