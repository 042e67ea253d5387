"""One schema for every document the harness reads back: a results.json (a run's, a shard's,
a merge's), a baseline, a result kept in the store.

Such a document may come from someone else's CI artifact, so it is data, never
instructions: it is read bounded (a regular file, a size cap, nesting that JSON's own
recursion guard stops), then checked field by field against what the harness writes
(types, string lengths, counts, enums, the shape of ids and versions) and copied into a
new document that holds only the known fields. Whatever fails is a one-line error naming
the file and the field: `results.json: results[3].status: 'pwned' is not a status (...)`.
Text is cleaned on the way in (lone surrogates made U+FFFD), so no report writer meets
text it cannot encode.

What the checks do not make safe, each use still does: a model name becomes a file name
only through paths.name_part, and no path, template, index URL or Dockerfile text is ever
taken from a document (merge, repro and report ignore such fields).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .diagnose import CAUSES, STATUSES
from .errors import UsageError
from .escape import clean

SCHEMA = "harness-results"
SCHEMA_VERSION = 1
BASELINE_SCHEMA = "harness-baseline"
MAX_DOCUMENT_BYTES = int(os.environ.get("HARNESS_MAX_DOCUMENT_BYTES", 1 << 30))
MAX_TEXT = 1 << 20  # a message, a stderr tail, a build log's tail
MAX_NAME = 1024  # a model name, a class name, a path shown
MAX_LIST = 2_000_000  # results of a big matrix: 100,000 cells x 20 models
MAX_SMALL = 100_000  # classes of a model, lock lines, frames
MAX_JSON_DEPTH = 12  # free-form values (a loss config, an inference summary)

CELL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!=-]{0,511}")
PYTHON = re.compile(r"\d{1,2}\.\d{1,3}(\.\d{1,4})?")
PACKAGE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,99}")
# A lock line as the harness keeps it: name==version (extras allowed); never an option, a URL or a marker.
LOCK_LINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
BACKEND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# A Docker image reference (registry/name:tag@digest), with `{python}` where the cell's Python goes: no space, no newline.
IMAGE = re.compile(r"(?:[A-Za-z0-9]|\{python\})(?:[A-Za-z0-9._/:@-]|\{python\}){0,255}")
SIZE = re.compile(r"\d{1,12}(\.\d{1,6})?[kmgtKMGT]?[iI]?[bB]?")


class DocumentError(ValueError):
    """A field that is not what the harness writes: where it is and what is wrong."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


Check = Callable[[Any, str], Any]


def described(check: Check, schema: dict[str, Any]) -> Check:
    """The check, carrying the JSON Schema of what it accepts (json_schema() collects them)."""
    check.json_schema = schema  # type: ignore[attr-defined]
    return check


def json_schema(check: Check) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of what `check` accepts: the same rules the harness reads
    documents by, for consumers who validate results.json with their own tools. A check the
    schema cannot say more about (free-form values) is `{}`."""
    return dict(getattr(check, "json_schema", {}))


def _regex(pattern: re.Pattern[str]) -> str:
    return f"^(?:{pattern.pattern})$"  # fullmatch, as the checks use it


# --------------------------------------------------------------------------- reading


def read_document(path: Path, what: str, how_to_make: str) -> Any:
    """The JSON in `path`, read bounded: a regular file under the size cap, UTF-8, nesting
    within the parser's recursion guard; else a one-line error that says how to get one."""
    from .modelfile import regular_file

    try:
        regular_file(path, what, MAX_DOCUMENT_BYTES)
    except UsageError as exc:
        raise UsageError(f"{exc} ({how_to_make})") from None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what} ({exc.strerror}); {how_to_make}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a {what} (not UTF-8 at byte {exc.start}); {how_to_make}") from None
    except RecursionError:
        raise UsageError(f"{path}: not a {what} (JSON nested deeper than any the harness writes); {how_to_make}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a readable {what} ({exc}); {how_to_make}") from None


# --------------------------------------------------------------------------- checks


def text(limit: int = MAX_TEXT, pattern: re.Pattern[str] | None = None, shape: str = "") -> Check:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise DocumentError(where, f"expected text, found {_kind(value)}")
        if len(value) > limit:
            raise DocumentError(where, f"{len(value)} characters, longer than any the harness writes ({limit})")
        if pattern is not None and not pattern.fullmatch(value):
            raise DocumentError(where, f"{_shown(value)} is not {shape or 'of the expected shape'}")
        return clean(value)

    return described(check, {"type": "string", "maxLength": limit, **({"pattern": _regex(pattern)} if pattern else {})})


