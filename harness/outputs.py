"""Outputs compared: a cell that loads but answers differently is `loaded-output-mismatch`.

The probe saves each model's outputs (`load.inference: true`) as .npz; the reference is
the user's file (`load.reference`) or the outputs of the loaded cell whose Keras is the
one that saved the file. Arrays are read with allow_pickle=False: data, never code.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import memo
from .diagnose import CellResult
from .matrix import LoadOptions
from .outcomes import KERAS_BACKEND as BACKEND  # the backend a Keras 3 cell ran on, in its versions
from .outcomes import LOADS, MISMATCH, NOT_RUN
from .probe import natural_key
from .rules import telling_line

if TYPE_CHECKING:  # numpy is imported where arrays are read: a run without inference never needs it
    import numpy as np



MAX_OUTPUT_BYTES = 512 << 20  # a cell's saved outputs, uncompressed: they came from the cell, so they are bounded


Outputs = Mapping[str, "np.ndarray"] | Sequence["np.ndarray"]


def read_named(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy/.npz by name, in the file's order: the probe names them as the model
    returned them ("0", "1", a dict's keys, "0.a" nested); numpy's own arr_0, arr_1 (np.savez of
    positional arrays, a user's reference) read as "0", "1". A cell wrote them, so sizes are
    checked before numpy reads them."""
    import numpy as np

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            declared = sum(i.file_size for i in archive.infolist())
        if declared > MAX_OUTPUT_BYTES:
            raise ValueError(f"{Path(path).name}: outputs declare {declared} bytes, more than {MAX_OUTPUT_BYTES}")
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):  # a .npy: one output
        return {"0": data}
    with data:
        return {(k[4:] if k.startswith("arr_") and k[4:].isdigit() else k): data[k] for k in data.files}


def _named(outputs: Outputs) -> dict[str, np.ndarray]:
    return dict(outputs) if isinstance(outputs, Mapping) else {str(n): a for n, a in enumerate(outputs)}


def aligned(reference: Outputs, outputs: Outputs) -> list[tuple[str, np.ndarray, np.ndarray]] | None:
    """The outputs paired with the reference's: by name when both name the same outputs; by
    position (names in natural order) only when one side is positional ("0", "1", ...: a Keras
    model's list against a serving signature's dict); None when they cannot be paired."""
    ref, out = _named(reference), _named(outputs)
    if set(ref) == set(out):
        return [(k, ref[k], out[k]) for k in ref]
    positional = any(all(k.isdigit() for k in side) for side in (ref, out))
    if positional and len(ref) == len(out):
        return [
            (f"{a}~{b}" if a != b else a, ref[a], out[b])
            for a, b in zip(sorted(ref, key=natural_key), sorted(out, key=natural_key), strict=True)
        ]
    return None


def batch_rows(spec: Any) -> list[int] | None:
    """The rows of each batch the outputs were made on, from a result's "input" (the probe's spec:
    it came from a cell, so it is checked), or None (one batch: a user's --input)."""
    if not isinstance(spec, list) or not spec or not isinstance(spec[0], Mapping):
        return None
    batches = spec[0].get("batches")
    if not isinstance(batches, list) or not 1 < len(batches) <= 64:
        return None
    rows = [b.get("rows") if isinstance(b, Mapping) else None for b in batches]
    if not all(isinstance(r, int) and not isinstance(r, bool) and 0 < r <= 1 << 20 for r in rows):
        return None
    return [int(r) for r in rows if r is not None]


def differences(reference: Outputs, outputs: Outputs, rows: Sequence[int] | None = None) -> dict[str, Any]:
    """Largest absolute and relative difference over all outputs (or the names and shapes that
    differ); with the rows of each batch the outputs were made on, each batch's too ("batches")."""
    import numpy as np

    pairs = aligned(reference, outputs)
    if pairs is None or any(a.shape != b.shape for _, a, b in pairs):
        return {
            "shapes": {k: list(a.shape) for k, a in _named(outputs).items()},
            "reference_shapes": {k: list(a.shape) for k, a in _named(reference).items()},
            "max_abs": None,
            "max_rel": None,
        }

    def largest(chunks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
        max_abs = max_rel = 0.0
        for ref, out in chunks:
            delta = np.abs(out.astype("float64") - ref.astype("float64"))
            max_abs = max(max_abs, float(delta.max(initial=0.0)))
            scale = np.maximum(np.abs(ref.astype("float64")), 1e-12)
            max_rel = max(max_rel, float((delta / scale).max(initial=0.0)))
        return max_abs, max_rel

    max_abs, max_rel = largest([(a, b) for _, a, b in pairs])
    found: dict[str, Any] = {"max_abs": max_abs, "max_rel": max_rel}
    if rows and len(rows) > 1:
        cuts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in rows]
        for _, ref, out in pairs:
            if ref.ndim and ref.shape[0] == sum(rows):
                bounds = list(np.cumsum(rows)[:-1])
            elif ref.ndim and ref.shape[0] == len(rows):  # one value per batch (a scalar output)
                bounds = list(range(1, len(rows)))
            else:
                return found  # an output not made batch by batch: the whole is all there is
            for n, (r, o) in enumerate(zip(np.split(ref, bounds), np.split(out, bounds), strict=True)):
                cuts[n].append((r, o))
        found["batches"] = [dict(zip(("max_abs", "max_rel"), largest(c), strict=True), rows=r) for c, r in zip(cuts, rows, strict=True)]
    return found


