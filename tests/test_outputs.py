from __future__ import annotations

import numpy as np

from harness.diagnose import CellResult
from harness.matrix import LoadOptions
from harness.outputs import MISMATCH, batch_rows, compare_outputs, differences


def test_differences_report_largest_absolute_and_relative():
    ref = [np.array([[1.0, 2.0]]), np.array([4.0])]
    got = differences(ref, [np.array([[1.0, 2.5]]), np.array([4.0])])
    assert got == {"max_abs": 0.5, "max_rel": 0.25}
    assert differences(ref, [np.array([1.0])])["max_abs"] is None  # shapes differ


def test_each_batch_gets_its_own_differences_and_a_scalar_output_one_value_per_batch():
    ref = {"y": np.zeros((7, 2)), "loss": np.zeros(3)}  # rows 3 + 2 + 2; a scalar output stacked per batch
    got = {"y": np.zeros((7, 2)), "loss": np.array([0.0, 0.0, 0.5])}
    got["y"][4, 1] = 0.25  # in the second batch
    found = differences(ref, got, [3, 2, 2])
    assert found["max_abs"] == 0.5
    assert [(b["rows"], b["max_abs"]) for b in found["batches"]] == [(3, 0.0), (2, 0.25), (2, 0.5)]
    assert "batches" not in differences(ref, got)  # one batch (a user's --input): the whole only
    assert "batches" not in differences({"y": np.zeros((5, 2))}, {"y": np.zeros((5, 2))}, [3, 2, 2])  # not made batch by batch


def test_batch_rows_are_read_from_what_a_cell_said_only_when_they_make_sense():
    made = [{"name": "x", "batches": [{"rows": 4, "seed": None}, {"rows": 4, "seed": 0}, {"rows": 4, "seed": 1}]}]
    assert batch_rows(made) == [4, 4, 4]
    for hostile in (None, [], ["x"], [{"batches": [{"rows": 4}]}], [{"batches": [{"rows": True}, {"rows": 1}]}],
                    [{"batches": [{"rows": 1 << 30}, {"rows": 1}]}], [{"batches": [{"rows": 1}] * 100}], [{"batches": "4,4"}]):
        assert batch_rows(hostile) is None


def test_compare_uses_the_saved_by_cell_and_marks_the_others(tmp_path):
    def save(name: str, value: float) -> str:
        path = tmp_path / f"{name}.npz"
        np.savez(path, np.full((1, 2), value))
        return str(path)

    models = [{"name": "m.h5", "keras_version": "2.15.0"}]
    results = [
        CellResult("m.h5", "a", "loaded", versions={"keras": "3.5.0"}, outputs=save("a", 1.2)),
        CellResult("m.h5", "b", "loaded", versions={"keras": "2.15.0"}, outputs=save("b", 1.0)),
        CellResult("m.h5", "c", "loaded-after-fix", versions={"keras": "2.15.0"}, outputs=save("c", 1.0 + 1e-7)),
        CellResult("m.h5", "d", "load-error", cause="custom-object"),
    ]
    before = list(results)
    a, b, c, d = compare_outputs(models, results, LoadOptions())
    assert results == before  # values: the inputs are unchanged
    assert a.status == MISMATCH and a.cause == "version-mismatch" and a.output_diff is not None
    assert a.output_diff["reference"] == "b" and abs(a.output_diff["max_abs"] - 0.2) < 1e-9
    assert b.output_diff == {"reference": "this cell", "max_abs": 0.0, "max_rel": 0.0} and b.status == "loaded"
    assert c.status == "loaded-after-fix" and c.output_diff is not None and c.output_diff["max_abs"] < 1e-6
    assert d == results[3]  # no outputs: untouched


def test_a_comparison_is_remembered_by_the_files_hashes(tmp_path, monkeypatch):
    """A re-run compares the same files again: the answer comes from the memo, no array is read;
    a changed file is read and compared anew."""
    import harness.outputs as outputs

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    ref, other = tmp_path / "ref.npz", tmp_path / "other.npz"
    np.savez(ref, np.zeros((1, 2)))
    np.savez(other, np.full((1, 2), 0.5))
    models = [{"name": "m.h5", "keras_version": "2.15.0"}]
    results = [
        CellResult("m.h5", "ref", "loaded", versions={"keras": "2.15.0"}, outputs=str(ref)),
        CellResult("m.h5", "x", "loaded", versions={"keras": "3.5.0"}, outputs=str(other)),
    ]
    first = compare_outputs(models, results, LoadOptions())
    assert first[1].status == MISMATCH and first[1].output_diff["max_abs"] == 0.5

    def unread(path):
        raise AssertionError(f"read {path} again")

    monkeypatch.setattr(outputs, "read_named", unread)
    assert compare_outputs(models, results, LoadOptions()) == first
    monkeypatch.undo()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    np.savez(other, np.zeros((1, 2)))  # the cell now answers as the reference
    again = compare_outputs(models, results, LoadOptions())
    assert again[1].status == "loaded" and again[1].output_diff["max_abs"] == 0.0
    assert compare_outputs(models, results, LoadOptions(atol=1.0))[1].status == "loaded"  # tolerances are part of the key


