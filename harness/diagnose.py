"""What the probe saw -> status, cause and fix. Pure: data in, a CellResult out.

The rules read what real releases raise (see tests/test_diagnose.py for the messages,
captured from TensorFlow 2.14-2.21): a custom layer missing is `ValueError: Unknown
layer` in Keras 2 and in Keras 3's legacy H5 loader, `TypeError: Could not locate class`
in Keras 3's own format; numpy 2 under a TensorFlow built for numpy 1 prints
`AttributeError: _ARRAY_API not found` and then fails with another exception, and that
printed AttributeError still counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .matrix import Cell
from .modelfile import ModelInfo, partial_note
from .outcomes import CAUSES, FAILED, KERAS_BACKEND, LOADS, NOT_TRIED, STATUSES, Cause, Status
from .probe import RESCUES, blocker
from .rules import (
    _NUMPY_ABI,
    _PROTOBUF,
    _STDERR_ATTRIBUTE,
    Seen,
    _attribute,
    _attribute_from_text,
    _env_keras_major,
    _errors,
    _messages,
    _numpy_fix,
    _tf_version,
    _unknown_name,
    first_line,
    legacy_advice,
    load_cause,
    off_tensorflow,
    options,
    serving_answered,
    standin_loaded,
    telling_line,
    with_serving,
)

__all__ = [
    "CAUSES",
    "FAILED",
    "LOADS",
    "NOT_TRIED",
    "STATUSES",
    "Cause",
    "CellResult",
    "ProbeOutcome",
    "Status",
    "diagnose",
    "first_line",
    "options",
]


def exception_type(record: Mapping[str, Any] | None) -> str | None:
    """The exception type of a result record (results.json, the store), if it has one."""
    return ((record or {}).get("exception") or {}).get("type")


@dataclass(frozen=True)
class CellResult:
    model: str
    cell: str
    status: Status
    cause: Cause | None = None
    exception: Mapping[str, Any] | None = None  # type, module, message, attribute, chain, frames
    attribute_error: bool = False  # an AttributeError was raised or printed on the way
    attribute: str | None = None  # the missing attribute's name
    missing_name: str | None = None  # the custom object / module the environment lacks
    fix: str | None = None  # one line a user can act on
    fix_worked: str | None = None  # the fix the harness tried and that loaded the model
    fixes_tried: tuple[str, ...] = ()
    attempts: tuple[Mapping[str, Any], ...] = ()  # every load attempt: fix, ok, exception type and first line
    recipe: Mapping[str, Any] | None = None  # how to make it load, as data (recipes.py): proven, or why not tried
    detail: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    plugins: tuple[Mapping[str, Any], ...] = ()
    inference: Mapping[str, Any] | None = None
    seconds: float | None = None
    import_seconds: float | None = None
    load_seconds: float | None = None  # this model's own load attempts (the cell's probe ran every model: `seconds`)
    peak_rss_mb: float | None = None  # of the process that loaded the model
    outputs: str | None = None  # the saved outputs (.npz), with load.inference
    files: Mapping[str, str] = field(default_factory=dict)  # harness migrate: role -> where the harness wrote what the cell sent
    output_diff: Mapping[str, Any] | None = None
    stderr_tail: str = ""
    cached: bool = False
    worker: str | None = None  # host/pid of the cluster worker that ran it (--executor ray)
    sandbox: str | None = None  # what contained the probe: bwrap, docker, none
    carries_code: bool = False  # the file carries code that runs when it loads: its outcome is what that code allowed

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def to_dict(self) -> dict[str, Any]:
        """A plain copy (what asdict gives, at a fraction of its cost: a re-run writes every result)."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellResult:
        """A result read back (the store, a cluster worker, a shard's results.json): its
        status and cause must be ones this harness knows, or the reports would misfile it."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("status") not in STATUSES:
            raise ValueError(f"unknown status {known.get('status')!r} (known: {', '.join(STATUSES)})")
        if known.get("cause") is not None and known["cause"] not in CAUSES:
            raise ValueError(f"unknown cause {known['cause']!r} (known: {', '.join(CAUSES)})")
        for key in ("fixes_tried", "plugins", "attempts"):
            known[key] = tuple(known.get(key) or ())
        return cls(**known)


def _plain(value: Any) -> Any:
    """Containers copied all the way down, as dataclasses.asdict copies them."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


