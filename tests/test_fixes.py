"""The legacy fix's two pure halves: which cells to try, and what the tries mean for the results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from packaging.version import Version

from harness.diagnose import CellResult
from harness.fixes import LEGACY_FIX, apply_legacy, legacy_tries
from harness.inspection import inspect_model
from harness.matrix import Cell

KERAS2_FILE = inspect_model(Path(__file__).resolve().parent.parent / "examples" / "models" / "residual_block.h5")  # saved by Keras 2.15


def keras3_failure(cell: Cell) -> CellResult:
    return CellResult(
        KERAS2_FILE.name, cell.id, "load-error", cause="custom-object", versions={"keras": "3.3.3"}, fix="pass it (--try-fixes tries it)"
    )


def test_only_keras2_files_failing_under_keras3_are_tried_and_the_results_stay_untouched():
    tf216 = Cell(python="3.11", pins=(("tensorflow", "2.16.2"),))
    tf299 = Cell(python="3.11", pins=(("tensorflow", "2.99.0"),))
    loaded = CellResult(KERAS2_FILE.name, "other", "loaded", versions={"keras": "3.3.3"})
    results = [keras3_failure(tf216), keras3_failure(tf299), loaded]
    before = list(results)
    tries = legacy_tries(results, {tf216.id: tf216, tf299.id: tf299}, [KERAS2_FILE], lambda python: [Version("2.16.0"), Version("2.17.0")])
    assert [(t.original, t.cell is not None) for t in tries] == [(tf216.id, True), (tf299.id, False)]  # no tf-keras 2.99
    legacy = tries[0].cell
    assert legacy is not None and dict(legacy.pins)["tf-keras"] == "2.16.0" and dict(legacy.env) == {"TF_USE_LEGACY_KERAS": "1"}

    outcome = CellResult(KERAS2_FILE.name, legacy.id, "loaded")
    fixed, missing, same = apply_legacy(results, tries, [outcome])
    assert results == before  # new values; the given ones unchanged
    assert (fixed.status, fixed.fix_worked, fixed.fixes_tried) == ("loaded-after-fix", LEGACY_FIX, (LEGACY_FIX,))
    assert missing.status == "load-error" and missing.detail == "no tf-keras release for tensorflow 2.99"
    assert missing.fix == "pass it (tried: no tf-keras release for tensorflow 2.99)"
    assert same is loaded


def test_a_legacy_cell_that_fails_too_is_said_so():
    tf = Cell(python="3.11", pins=(("tensorflow", "2.16.2"),))
    [attempt] = legacy_tries([keras3_failure(tf)], {tf.id: tf}, [KERAS2_FILE], lambda python: [Version("2.16.0")])
    assert attempt.cell is not None
    [still] = apply_legacy([keras3_failure(tf)], [attempt], [replace(keras3_failure(attempt.cell), status="crash")])
    assert still.status == "load-error" and still.detail == "tf-keras legacy mode did not load it either (crash)"


def test_numpy_and_addons_siblings_pin_the_release_the_fix_names():
    """TF 2.14 beside numpy 2 does not import ("_ARRAY_API not found"); an Addons file under TF 2.15
    without tensorflow-addons: each is tried in a sibling cell with one pin more."""
    from harness.fixes import apply_tries, sibling_tries
    from harness.modelfile import ClassRef, ModelInfo

    tf214 = Cell(python="3.11", pins=(("tensorflow", "2.14.0"),))
    tf215 = Cell(python="3.11", pins=(("tensorflow", "2.15.1"),))
    addons = ModelInfo(
        path="/a.h5", name="a.h5", sha256="0" * 64, size=1, format="h5", keras_version="2.15.0",
        classes=(ClassRef("Addons>GroupNormalization", "addons", "layers[1]"),),
    )  # fmt: skip
    broken = CellResult(
        "a.h5", tf214.id, "import-error", cause="environment", missing_name="numpy ABI", versions={"numpy": "2.1.3"},
        fix="pin numpy<2: tensorflow 2.14.0 was built against numpy 1.x",
    )  # fmt: skip
    missing = CellResult(
        "a.h5", tf215.id, "load-error", cause="missing-dependency", missing_name="Addons>GroupNormalization",
        versions={"keras": "2.15.0"}, fix="install tensorflow-addons==0.23.* (built for tensorflow 2.15)",
    )  # fmt: skip
    released = {
        "numpy": [Version(v) for v in ("1.24.4", "1.26.4", "2.0.2", "2.1.3")],
        "tensorflow-addons": [Version(v) for v in ("0.22.0", "0.23.0")],
    }
    tries = sibling_tries(
        [broken, missing], {tf214.id: tf214, tf215.id: tf215}, [addons], lambda package, python: released.get(package, [])
    )
    by_fix = {t.fix: t for t in tries}
    assert set(by_fix) == {"numpy<2", "tensorflow-addons==0.23.0"}
    numpy = by_fix["numpy<2"].cell
    addon = by_fix["tensorflow-addons==0.23.0"].cell
    assert numpy is not None and dict(numpy.pins) == {"tensorflow": "2.14.0", "numpy": "1.26.4"}
    assert addon is not None and dict(addon.pins) == {"tensorflow": "2.15.1", "tensorflow-addons": "0.23.0"}
    fixed, still = apply_tries(
        [broken, missing], tries, [CellResult("a.h5", numpy.id, "loaded"), CellResult("a.h5", addon.id, "load-error")]
    )
    assert (fixed.status, fixed.fix_worked) == ("loaded-after-fix", "numpy<2")
    assert fixed.fix == f"pin numpy==1.26.4 (proven: it loads in {numpy.id})"
    assert fixed.recipe is not None and fixed.recipe["environment"]["pins"]["numpy"] == "1.26.4" and fixed.recipe["proven"]
    assert still.status == "load-error" and "(tried: tensorflow-addons==0.23.0 did not load it either (load-error))" in still.fix
