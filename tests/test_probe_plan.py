"""The probe's plan of attempts and its serving-signature adapter, without TensorFlow (the
real loads are in tests/test_e2e_uv.py and tests/test_e2e_migrate.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.probe import (
    AS_H5,
    COMPILE,
    CUSTOM,
    REPAIRED,
    SAVED_MODEL_LOAD,
    STANDIN,
    TFSM,
    UNSAFE,
    Serving,
    attempt_plan,
    candidates,
    fix_name,
    load_model_attempts,
)


def fixes(request: dict, model: dict) -> list[str | None]:
    return [fix for fix, _, _ in attempt_plan(request, model)]


def test_the_rescue_is_planned_last_and_only_for_a_savedmodel_that_asks():
    saved = {"format": "savedmodel", "path": "/m/sm", "rescue": True}
    assert fixes({}, saved) == [None, TFSM, SAVED_MODEL_LOAD]
    assert TFSM not in fixes({}, {**saved, "rescue": False})  # harness run: never
    assert TFSM not in fixes({}, {"format": "h5", "path": "/m/a.h5", "rescue": True})
    # the rescue is for inference: compiled or not does not apply
    assert [c for f, c, _ in attempt_plan({}, saved) if f in (TFSM, SAVED_MODEL_LOAD)] == [False, False]


def test_the_options_that_apply_in_the_order_the_chain_tries_them():
    assert candidates({}, {"format": "h5", "path": "/m/a.keras"}) == [AS_H5, COMPILE]
    assert candidates({"trusted": True}, {"format": "keras", "path": "/m/a.keras"}) == [COMPILE, UNSAFE]
    assert candidates({"fixes": False}, {"format": "h5", "path": "/m/a.keras"}) == []
    everything = {"format": "h5", "path": "/m/a.keras", "standins": ["<lambda>"], "repaired": "/m/a.repaired2.h5"}
    assert candidates({"custom_objects": "/c.py", "trusted": True}, everything) == [AS_H5, CUSTOM, STANDIN, COMPILE, REPAIRED, UNSAFE]
    assert candidates({"compile": False}, {"format": "h5", "path": "/m/a.h5"}) == []  # already uncompiled


def chain(request: dict, model: dict, blockers: dict[frozenset[str], str | None]) -> list[str | None]:
    """The attempts load_model_attempts makes when an attempt with options O fails on blockers[O]
    (None: it loads); options not in the table fail as the plain load does."""
    plain = blockers[frozenset()]
    tried: list[str | None] = []

    def run(options: tuple[str, ...], deadline: float) -> dict:
        tried.append(fix_name(options))
        blocker = blockers.get(frozenset(options), plain)
        if blocker is None:
            return {"attempt": {"fix": fix_name(options), "ok": True}}
        return {"attempt": {"fix": fix_name(options), "ok": False, "error": {"type": "ValueError", "message": blocker}}}

    load_model_attempts(None, model, request, run)
    return tried


def test_the_chain_keeps_each_option_that_moved_the_load_past_a_blocker():
    """A Keras 3 file with a custom layer and a lambda loss: custom objects clear the first
    blocker, compile=False the second; together they load (tried in that order)."""
    request = {"custom_objects": "/c.py"}
    model = {"format": "keras", "path": "/m/a.keras"}
    blockers = {
        frozenset(): "Could not locate class 'Block'",
        frozenset({CUSTOM}): "Unknown loss function: '<lambda>'",
        frozenset({COMPILE}): "Could not locate class 'Block'",
        frozenset({CUSTOM, COMPILE}): None,
    }
    assert chain(request, model, blockers) == [None, CUSTOM, f"{CUSTOM}+{COMPILE}"]


def test_an_option_that_changes_nothing_is_not_carried_on():
    request = {"custom_objects": "/c.py"}
    model = {"format": "h5", "path": "/m/a.h5", "repaired": "/m/r.h5"}
    blockers = {frozenset(): "GRU(reset_after=False) is not compatible", frozenset({REPAIRED}): None}
    assert chain(request, model, blockers) == [None, CUSTOM, COMPILE, REPAIRED]


def test_safe_mode_is_tried_only_after_a_refusal_for_safety():
    model = {"format": "keras", "path": "/m/a.keras"}
    refused = {frozenset(): "Requested the deserialization of a `lambda` ... safe_mode=False", frozenset({UNSAFE}): None}
    assert chain({"trusted": True}, model, refused) == [None, COMPILE, UNSAFE]
    other = {frozenset(): "Could not locate class 'Block'"}
    assert chain({"trusted": True}, model, other) == [None, COMPILE]  # nothing refused: its code is not run


def test_serving_feeds_inputs_by_name_and_its_outputs_are_named_in_natural_order():
    import numpy as np

    from harness.probe import generated_input, named_outputs

    specs = {"b": SimpleNamespace(shape=(None, 2), dtype=SimpleNamespace(name="int32")), "a": SimpleNamespace(shape=(None, 3), dtype=SimpleNamespace(name="float32"))}
    function = SimpleNamespace(structured_input_signature=((), specs))
    seen = {}

    def call(named):
        seen.update(named)
        return {"output_10": 10, "output_2": 2, "output_1": 1}

    serving = Serving(function, call)
    assert [s.shape for s in serving.inputs] == [(None, 3), (None, 2)]  # a, then b
    assert serving(["A", "B"], training=False) == {"output_10": 10, "output_2": 2, "output_1": 1}
    assert seen == {"a": "A", "b": "B"}
    batch, spec = generated_input(serving)  # a dict keyed by the signature's names
    assert sorted(batch) == ["a", "b"] and batch["a"].shape == (4, 3) and batch["b"].dtype == np.int32
    assert [s["name"] for s in spec] == ["a", "b"] and spec[1]["dtype"] == "int32" and (spec[1]["low"], spec[1]["high"]) == (0, 2)
    assert [n for n, _ in named_outputs(serving(batch))] == ["output_1", "output_2", "output_10"]


def test_generated_batches_are_edges_then_seeded_rows_and_a_saved_batch_is_called_batch_by_batch(tmp_path):
    """Three batches of four rows: edge values (a ramp, zeros, low, high) and two seeded random
    ones; saved joined with their rows, they are called again one by one (the target of a
    migration is given the source's own batches)."""
    import numpy as np

    from harness.probe import BATCH_ROWS_KEY, generated_batches, run_inference

    ids = SimpleNamespace(shape=(None, 5), dtype=SimpleNamespace(name="int32"), name="ids")
    x = SimpleNamespace(shape=(None, 2), dtype=SimpleNamespace(name="float32"), name="x")
    calls = []

    class Model:
        inputs = (ids, x)
        layers = (SimpleNamespace(input=ids, input_dim=7),)  # not an Embedding: the int input keeps [0, 2)

        def __call__(self, batch, training=False):
            calls.append([b.shape[0] for b in batch])
            return {"sum": batch[0].sum(axis=1, keepdims=True) + batch[1].sum(axis=1, keepdims=True), "n": np.float32(len(batch[0]))}

    model = Model()
    batches, spec = generated_batches(model)
    assert len(batches) == 3 and all(b[0].shape == (4, 5) and b[1].shape == (4, 2) for b in batches)
    edges = batches[0][1]
    assert edges[1].tolist() == [0, 0] and edges[2].tolist() == [-1, -1] and edges[3].tolist() == [1, 1]
    assert not np.array_equal(batches[1][1], batches[2][1])  # two seeds
    assert [b.get("seed") for b in spec[1]["batches"]] == [None, 0, 1] and spec[0]["dtype"] == "int32"
    saved, outputs = tmp_path / "input.npz", tmp_path / "out.npz"
    summary, _ = run_inference(model, save_to=str(outputs), save_input=str(saved))
    assert calls == [[4, 4]] * 3 and {s["name"]: s["shape"] for s in summary} == {"n": [3], "sum": [12, 1]}
    assert np.load(saved)[BATCH_ROWS_KEY].tolist() == [4, 4, 4]
    calls.clear()
    again, given = run_inference(model, input_file=str(saved))
    assert calls == [[4, 4]] * 3 and again == summary and given[0]["batches"] == [{"rows": 4}] * 3
    calls.clear()
    with np.load(saved) as kept:
        np.savez(tmp_path / "mine.npz", kept["arr_0"], kept["arr_1"])
    run_inference(model, input_file=str(tmp_path / "mine.npz"))  # a user's file without rows: one call
    assert calls == [[12, 12]]


def test_outputs_of_any_shape_are_named_and_hostile_names_are_made_safe():
    from harness.probe import named_outputs

    out = {"z": [1, (2, 3)], "../etc/passwd": 4, "a b": {"c": 5}}
    assert [n for n, _ in named_outputs(out)] == ["___etc_passwd", "a_b.c", "z.0", "z.1.0", "z.1.1"]
    assert [n for n, _ in named_outputs(7)] == ["0"] and [n for n, _ in named_outputs([7, 8])] == ["0", "1"]
    assert [n for n, _ in named_outputs({"a/b": 1, "a_b": 2})] == ["a_b", "a_b~2"]  # two names made one stay two
    deep: object = 1
    for _ in range(12):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than 8"):
        named_outputs(deep)


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