@dataclass(frozen=True)
class ProbeOutcome:
    """What came back from one run of the probe: its JSON (or None) and the process."""

    result: Mapping[str, Any] | None
    returncode: int = 0
    stderr: str = ""
    timed_out: bool = False
    seconds: float = 0.0


def diagnose(cell: Cell, info: ModelInfo, model_key: str, outcome: ProbeOutcome) -> CellResult:
    result = outcome.result
    own = ((result or {}).get("models") or {}).get(model_key)
    # the model's own output where the probe kept it apart (each load in its own fork), else the cell's
    stderr = own["stderr"] if isinstance(own, dict) and isinstance(own.get("stderr"), str) else outcome.stderr
    base: dict[str, Any] = {"model": info.name, "cell": cell.id, "stderr_tail": _tail(stderr), "seconds": round(outcome.seconds, 3)}
    printed = _printed_attribute_errors(stderr)
    if isinstance(own, dict):
        result = dict(result or {}, models={**(result or {}).get("models", {}), model_key: user_paths(own, model_key, info.name)})
    if result is not None and "import" not in result:  # it started, and died importing the framework
        base.update(versions=dict(result.get("versions") or {}))
        result = None
    if result is None:
        if outcome.timed_out:
            return CellResult(
                **base,
                status="timeout",
                fix="raise load.timeout in the matrix, or look for a hang in the traceback",
                detail="no result before the timeout",
            )
        return CellResult(**base, status="crash", cause="environment", detail=_crash_detail(outcome), attribute_error=bool(printed))
    versions = dict(result.get("versions") or {})
    imported = result.get("import") or {}
    backend = imported.get("backend")
    if isinstance(backend, str) and re.fullmatch(r"[a-z]{1,20}", backend):  # Keras 3's backend, as the cell's keras said it
        versions[KERAS_BACKEND] = backend
    base.update(versions=versions, import_seconds=imported.get("seconds"))
    if not imported.get("ok"):
        return _import_failure(base, cell, imported.get("error") or {}, outcome.stderr, printed, versions)
    model = (result.get("models") or {}).get(model_key)
    if model is None or "timeout" in model:
        if outcome.timed_out or (model or {}).get("timeout"):
            return CellResult(
                **base,
                status="timeout",
                fix="raise load.timeout in the matrix; loading did not finish",
                detail="the framework imported, the load did not finish",
            )
        return CellResult(**base, status="crash", cause=_crash_cause(info), detail=_crash_detail(outcome))
    if "crash" in model:
        sig = (model.get("crash") or {}).get("signal")
        if sig == 9 and _out_of_memory(outcome):
            detail = "the load was killed: out of memory (the memory limit was reached)"
        else:
            detail = f"the load was killed by signal {sig}" if sig else "the load exited without a result"
        return CellResult(**base, status="crash", cause=_crash_cause(info), detail=detail)
    return _load_outcome(base, cell, info, model, versions, printed)


def _import_failure(
    base: dict[str, Any], cell: Cell, error: Mapping[str, Any], stderr: str, printed: list[str], versions: Mapping[str, str]
) -> CellResult:
    texts = " ".join(_messages(error)) + "\n" + stderr
    tf = _tf_version(versions)
    attribute_error = bool(printed) or any(e.get("type") == "AttributeError" for e in _errors(error))
    attribute = _attribute(error) or (_attribute_from_text(printed[0]) if printed else None)
    common: dict[str, Any] = dict(
        base, status="import-error", exception=error or None, attribute_error=attribute_error, attribute=attribute
    )
    removed = _numpy_fix(texts, tf, versions.get("numpy", "?"))
    if removed is not None:
        return CellResult(**common, cause="environment", missing_name="numpy", fix=removed[0], detail=removed[1])
    if any(h in texts for h in _NUMPY_ABI):
        numpy = versions.get("numpy", "?")
        fix = (
            f"pin numpy<2: tensorflow {tf} was built against numpy 1.x"
            if numpy.startswith("2")
            else f"pin a numpy release that tensorflow {tf} supports"
        )
        return CellResult(
            **common,
            cause="environment",
            missing_name="numpy ABI",
            fix=fix,
            detail=f"numpy {numpy} does not match the numpy tensorflow {tf} was built for",
        )
    if any(h in texts for h in _PROTOBUF) and ("protobuf" in texts or "GetPrototype" in texts):
        return CellResult(
            **common,
            cause="environment",
            fix=f"pin protobuf to the range tensorflow {tf} declares (protobuf {versions.get('protobuf', '?')} is outside it)",
            detail="protobuf does not match the TensorFlow build",
        )
    missing = error.get("import_name") if error.get("type") == "ModuleNotFoundError" else None
    if missing in ("tensorflow", "keras", "tf_keras"):
        dist = {"tf_keras": "tf-keras"}.get(missing, missing)
        why = (
            f"the '{cell.api}' API needs it"
            if missing != "tf_keras" or cell.api == "tf_keras"
            else "TF_USE_LEGACY_KERAS=1 makes tf.keras import it"
        )
        return CellResult(
            **common, cause="missing-dependency", missing_name=missing, fix=f"install {dist} (matching tensorflow {tf}): {why}"
        )
    return CellResult(
        **common,
        cause="environment",
        fix=f"the framework does not import here: {error.get('type', 'error')}: {first_line(error.get('message', ''))}",
    )


