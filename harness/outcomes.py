"""The outcome taxonomy (DESIGN.md): every status a result can have, in report order, and every cause."""

from __future__ import annotations

from typing import Any, Literal, get_args

Status = Literal[
    "loaded",
    "loaded-after-fix",
    "loaded-output-mismatch",
    "load-error",
    "import-error",
    "unresolvable",
    "skipped",
    "timeout",
    "crash",
    "infra-error",
]
Cause = Literal[
    "custom-object",
    "missing-dependency",
    "version-mismatch",
    "corrupt-file",
    "not-a-model",  # weights, a checkpoint or a graph-only SavedModel: no release's load_model rebuilds a Keras model from it
    "safe-mode",  # Keras refused to run the file's code or open what it points to, by design
    "backend",  # Keras 3 on jax or torch: TensorFlow-only content, or an answer that differs from the tensorflow backend's
    "environment",
    "unknown",
]
KERAS_BACKEND = "keras-backend"  # in a result's versions: the backend Keras 3 ran on (tensorflow, jax, torch)
STATUSES: tuple[Status, ...] = get_args(Status)  # in report order
CAUSES: tuple[Cause, ...] = get_args(Cause)
FAILED: tuple[Status, ...] = ("loaded-output-mismatch", "load-error", "import-error", "timeout", "crash")
LOADS: tuple[Status, ...] = ("loaded", "loaded-after-fix")
MISMATCH: Status = "loaded-output-mismatch"  # loads, answers otherwise than its reference
NOT_TRIED: tuple[Status, ...] = ("unresolvable", "skipped", "infra-error")

STATIC_CAUSES = ("corrupt-file",)  # decided from the file before any cell: says nothing about an environment


def broken_environments(results: list[dict[str, Any]] | tuple[Any, ...]) -> set[str]:
    """Cells where the framework never imported: every result that ran there is import-error
    (results decided from the file alone, a corrupt one, do not count either way)."""
    seen: dict[str, list[str]] = {}
    for r in results:
        if r.get("cause") in STATIC_CAUSES and r.get("status") != "import-error":
            continue
        seen.setdefault(str(r.get("cell")), []).append(str(r.get("status")))
    return {cell for cell, statuses in seen.items() if statuses and all(s == "import-error" for s in statuses)}

# A loaded model's detail when inference was asked for and it did not answer (outputs.compare_outputs);
# the reports show it where a failure's exception would be.
NOT_RUN = "loads, but did not run on the input"