def test_outputs_are_compared_by_name_and_positions_only_against_a_positional_side(tmp_path):
    from harness.outputs import aligned, close, read_named

    a, b = np.array([1.0]), np.array([2.0, 3.0])
    assert close({"x": a, "y": b}, {"y": b, "x": a}, LoadOptions())  # order never assumed
    assert not close({"x": a, "y": b}, {"x": b, "y": a}, LoadOptions())
    assert aligned({"x": a, "y": b}, {"x": a, "z": b}) is None  # other names: not the same outputs
    assert differences({"x": a}, {"z": a})["max_abs"] is None
    # a Keras model's list against a serving signature's dict: by position, names in natural order
    assert close([a, b], {"output_2": b, "output_1": a}, LoadOptions())
    path = tmp_path / "ref.npz"
    np.savez(path, a, b)  # numpy's own arr_0, arr_1: a user's reference
    assert list(read_named(path)) == ["0", "1"] and close(read_named(path), [a, b], LoadOptions())


def test_a_jax_cell_that_answers_differently_from_tensorflow_is_a_mismatch_of_cause_backend(tmp_path):
    """Keras 3 on jax is compared with Keras 3 on tensorflow, the same release, the same batches."""

    def save(name: str, value: float) -> str:
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{"0": np.full((4, 2), value)})
        return str(path)

    models = [{"name": "m.keras", "keras_version": "3.9.0", "backend": "tensorflow"}]  # saved by a Keras no cell has
    versions = {"keras": "3.15.1"}
    results = [
        CellResult("m.keras", "tf", "loaded", versions={**versions, "keras-backend": "tensorflow"}, outputs=save("tf", 1.0)),
        CellResult("m.keras", "jax", "loaded", versions={**versions, "keras-backend": "jax"}, outputs=save("jax", 1.4)),
        CellResult("m.keras", "jax-close", "loaded", versions={**versions, "keras-backend": "jax"}, outputs=save("close", 1.0 + 1e-7)),
        CellResult("m.keras", "torch-other", "loaded", versions={"keras": "3.14.0", "keras-backend": "torch"}, outputs=save("t", 9.0)),
    ]
    tf, jax, close, other = compare_outputs(models, results, LoadOptions())
    assert tf.status == "loaded" and tf.output_diff is None
    assert (jax.status, jax.cause) == (MISMATCH, "backend") and abs(jax.output_diff["max_abs"] - 0.4) < 1e-9
    assert "loads on jax, answers differently from tensorflow in tf" in jax.detail
    assert "(not tried: a change to your model)" in jax.fix and "(proven: it loads in tf, this run" in jax.fix
    assert close.status == "loaded" and close.output_diff["backend"] == "tensorflow" and close.output_diff["reference"] == "tf"
    assert other.status == "loaded" and other.output_diff is None  # no tensorflow cell of its Keras release: nothing to compare with


def test_a_model_that_loads_but_did_not_run_on_the_input_says_so():
    """Keras 3.15.1 on torch before the probe detached its tensors (the real message): loaded, and the
    detail says nothing was compared instead of a silent "loads"."""
    from harness.diagnose import CellResult
    from harness.matrix import LoadOptions
    from harness.outputs import compare_outputs

    error = {"type": "RuntimeError", "message": "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."}
    r = CellResult("m.keras", "torch", "loaded", versions={"keras": "3.15.1", "keras-backend": "torch"}, inference={"ok": False, "error": error})
    [said] = compare_outputs([{"name": "m.keras"}], [r], LoadOptions(inference=True))
    assert said.status == "loaded" and said.detail.startswith("loads, but did not run on the input (RuntimeError: Can't call numpy()")
    from harness.report.summary import failure_text

    assert failure_text({"status": said.status, "detail": said.detail}).startswith("loads, but did not run on the input")  # report.md shows it