def _own_seconds(attempts: list[Any]) -> float | None:
    """The time the probe spent on this model's attempts (numbers the cell sent: bounded)."""
    seconds = [a.get("seconds") for a in attempts if isinstance(a, Mapping)]
    found = [float(x) for x in seconds if isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x < 1e6]
    return round(sum(found), 3) if found else None


def _load_outcome(
    base: dict[str, Any], cell: Cell, info: ModelInfo, model: Mapping[str, Any], versions: Mapping[str, str], printed: list[str]
) -> CellResult:
    attempts = list(model.get("attempts") or [])
    plugins = tuple(model.get("plugins") or ())
    extra: dict[str, Any] = dict(
        base,
        plugins=plugins,
        inference=model.get("inference"),
        fixes_tried=tuple(a.get("fix") for a in attempts[1:] if a.get("fix")),
        attempts=tuple(_attempt_summary(a) for a in attempts),
        peak_rss_mb=model.get("peak_rss_mb"),
        load_seconds=_own_seconds(attempts),
    )
    if not attempts:
        return CellResult(**extra, status="crash", detail="the probe recorded no load attempt")
    # what a load raised (the harness's own call of a serving signature is no load of the user's)
    every_error = [e for a in attempts if not a.get("serving") for e in _errors(a.get("error") or {})]
    attribute_error = bool(printed) or any(e.get("type") == "AttributeError" for e in every_error)
    if attempts[0].get("ok"):
        return CellResult(**extra, status="loaded", attribute_error=bool(printed))
    error = attempts[0].get("error") or {}
    worked = next((a["fix"] for a in attempts[1:] if a.get("ok") and not a.get("standin") and not a.get("serving")), None)
    cause, missing, fix = load_cause(Seen(cell, info, error, versions, plugins, worked, tuple(attempts)))
    shown = _failed_fix(attempts, info, versions, cell) if not worked else None
    if shown is not None:
        cause, fix = shown
    elif not worked:
        fix = _next_blocker(cell, info, versions, plugins, attempts, fix)
    if not worked and cause == "version-mismatch":
        fix += _also_needs(info, fix)
    unimported = _objects_unimported(model, cell, versions)
    if unimported is not None and not worked and cause == "custom-object":
        cause, fix = unimported  # "pass custom_objects" is what was done: why it could not help is the finding
    if not worked:
        fix = with_serving(fix, attempts, versions)
    return CellResult(
        **extra,
        status="loaded-after-fix" if worked else "load-error",
        cause=cause,
        exception=error,
        attribute_error=attribute_error,
        attribute=_attribute(error)
        or next((_attribute(a.get("error") or {}) for a in attempts[1:] if not a.get("serving") and _attribute(a.get("error") or {})), None),
        missing_name=missing,
        fix=fix,
        fix_worked=worked,
        detail=f"loaded with {worked}" if worked else _not_loaded(attempts),
    )


_SANDBOX_PATH = r"(?:/models/{key}(?:\.repaired\d)?|/[^\s'\"`:]*/{key}\.h5)(?:\.[A-Za-z0-9]{{1,12}})?(?!\w)"