def close(reference: Outputs, outputs: Outputs, load: LoadOptions) -> bool:
    """The same outputs (by name, aligned), the same shapes, each within load.atol / load.rtol of the reference."""
    import numpy as np

    pairs = aligned(reference, outputs)
    if pairs is None:
        return False
    return all(a.shape == b.shape and np.allclose(b, a, atol=load.atol, rtol=load.rtol) for _, a, b in pairs)


def compare_outputs(models: Sequence[Mapping[str, Any]], results: Sequence[CellResult], load: LoadOptions) -> list[CellResult]:
    """The results with `output_diff` set where outputs were saved, and those whose outputs
    differ from the reference turned into loaded-output-mismatch (new values, same order).

    Each comparison is remembered by the two files' hashes and the tolerances (memo.py), so a
    re-run whose results all come from the store neither imports numpy nor reads an array."""
    compared: dict[int, CellResult] = {}
    for model in models:
        saved = [(n, r) for n, r in enumerate(results) if r.model == model["name"] and r.outputs and Path(r.outputs).exists()]
        if not saved:
            continue
        reference = _reference(model, [r for _, r in saved], load)
        if reference is not None:
            for n, r in saved:
                compared[n] = _compared(r, reference, load)
            continue
        # No cell of the saving Keras: a config the harness repaired is still held to the original's
        # answers where the original loads as it is (a repair that loads but computes otherwise is no fix).
        original = next(((r.outputs, d) for _, r in saved if r.status == "loaded" and r.outputs and (d := _readable(r.outputs))), None)
        if original is None:
            continue
        for n, r in saved:
            if r.status == "loaded-after-fix" and "repaired config" in (r.fix_worked or "").split("+"):
                compared[n] = _repair_compared(r, original, load)
    _compare_backends(results, compared, load)
    for n, r in enumerate(results):
        ran = r.inference if isinstance(r.inference, Mapping) else None
        if r.status in LOADS and ran is not None and ran.get("ok") is False and not r.detail.startswith(NOT_RUN):
            # asked to answer and it did not: said, never a silent "loads" (nothing was compared)
            raised = ran.get("error")
            error: Mapping[str, Any] = raised if isinstance(raised, Mapping) else {}
            said = f"{str(error.get('type', 'error'))[:80]}: {telling_line(str(error.get('message', '')))}"
            before = compared.get(n, r)
            also = f"; {before.detail}" if before.detail else ""  # "loaded with compile=False" stays, after it
            compared[n] = replace(before, detail=f"{NOT_RUN} ({said}): its outputs are not compared{also}")
    return [compared.get(n, r) for n, r in enumerate(results)]


def _compare_backends(results: Sequence[CellResult], compared: dict[int, CellResult], load: LoadOptions) -> None:
    """Keras 3 on jax or torch answers as Keras 3 on tensorflow does, the same release, the same
    batches: a result of another backend is compared with the tensorflow cell of its Keras
    release (the same model) where there is one; differing is loaded-output-mismatch."""
    twins: dict[tuple[str, str], CellResult] = {}
    for r in results:
        if r.versions.get(BACKEND) == "tensorflow" and r.status in ("loaded", "loaded-after-fix") and r.outputs and Path(r.outputs).exists():
            twins.setdefault((r.model, r.versions.get("keras", "")), r)
    for n, r in enumerate(results):
        backend = r.versions.get(BACKEND)
        twin = twins.get((r.model, r.versions.get("keras", "")))
        if backend in (None, "tensorflow") or twin is None or r.status not in ("loaded", "loaded-after-fix") or not r.outputs:
            continue
        current = compared.get(n, r)
        if current.status == MISMATCH:
            continue  # already answers differently from the model's reference
        digest = _readable(twin.outputs or "")
        if digest is None or not Path(r.outputs).exists():
            continue
        found = _comparison((str(twin.outputs), digest), r.outputs, load)
        if "error" in found:
            compared[n] = replace(current, output_diff={"error": f"the outputs the cell sent cannot be read: {found['error']}"})
            continue
        diff = {"reference": twin.cell, "backend": "tensorflow", **found["diff"]}
        if found["close"]:
            if current.output_diff is None:
                compared[n] = replace(current, output_diff=diff)
            continue
        where = "shapes differ" if diff["max_abs"] is None else f"max abs diff {diff['max_abs']:.3g}, max rel diff {diff['max_rel']:.3g}"
        compared[n] = replace(
            current,
            output_diff=diff,
            status=MISMATCH,
            cause="backend",
            detail=f"loads on {backend}, answers differently from tensorflow in {twin.cell} ({where}; atol {load.atol}, rtol {load.rtol})",
            fix=f"the model computes differently on {backend}: look for a layer or op whose {backend} implementation differs "
            "(a custom layer written with tf.* rather than keras.ops, a dtype policy) (not tried: a change to your model), or load it "
            f"on the tensorflow backend (proven: it loads in {twin.cell}, this run, whose answers are the ones compared with)",
        )


