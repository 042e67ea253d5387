from __future__ import annotations

import numpy as np

from harness.matrix import LoadOptions
from harness.outputs import MISMATCH, compare_outputs, differences


def test_differences_report_largest_absolute_and_relative():
    ref = [np.array([[1.0, 2.0]]), np.array([4.0])]
    got = differences(ref, [np.array([[1.0, 2.5]]), np.array([4.0])])
    assert got == {"max_abs": 0.5, "max_rel": 0.25}
    assert differences(ref, [np.array([1.0])])["max_abs"] is None  # shapes differ


def test_compare_uses_the_saved_by_cell_and_marks_the_others(tmp_path):
    def save(name: str, value: float) -> str:
        path = tmp_path / f"{name}.npz"
        np.savez(path, np.full((1, 2), value))
        return str(path)

    doc = {
        "models": [{"name": "m.h5", "keras_version": "2.15.0"}],
        "results": [
            {"model": "m.h5", "cell": "a", "status": "loaded", "versions": {"keras": "3.5.0"}, "outputs": save("a", 1.2)},
            {"model": "m.h5", "cell": "b", "status": "loaded", "versions": {"keras": "2.15.0"}, "outputs": save("b", 1.0)},
            {"model": "m.h5", "cell": "c", "status": "loaded-after-fix", "versions": {"keras": "2.15.0"}, "outputs": save("c", 1.0 + 1e-7)},
        ],
    }
    assert compare_outputs(doc, LoadOptions()) == 1
    a, b, c = doc["results"]
    assert a["status"] == MISMATCH and a["output_diff"]["reference"] == "b" and abs(a["output_diff"]["max_abs"] - 0.2) < 1e-9
    assert b["output_diff"]["reference"] == "this cell" and b["status"] == "loaded"
    assert c["status"] == "loaded-after-fix"
