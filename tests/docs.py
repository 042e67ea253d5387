"""Results documents made up for the report tests, shaped as `harness run` writes them."""

from __future__ import annotations

from typing import Any

from harness.diagnose import STATUSES


def synthetic_doc(tf_releases: int, numpy_releases: int, protobuf_releases: int = 1, models: int = 1) -> dict[str, Any]:
    """A matrix of tensorflow x numpy x protobuf cells (numpy and protobuf vary within every
    TensorFlow row, so they name columns) plus a tf-keras companion column, with every
    status of the taxonomy among the results, in turn."""
    cells = []
    for t in range(tf_releases):
        tf = f"2.{12 + t}.0"
        for n in range(numpy_releases):
            for p in range(protobuf_releases):
                pins = {"tensorflow": tf, "numpy": f"1.{20 + n}.0", "protobuf": f"4.{21 + p}.0"}
                cells.append({"id": f"py3.11-tensorflow{tf}-numpy{pins['numpy']}-protobuf{pins['protobuf']}", "pins": pins})
        cells.append({"id": f"py3.11-tensorflow{tf}-tf-keras{tf}", "pins": {"tensorflow": tf, "tf-keras": tf}})
    for c in cells:
        c.update(python="3.11", env={}, api="tf.keras")
    names = [f"model{m:02d}.h5" for m in range(models)]
    results = []
    for n, (model, cell) in enumerate((m, c) for m in names for c in cells):
        status = STATUSES[n % len(STATUSES)]
        failed = status not in ("loaded", "loaded-after-fix", "skipped")
        results.append(
            {
                "model": model,
                "cell": cell["id"],
                "status": status,
                "cause": "custom-object-not-registered" if status == "load-error" else "environment" if failed else None,
                "exception": {"type": "ValueError", "message": "Unknown layer: 'ResidualBlock' </script><b>x</b>"} if failed else None,
                "attribute_error": status == "import-error",
                "attribute": None,
                "missing_name": None,
                "fix": "pass custom_objects={'ResidualBlock': ResidualBlock}" if failed else None,
                "fix_worked": "custom_objects" if status == "loaded-after-fix" else None,
                "fixes_tried": [],
                "detail": "",
                "versions": {"tensorflow-cpu": cell["pins"]["tensorflow"]},
                "seconds": 1.5,
                "stderr_tail": "",
            }
        )
    return {
        "schema": "harness-results",
        "schema_version": 1,
        "harness_version": "test",
        "matrix": {"name": "synthetic", "load": {}},
        "run": {"backend": "uv", "sandbox": "bwrap", "started": "2026-11-26T00:00:00", "finished": "", "complete": True},
        "cells": cells,
        "models": [{"name": m, "sha256": "a" * 64, "format": "h5", "keras_version": "2.15.0"} for m in names],
        "results": results,
    }