def _repair_compared(r: CellResult, original: tuple[str, str], load: LoadOptions) -> CellResult:
    checked = _compared(r, original, load)
    if checked.status != MISMATCH:
        return checked
    return replace(
        checked,
        cause="version-mismatch",
        fix=f"the config repaired by the harness loads here but answers differently from the original in {Path(original[0]).stem} "
        "(the repair changed what the model computes): load the original there, or migrate it with `harness migrate`, which "
        "proves a file by its outputs",
    )


def _digest(path: str | Path, limit: int | None = MAX_OUTPUT_BYTES) -> str:
    """The file's sha256; a file larger than any outputs may be is refused unread (a cell wrote it;
    the user's own reference has no limit)."""
    size = Path(path).stat().st_size
    if limit is not None and size > limit:
        raise ValueError(f"{Path(path).name}: {size} bytes, more than {limit}")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _comparison(reference: tuple[str, str], outputs: str, load: LoadOptions) -> dict[str, Any]:
    """{"diff": ..., "close": bool}, or {"error": why the outputs cannot be read}; remembered by
    the reference's hash (taken once per model), the outputs' hash and the tolerances."""
    path, digest = reference
    try:
        parts = [digest, _digest(outputs), repr(load.atol), repr(load.rtol)]
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}

    def compute() -> dict[str, Any]:
        expected = read_named(path)
        try:
            got = read_named(outputs)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            return {"error": str(exc)}
        return {"diff": differences(expected, got), "close": close(expected, got, load)}

    return memo.remember("outputs", parts, ("outputs.py",), compute)


def _compared(r: CellResult, reference: tuple[str, str], load: LoadOptions) -> CellResult:
    label = reference[0]
    if r.outputs == label:
        return replace(r, output_diff={"reference": "this cell", "max_abs": 0.0, "max_rel": 0.0})
    assert r.outputs is not None
    found = _comparison(reference, r.outputs, load)
    if "error" in found:
        return replace(r, output_diff={"error": f"the outputs the cell sent cannot be read: {found['error']}"})
    diff = {"reference": Path(label).stem if label != str(load.reference) else str(load.reference), **found["diff"]}
    if found["close"]:
        return replace(r, output_diff=diff)
    where = "shapes differ" if diff["max_abs"] is None else f"max abs diff {diff['max_abs']:.3g}, max rel diff {diff['max_rel']:.3g}"
    return replace(
        r,
        output_diff=diff,
        status=MISMATCH,
        cause="version-mismatch",
        detail=f"loads, but its outputs differ from {diff['reference']} ({where}; atol {load.atol}, rtol {load.rtol})",
        fix="compare the layer configs between the two versions; pin the version that matches, or re-save the model with this one",
    )


def _readable(path: str, limit: int | None = MAX_OUTPUT_BYTES) -> str | None:
    """The sha256 of outputs numpy reads, or None (whether it reads them is remembered by that hash)."""

    def compute() -> bool:
        try:
            read_named(path)
        except (OSError, ValueError, zipfile.BadZipFile):
            return False
        return True

    try:
        digest = _digest(path, limit)
    except (OSError, ValueError):
        return None
    return digest if memo.remember("outputs-readable", [digest], ("outputs.py",), compute) else None


def _reference(model: Mapping[str, Any], results: Sequence[CellResult], load: LoadOptions) -> tuple[str, str] | None:
    """(path, sha256) of the reference outputs: the user's file, else the first loaded cell whose Keras saved the model."""
    if load.reference:
        path = str(load.reference)
        digest = _readable(path, limit=None)
        if digest is None:
            read_named(path)  # the user's file: unreadable is an error, said now (this raises it)
            digest = _digest(path, limit=None)
        return path, digest
    saved_by = model.get("keras_version")
    # of the cells whose Keras saved the file, the one on the backend it was saved on (a Keras 3 file
    # says which), else on tensorflow: a jax or torch cell is compared with it, never the reference
    wanted = (model.get("backend") or "tensorflow", "tensorflow", None)
    ranked = sorted(results, key=lambda r: wanted.index(r.versions.get(BACKEND)) if r.versions.get(BACKEND) in wanted else len(wanted))
    for r in ranked:
        saved_here = saved_by and saved_by in (r.versions.get("keras"), r.versions.get("tf-keras"))
        if r.status == "loaded" and r.outputs and saved_here and (digest := _readable(r.outputs)):
            return r.outputs, digest
    return None
