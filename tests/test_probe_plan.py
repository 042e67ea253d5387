"""The probe's plan of attempts and its serving-signature adapter, without TensorFlow (the
real loads are in tests/test_e2e_uv.py and tests/test_e2e_migrate.py)."""

from __future__ import annotations

from types import SimpleNamespace

from harness.probe import AS_H5, SAVED_MODEL_LOAD, TFSM, UNSAFE, Serving, attempt_plan


def fixes(request: dict, model: dict) -> list[str | None]:
    return [fix for fix, _, _ in attempt_plan(request, model)]


def test_the_rescue_is_planned_last_and_only_for_a_savedmodel_that_asks():
    saved = {"format": "savedmodel", "path": "/m/sm", "rescue": True}
    assert fixes({}, saved) == [None, "compile=False", TFSM, SAVED_MODEL_LOAD]
    assert fixes({"trusted": True, "custom_objects": "/c.py"}, saved)[-2:] == [TFSM, SAVED_MODEL_LOAD]
    assert TFSM not in fixes({}, {**saved, "rescue": False})  # harness run: never
    assert TFSM not in fixes({}, {"format": "h5", "path": "/m/a.h5", "rescue": True})
    # the rescue is for inference: compiled or not does not apply
    assert [c for f, c, _ in attempt_plan({}, saved) if f in (TFSM, SAVED_MODEL_LOAD)] == [False, False]


def test_file_dependent_fixes():
    assert fixes({}, {"format": "h5", "path": "/m/a.keras"}) == [None, AS_H5, "compile=False"]
    assert fixes({"trusted": True}, {"format": "keras", "path": "/m/a.keras"}) == [None, "compile=False", UNSAFE]
    assert fixes({"fixes": False}, {"format": "h5", "path": "/m/a.keras"}) == [None]


def test_serving_feeds_inputs_by_name_and_returns_outputs_in_natural_order():
    specs = {"b": SimpleNamespace(shape=(None, 2)), "a": SimpleNamespace(shape=(None, 3))}
    function = SimpleNamespace(structured_input_signature=((), specs))
    seen = {}

    def call(named):
        seen.update(named)
        return {"output_10": 10, "output_2": 2, "output_1": 1}

    serving = Serving(function, call)
    assert [s.shape for s in serving.inputs] == [(None, 3), (None, 2)]  # a, then b
    assert serving(["A", "B"], training=False) == [1, 2, 10]
    assert seen == {"a": "A", "b": "B"}


def test_the_framework_imports_without_the_collector_and_the_loads_run_with_it():
    """collector_paused: off during the import, then on, with what the import made frozen
    (a fresh interpreter, so that this test's own objects are not frozen)."""
    import subprocess
    import sys

    from harness import probe

    code = f"""
import gc, importlib.util
spec = importlib.util.spec_from_file_location("probe", {probe.__file__!r})
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)
with probe.collector_paused():
    during = gc.isenabled()
    made = [[n] for n in range(1000)]  # stands for the framework's modules
print(during, gc.isenabled(), gc.get_freeze_count() >= 1000)
"""
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "True"]
