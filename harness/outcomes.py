"""The outcome taxonomy (DESIGN.md): every status a result can have, in report order, and every cause."""

from __future__ import annotations

from typing import Literal, get_args

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
STATUSES: tuple[Status, ...] = get_args(Status)  # in report order
CAUSES: tuple[Cause, ...] = get_args(Cause)
FAILED: tuple[Status, ...] = ("loaded-output-mismatch", "load-error", "import-error", "timeout", "crash")
LOADS: tuple[Status, ...] = ("loaded", "loaded-after-fix")
NOT_TRIED: tuple[Status, ...] = ("unresolvable", "skipped", "infra-error")