def user_paths(value: Any, key: str, name: str) -> Any:
    """A probe's answer with the paths the cell saw (/models/m3.keras, its .h5 alias, a
    repaired copy) written as the user's file name: messages name the user's files."""
    pattern = re.compile(_SANDBOX_PATH.format(key=re.escape(key)))

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 12:
            return node
        if isinstance(node, str):
            return pattern.sub(lambda m: name, node) if key in node else node
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        if isinstance(node, dict):
            return {k: walk(v, depth + 1) for k, v in node.items()}
        return node

    return walk(value)


def _next_blocker(
    cell: Cell,
    info: ModelInfo,
    versions: Mapping[str, str],
    plugins: tuple[Mapping[str, Any], ...],
    attempts: Sequence[Mapping[str, Any]],
    fix: str,
) -> str:
    """The fix with the chain's last step: where an option got the load past the plain failure
    and it then failed on something else, what that was and what the rules say of it (a fix
    that clears the first blocker only is never the whole answer)."""
    first = blocker(attempts[0])
    for attempt in reversed(attempts[1:]):
        error = attempt.get("error") or {}
        if not error or attempt.get("standin") or attempt.get("fix") in RESCUES:
            continue
        if blocker(attempt) == first:
            return fix
        _, _, then = load_cause(Seen(cell, info, error, versions, plugins))
        shown = f"{error.get('type', 'error')}: {first_line(error.get('message', ''))}"
        if then == fix:
            return fix
        return f"{fix}; tried with {attempt.get('fix')}, the load gets past that and then fails with {shown}: {then}"
    return fix


def _also_needs(info: ModelInfo, fix: str) -> str:
    """Where the fix sends the file to another Keras, the other blockers its inspection already
    shows there: the user's classes, a lambda loss, a Lambda layer Keras 3 refuses by default."""
    to = 3 if ("tensorflow>=2.16" in fix or "newer Keras 3" in fix) else 2 if "TF_USE_LEGACY_KERAS=1" in fix else None
    if to is None:
        return ""
    needs = []
    custom = [n for n in info.names("custom") if n != "<lambda>" and not n.startswith("<")]
    if custom:
        shown = ", ".join(f"'{n}'" for n in custom[:4]) + (f" and {len(custom) - 4} more" if len(custom) > 4 else "")
        needs.append(f"custom_objects for {shown}")
    if "<lambda>" in {c.name for c in info.classes if c.where in ("loss", "metrics")}:
        needs.append("compile=False (its loss or metric is a lambda)")
    if to == 3 and info.names("lambda"):
        needs.append("safe_mode=False for its Lambda layer (only for a file you trust)")
    return f"; there it also needs {', '.join(needs)} (from the file's inspection)" if needs else ""


def _not_loaded(attempts: Sequence[Mapping[str, Any]]) -> str:
    if standin_loaded(attempts):
        return "it loads only with a stand-in for a function the file names (not the model's own: not counted as loaded)"
    if serving_answered(attempts):
        return "load_model fails; its serving signature answers for inference (not counted as loaded)"
    return "no fix the harness could try loaded it" if len(attempts) > 1 else ""


def _attempt_summary(attempt: Mapping[str, Any]) -> dict[str, Any]:
    """One attempt as the reports show it: what was tried and what it raised."""
    error = attempt.get("error") or {}
    errors = _errors(error)
    return {
        "fix": attempt.get("fix") or "as is",
        "ok": bool(attempt.get("ok")),
        **({"standin": True} if attempt.get("standin") else {}),
        **({"serving": True} if attempt.get("serving") else {}),
        "exception": error.get("type") or ("timeout" if attempt.get("timeout") else "crash" if attempt.get("crash") else None),
        "message": telling_line(error.get("message", "")) or attempt.get("skipped") or "",
        "attribute_error": any(e.get("type") == "AttributeError" for e in errors),
    }