def name(value: Any, where: str) -> str:
    """A model's name: one path component (it becomes a folder name for outputs)."""
    from .paths import name_part

    checked = text(MAX_NAME)(value, where)
    try:
        return name_part(checked, "model name")
    except UsageError as exc:
        raise DocumentError(where, str(exc)) from None


def integer(low: int | None = None, high: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DocumentError(where, f"expected a whole number, found {_kind(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise DocumentError(where, f"{value} is outside {low if low is not None else '-inf'}..{high if high is not None else 'inf'}")
        return value

    bounds = {**({"minimum": low} if low is not None else {}), **({"maximum": high} if high is not None else {})}
    return described(check, {"type": "integer", **bounds})


def number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DocumentError(where, f"expected a number, found {_kind(value)}")
    if isinstance(value, int) and abs(value) > 1 << 63:
        raise DocumentError(where, "a number larger than any the harness writes")
    return value


def finite(value: Any, where: str) -> float | int:
    checked = number(value, where)
    if not math.isfinite(checked):
        raise DocumentError(where, f"{checked} is not a finite number")
    return checked


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise DocumentError(where, f"expected true or false, found {_kind(value)}")
    return value


described(name, {"type": "string", "maxLength": MAX_NAME, "description": "one path component"})
described(number, {"type": "number"})
described(finite, {"type": "number"})
described(boolean, {"type": "boolean"})


def choice(values: tuple[str, ...], what: str) -> Check:
    def check(value: Any, where: str) -> str:
        if value not in values or not isinstance(value, str):
            raise DocumentError(where, f"{_shown(value)} is not {what} (known: {', '.join(values)})")
        return value

    return described(check, {"enum": list(values)})


def nullable(inner: Check) -> Check:
    def check(value: Any, where: str) -> Any:
        return None if value is None else inner(value, where)

    return described(check, {"anyOf": [{"type": "null"}, json_schema(inner)]})


def array(item: Check, limit: int = MAX_SMALL) -> Check:
    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise DocumentError(where, f"expected a list, found {_kind(value)}")
        if len(value) > limit:
            raise DocumentError(where, f"{len(value)} items, more than any the harness writes ({limit})")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    return described(check, {"type": "array", "maxItems": limit, "items": json_schema(item)})


def mapping(value_check: Check, key: Check | None = None, limit: int = MAX_SMALL) -> Check:
    key_check = key or text(MAX_NAME)

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DocumentError(where, f"expected an object, found {_kind(value)}")
        if len(value) > limit:
            raise DocumentError(where, f"{len(value)} entries, more than any the harness writes ({limit})")
        return {key_check(k, f"{where} (a key)"): value_check(v, f"{where}.{_label(k)}") for k, v in value.items()}

    return described(
        check,
        {"type": "object", "maxProperties": limit, "propertyNames": json_schema(key_check), "additionalProperties": json_schema(value_check)},
    )


def record(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object of known fields: each checked, unknown ones left out of the copy."""

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DocumentError(where, f"expected an object, found {_kind(value)}")
        for field in required:
            if field not in value:
                raise DocumentError(where, f"no '{field}'")
        return {k: fields[k](v, f"{where}.{k}" if where else k) for k, v in value.items() if k in fields}

    # unknown fields are allowed (a newer harness may write more) and left out of what is read
    return described(check, {"type": "object", "properties": {k: json_schema(c) for k, c in fields.items()}, "required": list(required)})


def free(value: Any, where: str, depth: int = 0) -> Any:
    """A free-form JSON value (a compiled loss, an inference summary): bounded in depth and size."""
    if depth > MAX_JSON_DEPTH:
        raise DocumentError(where, f"nested deeper than {MAX_JSON_DEPTH}")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return number(value, where)
    if isinstance(value, str):
        return text()(value, where)
    if isinstance(value, list):
        array(lambda v, w: v, MAX_SMALL)(value, where)
        return [free(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        mapping(lambda v, w: v)(value, where)
        return {clean(str(k))[:MAX_NAME]: free(v, f"{where}.{_label(k)}", depth + 1) for k, v in value.items()}
    raise DocumentError(where, f"unexpected {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    from .escape import visible

    shown = repr(visible(value)) if isinstance(value, str) else _kind(value)
    return shown if len(shown) <= 60 else shown[:57] + "...'"


def _label(key: Any) -> str:
    from .escape import visible

    shown = visible(str(key))
    return shown if len(shown) <= 40 else shown[:37] + "..."


# --------------------------------------------------------------------------- the results document

TEXT = text()
SHORT = text(MAX_NAME)
STATUS = choice(tuple(STATUSES), "a status")
CAUSE = nullable(choice(tuple(CAUSES), "a cause"))
CELL = text(512, CELL_ID, "a cell id")
TEXTS = array(TEXT)
SHORTS = array(SHORT)
NUMBER_OR_NULL = nullable(number)

SHARD = nullable(record({"index": integer(1, 100_000), "count": integer(1, 100_000)}, ("index", "count")))
DOCKER = record(
    {
        "template": SHORT,
        "base_image": text(300, IMAGE, "an image reference"),
        "memory": text(64, SIZE, "a size (4g, 512m)"),
        "cpus": finite,
        "pids": integer(1, 1 << 22),
    }
)
RUN = record(
    {
        "started": nullable(text(64)),
        "finished": nullable(text(64)),
        "complete": boolean,
        "interrupted": boolean,
        "backend": text(32, BACKEND, "a backend name"),
        "sandbox": nullable(text(32, BACKEND, "a sandbox name")),
        "sandbox_note": nullable(TEXT),
        "docker": nullable(DOCKER),
        "jobs": nullable(integer(0, 1 << 20)),
        "shard": SHARD,
        "fail_on": nullable(choice(("regression", "any", "attribute-error", "none"), "a --fail-on value")),
        "fail_on_given": boolean,
        "try_fixes": boolean,
        "baseline": nullable(SHORT),
        "store_run": nullable(integer(0)),
        "merged_from": array(
            record({"results": SHORT, "shard": SHARD, "started": nullable(text(64)), "complete": nullable(boolean)}), 100_000
        ),
        "missing_shards": array(integer(1, 100_000), 100_000),
    }
)
LOAD = record(
    {
        "custom_objects": nullable(SHORT),
        "compile": boolean,
        "inference": boolean,
        "timeout": finite,
        "fixes": boolean,
        "try_fixes": boolean,
        "input": nullable(SHORT),
        "reference": nullable(SHORT),
        "atol": finite,
        "rtol": finite,
        "trusted": boolean,
        "export": boolean,
        "save_as": nullable(choice(("keras", "h5"), "a save format")),
        "resave": SHORTS,
        "rescue": SHORTS,
        "repairs": boolean,
    }
)
MATRIX = record(
    {
        "name": SHORT,
        "path": nullable(SHORT),
        "axes": array(text(200)),
        "packages": mapping(text(200), text(200)),
        "load": LOAD,
    },
    ("name",),
)
CLASS = record(
    {"name": SHORT, "kind": choice(("builtin", "custom", "addons", "lambda"), "a class kind"), "where": SHORT, "module": nullable(SHORT)},
    ("name", "kind"),
)
FORMAT = choice(("h5", "keras", "keras-dir", "savedmodel", "weights-json", "tf-checkpoint", "orbax"), "a model format")
# What inspection finds in a model file: what the sandbox's reader answers (modelread.read), checked
# before it is believed (READER_ANSWER), and the facts of a document's models beside their identity.
FACTS = {
    "format": FORMAT,
    "keras_version": nullable(text(100)),
    "backend": nullable(text(100)),
    "classes": array(CLASS),
    "loss": free,
    "metrics": free,
    "optimizer": nullable(SHORT),
    "problems": array(TEXT, 1000),
    "risks": array(TEXT, 1000),
    "doubts": array(TEXT, 1000),
    "unread": array(TEXT, 1000),
    "code": integer(0),
    "kind": choice(("model", "weights", "checkpoint"), "a file kind"),
}
READER_ANSWER = record(FACTS, ("format",))
MODEL = record(
    {
        "name": name,
        "path": SHORT,
        "sha256": text(64, SHA256, "a sha256"),
        "size": integer(0),
        **FACTS,
        "custom": SHORTS,
        "addons": SHORTS,
        "lambdas": integer(0),
        "carries_code": boolean,
    },
    ("name", "sha256"),
)
PINS = mapping(nullable(text(100, VERSION, "a version")), text(200, PACKAGE, "a package name"))
CELL_RECORD = record(
    {
        "id": CELL,
        "python": text(16, PYTHON, "a Python version"),
        "pins": PINS,
        "requested": mapping(nullable(text(200)), text(200, PACKAGE, "a package name")),
        "install": mapping(text(200, PACKAGE, "a package name"), text(200, PACKAGE, "a package name")),
        "env": mapping(text(4096), text(128, ENV_NAME, "an environment variable name")),
        "api": choice(("tf.keras", "keras", "tf_keras"), "a loading API"),
        "overridden": boolean,
        "env_key": nullable(text(64, KEY, "an environment key")),
        "lock": nullable(array(text(400, LOCK_LINE, "a lock line (name==version)"))),
        "position": nullable(integer(0)),
        "new": boolean,
        "new_versions": mapping(text(100)),
    },
    ("id",),
)
ENVIRONMENT = record({"key": text(64, KEY, "an environment key"), "python": text(16, PYTHON, "a Python version"), "cells": array(CELL)})
EXCEPTION = record(
    {
        "type": nullable(SHORT),
        "module": nullable(SHORT),
        "message": nullable(TEXT),
        "attribute": nullable(SHORT),
        "missing": nullable(SHORT),
        "chain": array(record({"type": nullable(SHORT), "message": nullable(TEXT)}), 1000),
        "frames": array(
            record({"file": nullable(SHORT), "line": nullable(integer()), "function": nullable(SHORT), "code": nullable(TEXT)}), 1000
        ),
    }
)
ATTEMPT = record(
    {
        "fix": nullable(SHORT),
        "ok": boolean,
        "standin": boolean,
        "serving": boolean,
        "exception": nullable(SHORT),
        "message": nullable(TEXT),
        "attribute_error": boolean,
    }
)
RECIPE = record(
    {
        "environment": nullable(
            record(
                {
                    "cell": nullable(CELL),
                    "python": nullable(text(16, PYTHON, "a Python version")),
                    "pins": PINS,
                    "env": mapping(text(4096), text(128, ENV_NAME, "an environment variable name")),
                    "api": nullable(choice(("tf.keras", "keras", "tf_keras"), "a loading API")),
                }
            )
        ),
        "load": record(
            {
                "compile": nullable(boolean),
                "safe_mode": nullable(boolean),
                "custom_objects": nullable(SHORTS),
                "file_name": nullable(SHORT),
                "repairs": SHORTS,
            }
        ),
        "proven": boolean,
        "where": nullable(CELL),
        "why": nullable(TEXT),
    },
    ("proven",),
)
OUTPUT_DIFF = record(
    {
        "reference": nullable(SHORT),
        "backend": nullable(choice(("tensorflow", "jax", "torch"), "a Keras backend")),
        "max_abs": NUMBER_OR_NULL,
        "max_rel": NUMBER_OR_NULL,
        "error": nullable(TEXT),
        "shapes": free,
        "batches": array(record({"rows": integer(0), "max_abs": NUMBER_OR_NULL, "max_rel": NUMBER_OR_NULL}), 64),
    }
)
RESULT = record(
    {
        "model": name,
        "cell": CELL,
        "status": STATUS,
        "cause": CAUSE,
        "exception": nullable(EXCEPTION),
        "attribute_error": boolean,
        "attribute": nullable(SHORT),
        "missing_name": nullable(SHORT),
        "fix": nullable(TEXT),
        "fix_worked": nullable(SHORT),
        "fixes_tried": SHORTS,
        "attempts": array(ATTEMPT, 1000),
        "recipe": nullable(RECIPE),
        "detail": TEXT,
        "versions": mapping(text(200)),
        "plugins": array(free, 1000),
        "inference": free,
        "seconds": NUMBER_OR_NULL,
        "import_seconds": NUMBER_OR_NULL,
        "load_seconds": NUMBER_OR_NULL,
        "peak_rss_mb": NUMBER_OR_NULL,
        "outputs": nullable(SHORT),
        "files": mapping(SHORT, choice(("architecture", "weights", "weights3", "rebuilt", "rebuilt_h5", "input", "serving"), "a file role")),
        "output_diff": nullable(OUTPUT_DIFF),
        "stderr_tail": TEXT,
        "cached": boolean,
        "worker": nullable(SHORT),
        "sandbox": nullable(text(32, BACKEND, "a sandbox name")),
        "carries_code": boolean,
    },
    ("model", "cell", "status"),
)
OUTCOME = record({"status": STATUS, "exception": nullable(SHORT), "cause": CAUSE}, ("status",))
# A stored result as history, diff and --last-failed read it: its outcome only (a tenth of RESULT's checks).
OUTCOME_ROW = record(
    {"model": name, "cell": CELL, "status": STATUS, "cause": CAUSE, "exception": nullable(record({"type": nullable(SHORT)}))},
    ("model", "cell", "status"),
)
HISTORY = record(
    {
        "compared_with": nullable(TEXT),
        "new_releases": mapping(array(text(100))),
        "runs": array(record({"id": integer(0), "started": nullable(text(64)), "repeats": integer(0)}, ("id",))),
        "trend": mapping(mapping(array(nullable(record({"status": STATUS, "exception": nullable(SHORT)}, ("status",))), 10_000), CELL)),
    }
)
REGRESSION = record(
    {"model": name, "cell": CELL, "status": STATUS, "exception": nullable(SHORT), "cause": CAUSE, "why": TEXT}, ("model", "cell", "status")
)
GATE = record(
    {
        "fail_on": choice(("regression", "any", "attribute-error", "none"), "a --fail-on value"),
        "reference": nullable(SHORT),
        "regressions": array(REGRESSION, MAX_LIST),
        "failures": integer(0),
        "attribute_errors": integer(0),
        "failed": boolean,
        "untested": boolean,
        "not_tested": array(CELL, MAX_LIST),
        "reason": TEXT,
        "given": boolean,
    },
    ("fail_on",),
)
CROSSLOAD = record({"build": SHORT, "saved": array(record({"cell": CELL, "ok": boolean, "files": SHORTS, "detail": TEXT}, ("cell", "ok")))})
RESULTS = record(
    {
        "schema": choice((SCHEMA,), "the results schema"),
        "schema_version": integer(0),
        "harness_version": nullable(text(100)),
        "probe_version": nullable(integer(0)),
        "run": RUN,
        "matrix": MATRIX,
        "models": array(MODEL, MAX_SMALL),
        "cells": array(CELL_RECORD, MAX_LIST),
        "environments": array(ENVIRONMENT, MAX_LIST),
        "history": HISTORY,
        "gate": nullable(GATE),
        "results": array(RESULT, MAX_LIST),
        "crossload": CROSSLOAD,
    },
    ("schema", "schema_version", "run", "matrix", "models", "cells", "results"),
)
BASELINE = record(
    {
        "schema": choice((BASELINE_SCHEMA,), "the baseline schema"),
        "schema_version": integer(0),
        "matrix": nullable(SHORT),
        "written": nullable(text(64)),
        "from_run": nullable(text(64)),
        "models": mapping(nullable(text(64, SHA256, "a sha256")), name),
        "cells": mapping(PINS, CELL),
        "accepted": mapping(mapping(OUTCOME, CELL, MAX_LIST), name),
    },
    ("schema", "accepted"),
)


def check_results(doc: Any) -> dict[str, Any]:
    """A results document as the harness writes it, or DocumentError naming the first field that is not."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise DocumentError("", f'not a harness results file (no "schema": "{SCHEMA}")')
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise DocumentError("schema_version", f"{version} is newer than this harness reads ({SCHEMA_VERSION}); upgrade harness")
    checked: dict[str, Any] = RESULTS(doc, "")
    models = [m["name"] for m in checked["models"]]
    _unique(models, "models", "model name")
    cells = [c["id"] for c in checked["cells"]]
    _unique(cells, "cells", "cell id")
    known_models, known_cells = set(models), set(cells)
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(checked["results"]):
        if r["model"] not in known_models:
            raise DocumentError(f"results[{i}].model", f"{_shown(r['model'])} is not one of the document's models")
        if r["cell"] not in known_cells:
            raise DocumentError(f"results[{i}].cell", f"{_shown(r['cell'])} is not one of the document's cells")
        if (r["model"], r["cell"]) in seen:
            raise DocumentError(f"results[{i}]", f"a second result for {_shown(r['model'])} in {r['cell']}")
        seen.add((r["model"], r["cell"]))
    return checked


def check_result(data: Any, where: str = "result") -> dict[str, Any]:
    """One result record (a row of the store, a result a cluster worker sent back)."""
    checked: dict[str, Any] = RESULT(data, where)
    return checked


def check_baseline(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        raise DocumentError("", f'not a harness baseline (no "schema": "{BASELINE_SCHEMA}"); `harness baseline` writes one')
    checked: dict[str, Any] = BASELINE(doc, "")
    return checked


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise DocumentError(f"{where}[{i}]", f"the {what} {_shown(value)} twice")
        seen.add(value)


def load_results(path: str | Path) -> dict[str, Any]:
    """A results.json, read bounded and checked (check_results), or a one-line UsageError."""
    path = Path(path)
    doc = read_document(path, "results file", "harness run writes OUTDIR/results.json")
    try:
        return check_results(doc)
    except DocumentError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_baseline(path: Path) -> dict[str, Any]:
    doc = read_document(path, "baseline file", f"`harness baseline RESULTS.json -o {path}` writes one")
    try:
        return check_baseline(doc)
    except DocumentError as exc:
        raise UsageError(f"{path}: {exc}") from None


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (`harness schema`, and harness/results.schema.json)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://harness.invalid/schema/{SCHEMA}/{SCHEMA_VERSION}",
        "title": "harness results.json",
        "description": "What `harness run` and `harness merge` write; the harness reads documents by the same rules (schema.py).",
        **json_schema(RESULTS),
    }