def _objects_unimported(model: Mapping[str, Any], cell: Cell, versions: Mapping[str, str]) -> tuple[Cause, str] | None:
    """(cause, fix) when the user's custom objects module did not import in this cell: on Keras 3
    over jax or torch, a module that imports TensorFlow is TensorFlow-only content."""
    tried = model.get("custom_objects")
    if not isinstance(tried, Mapping) or tried.get("ok") is not False:
        return None
    found = tried.get("error")
    error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    shown = f"{error.get('type', 'error')}: {first_line(str(error.get('message', '')))}"
    backend = off_tensorflow(versions)
    missing = str(error.get("import_name") or "")
    if backend and missing.split(".")[0] in ("tensorflow", "tf_keras", "tensorflow_addons"):
        return (
            "backend",
            f"your custom objects module imports {missing.split('.')[0]}, which this keras-on-{backend} cell does not have ({shown}): "
            f"write the layers with keras.layers and keras.ops (Keras 3's own API runs on every backend), or load the model on the "
            "tensorflow backend",
        )
    return "custom-object", f"your custom objects module did not import here ({shown}): make it import in this environment, then pass it"


def _failed_fix(attempts: list[Mapping[str, Any]], info: ModelInfo, versions: Mapping[str, str], cell: Cell) -> tuple[Cause, str] | None:
    """(cause, fix) when the user's custom objects were passed and the load still failed in
    another way: proposing them again would repeat what was just shown not to work."""
    tried = [a for a in attempts[1:] if str(a.get("fix") or "").startswith("custom_objects") and a.get("error")]
    if not tried:
        return None
    error = tried[0]["error"]
    plain = attempts[0].get("error") or {}
    if (error.get("type"), error.get("message")) == (plain.get("type"), plain.get("message")):
        return None  # the objects changed nothing: the plain failure's diagnosis stands
    if _unknown_name(error) is not None and _unknown_name(error) == _unknown_name(plain):
        return None  # the objects did not cover the missing name: the usual advice (pass it) stands
    shown = f"{error.get('type', 'error')}: {first_line(error.get('message', ''))}"
    in_their_code = any(f.get("custom") for f in error.get("frames") or [])
    env_major = _env_keras_major(cell, versions)
    written_for = info.keras_major
    attribute = any(e.get("type") == "AttributeError" for e in _errors(error))
    if in_their_code and attribute and env_major and written_for and env_major != written_for:
        return (
            "version-mismatch",
            f"with your custom objects the load still fails ({shown}): their code was written for Keras {written_for} "
            f"and this is keras {versions.get('keras', env_major)}; "
            + (
                legacy_advice(off_tensorflow(versions), tried=cell.api == "tf.keras") + ", or port the layer to Keras 3"
                if env_major >= 3
                else "port the layer back to Keras 2, or load with tensorflow>=2.16"
            ),
        )
    if in_their_code:
        return "custom-object", f"with your custom objects the load fails inside their code ({shown}): fix it for this keras"
    cause, _, fix = load_cause(Seen(cell, info, error, versions))
    return cause, f"with your custom objects the load gets further and fails with {shown}: {fix}"


def diagnose_static(cell: Cell, info: ModelInfo) -> CellResult:
    """A damaged file, or one that holds weights but no model, fails everywhere; found
    statically, so no environment is built for it."""
    if info.partial and not info.corrupt:
        return CellResult(
            model=info.name,
            cell=cell.id,
            status="load-error",
            cause="not-a-model",
            fix=partial_note(info),
            detail=f"found by static inspection (no environment built): {info.format} file of {info.kind}, no model config",
        )
    return CellResult(
        model=info.name,
        cell=cell.id,
        status="load-error",
        cause="corrupt-file",
        fix="the file is damaged: re-export or re-download it",
        detail="found by static inspection (no environment built): " + "; ".join(info.problems),
    )


def _printed_attribute_errors(stderr: str) -> list[str]:
    return _STDERR_ATTRIBUTE.findall(stderr or "")


def _out_of_memory(outcome: ProbeOutcome) -> bool:
    """The sandbox (cgroup or Docker) said its memory limit killed something."""
    return "killed for exceeding its memory limit (out of memory)" in (outcome.stderr or "")


def _crash_cause(info: ModelInfo) -> Cause:
    """A crash is the environment's (a broken build, a segfault) unless the file's own code ran:
    then nothing tells the two apart."""
    return "unknown" if info.carries_code else "environment"


def _crash_detail(outcome: ProbeOutcome) -> str:
    if _out_of_memory(outcome) and outcome.returncode == -9:
        return "killed: out of memory (the memory limit was reached) before writing a result"
    if outcome.returncode == -9:
        return "killed by SIGKILL before writing a result"
    if outcome.returncode < 0:
        return f"killed by signal {-outcome.returncode} before writing a result"
    return f"exited with code {outcome.returncode} without a result"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])
