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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .matrix import Cell
from .modelfile import ModelInfo, keras_builtins, partial_note
from .probe import AS_H5, COMPILE, CUSTOM, REPAIRED, RESCUES, UNSAFE

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
    "environment",
    "unknown",
]
STATUSES: tuple[Status, ...] = get_args(Status)  # in report order
CAUSES: tuple[Cause, ...] = get_args(Cause)
FAILED: tuple[Status, ...] = ("loaded-output-mismatch", "load-error", "import-error", "timeout", "crash")
LOADS: tuple[Status, ...] = ("loaded", "loaded-after-fix")
NOT_TRIED: tuple[Status, ...] = ("unresolvable", "skipped", "infra-error")


def exception_type(record: Mapping[str, Any] | None) -> str | None:
    """The exception type of a result record (results.json, the store), if it has one."""
    return ((record or {}).get("exception") or {}).get("type")


_UNKNOWN_OBJECT = re.compile(
    r"Unknown (?:layer|loss function|metric function|metric|optimizer|activation function|initializer|regularizer|constraint|object)[^:]*: '?([\w>.]+)'?"
)
_NOT_LOCATED = re.compile(r"Could not locate (?:class|function) '([\w>.]+)'")
_CANNOT_DESERIALIZE = re.compile(r"Cannot deserialize object of type `([\w>.]+)`")  # Keras 2.13-2.15 .keras
_LAMBDA_NAME = re.compile(r"Unknown (?:loss function|metric function|metric)[^:]*: '<lambda>'")
_EXPECTED_VARIABLES = re.compile(r"Layer '([^']+)' expected (\d+) variables, but received (\d+)")
_UNRECOGNIZED = re.compile(r"Unrecognized keyword arguments(?: passed to (\w+))?: (\{.*?\}|\[.*?\])")
_DESERIALIZING = re.compile(r"Error when deserializing class '(\w+)'")
_NOT_RECOGNIZED = re.compile(r"Argument\(s\) not recognized: \{'(\w+)'")
_NUMPY_GONE = re.compile(r"module 'numpy' has no attribute '(\w+)'")
# numpy aliases removed in 1.24 (deprecated in 1.20); other names were removed in 2.0.
_NUMPY_124 = ("object", "bool", "int", "float", "complex", "str", "long", "unicode")
_NO_ATTRIBUTE = re.compile(r"has no attribute '(\w+)'")
_NOT_FOUND = re.compile(r"^(\w+) not found")
_STDERR_ATTRIBUTE = re.compile(r"^AttributeError: (.+)$", re.M)
_NUMPY_ABI = (
    "_ARRAY_API not found",
    "compiled using NumPy 1.x cannot be run in",
    "numpy.core._multiarray_umath failed to import",
    "numpy.core.multiarray failed to import",
    "module 'numpy' has no attribute",
)


def _numpy_fix(texts: str, tf: str, numpy: str) -> tuple[str, str] | None:
    """(fix, detail) for code that uses a numpy name a newer numpy removed."""
    gone = _NUMPY_GONE.search(texts)
    if not gone:
        return None
    name = gone.group(1)
    if name in _NUMPY_124:
        return (
            f"pin numpy<1.24 (np.{name} was removed in numpy 1.24; numpy {numpy} is installed), or change the code that uses np.{name}",
            f"code here uses np.{name}, which numpy 1.24 removed",
        )
    return (
        f"pin numpy<2 (np.{name} is gone in numpy {numpy}; numpy 1.26 still has it)",
        f"code here uses np.{name}, which numpy 2.0 removed",
    )


_PROTOBUF = ("GetPrototype", "Descriptors cannot be created directly", "google.protobuf")
_CORRUPT = (
    "truncated file",
    "Unable to open file",
    "Unable to synchronously open file",
    "file signature not found",
    "BadZipFile",
    "bad CRC",
    "Bad magic number",
)


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
    base.update(versions=versions, import_seconds=(result.get("import") or {}).get("seconds"))
    imported = result.get("import") or {}
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
    )
    if not attempts:
        return CellResult(**extra, status="crash", detail="the probe recorded no load attempt")
    every_error = [e for a in attempts for e in _errors(a.get("error") or {})]
    attribute_error = bool(printed) or any(e.get("type") == "AttributeError" for e in every_error)
    if attempts[0].get("ok"):
        return CellResult(**extra, status="loaded", attribute_error=bool(printed))
    error = attempts[0].get("error") or {}
    worked = next((a["fix"] for a in attempts[1:] if a.get("ok") and not a.get("standin")), None)
    cause, missing, fix = _load_cause(cell, info, error, plugins, worked, versions, attempts)
    shown = _failed_fix(attempts, info, versions, cell) if not worked else None
    if shown is not None:
        cause, fix = shown
    return CellResult(
        **extra,
        status="loaded-after-fix" if worked else "load-error",
        cause=cause,
        exception=error,
        attribute_error=attribute_error,
        attribute=_attribute(error)
        or next((_attribute(a.get("error") or {}) for a in attempts[1:] if _attribute(a.get("error") or {})), None),
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
    text = name

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 12:
            return node
        if isinstance(node, str):
            return pattern.sub(lambda m: text, node) if key in node else node
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        if isinstance(node, dict):
            return {k: walk(v, depth + 1) for k, v in node.items()}
        return node

    return walk(value)


def options(fix: str | None) -> set[str]:
    """The load options of an attempt's name ("custom_objects+compile=False")."""
    return set((fix or "").split("+")) - {""}


def _not_loaded(attempts: Sequence[Mapping[str, Any]]) -> str:
    if any(a.get("ok") and a.get("standin") for a in attempts):
        return "it loads only with a stand-in for a function the file names (not the model's own: not counted as loaded)"
    return "no fix the harness could try loaded it" if len(attempts) > 1 else ""


def _attempt_summary(attempt: Mapping[str, Any]) -> dict[str, Any]:
    """One attempt as the reports show it: what was tried and what it raised."""
    error = attempt.get("error") or {}
    errors = _errors(error)
    return {
        "fix": attempt.get("fix") or "as is",
        "ok": bool(attempt.get("ok")),
        **({"standin": True} if attempt.get("standin") else {}),
        "exception": error.get("type") or ("timeout" if attempt.get("timeout") else "crash" if attempt.get("crash") else None),
        "message": first_line(error.get("message", "")) or attempt.get("skipped") or "",
        "attribute_error": any(e.get("type") == "AttributeError" for e in errors),
    }


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
                "load with tf-keras and TF_USE_LEGACY_KERAS=1 (--try-fixes tries it), or port the layer to Keras 3"
                if env_major >= 3
                else "port the layer back to Keras 2, or load with tensorflow>=2.16"
            ),
        )
    if in_their_code:
        return "custom-object", f"with your custom objects the load fails inside their code ({shown}): fix it for this keras"
    cause, _, fix = _load_cause(cell, info, error, (), None, versions)
    return cause, f"with your custom objects the load gets further and fails with {shown}: {fix}"


def _load_cause(
    cell: Cell,
    info: ModelInfo,
    error: Mapping[str, Any],
    plugins: Iterable[Mapping[str, Any]],
    worked: str | None,
    versions: Mapping[str, str],
    attempts: Sequence[Mapping[str, Any]] = (),
) -> tuple[Cause, str | None, str]:
    """(cause, missing name, fix) for a load that failed. Each rule reads a message a real
    release raises (tests/test_diagnose.py quotes them); the first that matches decides."""
    text = " ".join(_messages(error))
    tf = _tf_version(versions)
    loader, keras = _loader(cell, versions)
    env_major = _env_keras_major(cell, versions)
    saved = f"Keras {info.keras_version}" if info.keras_version else "another Keras"
    proven = " (proven: it loaded)"
    done = options(worked)
    later = " ".join(" ".join(_messages(a.get("error") or {})) for a in attempts[1:])
    found = _older_keras(info, text, later, done, attempts, env_major)
    if found is not None:
        return found
    addons = info.names("addons")
    plugin = {p.get("name"): p for p in plugins}.get("tensorflow_addons")
    if any(h in text for h in _CORRUPT):
        if info.problems:
            return "corrupt-file", None, "the file is damaged: re-export or re-download it"
        if info.format == "keras":  # a sound zip read as HDF5: this Keras predates the format
            return (
                "version-mismatch",
                None,
                f"{loader} {keras} cannot read the .keras format (Keras 2.12+ can): load with a newer TensorFlow or re-save as .h5",
            )
        return (
            "version-mismatch",
            None,
            f"the file is sound here (static check) but this environment's HDF5 stack cannot open it (h5py {versions.get('h5py', '?')})",
        )
    if "No model config found" in text:
        return (
            "not-a-model",
            None,
            partial_note(info)
            if info.partial
            else "the file holds weights only (save_weights): build the model in code, then load_weights",
        )
    removed = _numpy_fix(text, tf, versions.get("numpy", "?"))
    if removed is not None:
        return "environment", "numpy", removed[0]
    if info.graph_only:
        # Keras 3 refuses the format ("File format not supported"); Keras 2's load_model returns a
        # bare trackable object, and the probe's next step, predict, raises AttributeError.
        return (
            "not-a-model",
            None,
            "a SavedModel with no Keras model in it (tf.saved_model.save, or Keras 3's model.export): no load_model "
            "rebuilds it; for inference call its serving signature: keras.layers.TFSMLayer(path, call_endpoint='serving_default') "
            "in Keras 3, tf.saved_model.load(path).signatures['serving_default'] in any TensorFlow (harness migrate tries both)"
            + (f" (proven: it ran through {worked})" if worked in RESCUES else ""),
        )
    if "experimental_enable_variable_lifting" in text:
        line = ".".join(tf.split(".")[:2])
        return (
            "environment",
            "keras",
            f"{loader} {keras} does not match tensorflow {tf}: keras must match tensorflow's minor, install keras=={line}.*",
        )
    if addons and any(a in text for a in addons):
        if plugin and plugin.get("installed") and not plugin.get("ok"):
            return (
                "version-mismatch",
                "tensorflow_addons",
                f"tensorflow-addons {versions.get('tensorflow-addons', '?')} does not import with tensorflow {tf}: "
                + _addons_fix(tf).replace("install ", "use ", 1),
            )
        if env_major and env_major >= 3:
            return (
                "missing-dependency",
                addons[0],
                "tensorflow-addons has no Keras 3 support: load with tf-keras and TF_USE_LEGACY_KERAS=1, or replace the layer with its Keras equivalent",
            )
        return "missing-dependency", addons[0], _addons_fix(tf)
    name = _unknown_name(error)
    if name == "KerasLayer":
        return (
            "missing-dependency",
            "tensorflow_hub",
            "KerasLayer comes from tensorflow-hub: install it and pass custom_objects={'KerasLayer': hub.KerasLayer}"
            + ("; tensorflow-hub's layer is Keras 2 only: load with tf-keras and TF_USE_LEGACY_KERAS=1" if (env_major or 0) >= 3 else ""),
        )
    if info.format == "h5" and info.name.endswith(".keras") and (".keras` zip" in text or AS_H5 in done):
        return (
            "version-mismatch",
            None,
            f"the file is HDF5 under a .keras name, and {loader} {keras} picks the loader by the name: copy it to a .h5 name"
            + (proven if AS_H5 in done else ""),
        )
    if "TFSMLayer" in text and "safe_mode" in text:
        return (
            "safe-mode",
            "TFSMLayer",
            "the model wraps an external SavedModel (TFSMLayer), which Keras refuses by default: only for a file you trust, "
            "pass safe_mode=False, with that SavedModel at the path the file names" + (proven if UNSAFE in done else ""),
        )
    if "safe_mode" in text:
        return (
            "safe-mode",
            "Lambda",
            "Keras 3 refuses Python code stored in a file (a Lambda) by default: only for a file you trust, pass safe_mode=False (it runs the file's code)"
            + (proven if UNSAFE in done else ""),
        )
    compiled = sorted({c.name for c in info.classes if c.kind == "custom" and c.where in ("loss", "metrics")})
    if name == "<lambda>" or (done == {COMPILE} and "<lambda>" in compiled):
        return (
            "custom-object",
            "<lambda>",
            "the training config names a lambda as loss or metric, which no Keras can rebuild from a file: "
            f"load_model(..., compile=False){proven if COMPILE in done else ''} and compile again with the function in code",
        )
    if name in ("Policy", "DTypePolicy") or (
        "Policy" in {c.name for c in info.classes}
        and (env_major or 0) >= 3
        and any(e.get("type") == "AttributeError" for e in _errors(error))
    ):
        return (
            "version-mismatch",
            name or "Policy",
            f"the file stores a mixed-precision policy of {saved} (a Keras class, not a custom object), which {loader} {keras} cannot read: "
            + _format_fix(info, env_major),
        )
    if name is not None:
        package, _, short = name.rpartition(">")
        if name in info.names("custom") or short not in keras_builtins():
            if package and package != "Addons":  # saved registered: importing the package that registers it is the fix
                fix = (
                    f"import the module that registers '{name}' (@register_keras_serializable(package='{package}')) before "
                    f"load_model, or pass custom_objects={{'{name}': {short}}}"
                )
            else:
                fix = f"pass custom_objects={{'{name}': {short}}} to load_model (or decorate it with @keras.saving.register_keras_serializable())"
            return "custom-object", name, fix
        return (
            "version-mismatch",
            name,
            f"'{name}' is not known to {loader} {keras}: load with the Keras that saved the file ({info.keras_version})",
        )
    variables = _EXPECTED_VARIABLES.search(text)
    if variables:
        return (
            "version-mismatch",
            None,
            f"layer '{variables.group(1)}' finds {variables.group(3)} of its {variables.group(2)} weights: Keras 2.13-2.15 .keras files "
            f"keep weights where only the minor that wrote them looks; this one was written by {saved}: load it with that minor "
            "(or re-save it there as .h5)",
        )
    unrecognized = _UNRECOGNIZED.search(text)
    if unrecognized:
        layer = unrecognized.group(1) or next(
            (m.group(1) for e in _errors(error) if (m := _DESERIALIZING.search(e.get("message", "")))), "a layer"
        )
        keys = ", ".join(re.findall(r"'(\w+)'", unrecognized.group(2))) or unrecognized.group(2)
        return (
            "version-mismatch",
            None,
            f"{layer}'s config has {keys}, which {loader} {keras} does not accept; " + _direction_fix(info, env_major, keras, loader),
        )
    if "cannot contain character `/`" in text:
        return (
            "version-mismatch",
            None,
            f"a layer name of {saved} contains '/', which Keras 3 refuses: load with tf-keras and TF_USE_LEGACY_KERAS=1 (--try-fixes tries it)",
        )
    argument = _NOT_RECOGNIZED.search(text)
    if argument:
        return (
            "version-mismatch",
            argument.group(1),
            f"the saved training config passes '{argument.group(1)}', which {loader} {keras} no longer accepts (written by {saved}): "
            f"load_model(..., compile=False){proven if COMPILE in done else ''} and compile again",
        )
    if ("parent module" in text and "cannot be imported" in text) or "File format not supported" in text:
        return "version-mismatch", None, _format_fix(info, env_major)
    if "could not be deserialized properly" in text and info.keras_version and keras and _release(info.keras_version) > _release(keras):
        # Keras 3 wraps what went wrong inside; nothing above named it, but the file is newer than this Keras
        return (
            "version-mismatch",
            None,
            f"the model's config does not deserialize in {loader} {keras}; " + _direction_fix(info, env_major, keras, loader),
        )
    if CUSTOM in done:
        return "custom-object", next(iter(info.names("custom")), None), "pass the custom objects to load_model (custom_objects=...)"
    if done == {COMPILE} and compiled:
        # The training config names a function no Keras knows (its message may say anything:
        # Keras 3 reading a Keras 2 file raises "string indices must be integers").
        return (
            "custom-object",
            compiled[0],
            f"the training config names {', '.join(compiled)}, which this environment does not know: pass "
            f"custom_objects={{'{compiled[0]}': {compiled[0]}}}, or load_model(..., compile=False) (proven) and compile again",
        )
    if done == {COMPILE}:
        return (
            "version-mismatch",
            None,
            f"the saved training config does not load in {loader} {keras}: load_model(..., compile=False) and compile again",
        )
    if info.keras_major and env_major and info.keras_major != env_major:
        return "version-mismatch", None, _format_fix(info, env_major)
    return "unknown", None, f"{error.get('type', 'error')}: {first_line(error.get('message', ''))}"


def _loader(cell: Cell, versions: Mapping[str, str]) -> tuple[str, str]:
    """(the distribution that loads here, its version): tf-keras in a legacy cell, else keras."""
    if (
        _env_keras_major(cell, versions) == 2
        and "tf-keras" in versions
        and (cell.api == "tf_keras" or dict(cell.env).get("TF_USE_LEGACY_KERAS") == "1")
    ):
        return "tf-keras", versions["tf-keras"]
    return "keras", versions.get("keras") or versions.get("tf-keras") or ""


_ACTIVATION = re.compile(
    r"(?:Unknown activation function:? '?|Could not interpret activation function identifier: '?)([^'\s]+?)'?(?:\.? |\.?$)"
)
_RESET_AFTER = re.compile(r"GRU\(reset_after=False\) is not compatible with GRU\(reset_after=True\)")
_KERAS1_WORDS = re.compile(
    r"'(output_dim|inner_activation|inner_init|init|W_regularizer|U_regularizer|b_regularizer|dropout_W|dropout_U|consume_less|"
    r"border_mode|nb_filter|nb_row|nb_col|subsample|dim_ordering|input_dtype|forget_bias_init|beta_init|gamma_init|p)'"
)
_MISSING_ARGUMENT = re.compile(r"missing \d+ required positional arguments?: '(units|filters|rate|kernel_size|output_dim)'")
_MARSHAL = ("bad marshal data", "unknown type code")


def _keras1_file(info: ModelInfo) -> bool:
    """Written by Keras 1: its version says so, or an HDF5 model says no version (Keras 1.0-1.1 wrote none)."""
    return info.keras_major == 1 or (info.keras_version is None and info.format == "h5")


def _older_keras(
    info: ModelInfo, text: str, later: str, done: set[str], attempts: Sequence[Mapping[str, Any]], env_major: int | None
) -> tuple[Cause, str | None, str] | None:
    """The blockers of files from older Keras and Python, each from a message real releases raise
    (tests/test_diagnose.py): a lambda activation saved by name, a GRU from before reset_after,
    Keras 1 argument names, a Lambda marshalled by Python 2; and a load the repaired config proved."""
    saved = f"Keras {info.keras_version}" if info.keras_version else "an older Keras"
    repaired = REPAIRED in done
    if any(m in text or m in later for m in _MARSHAL) and info.names("lambda"):
        return (
            "version-mismatch",
            "Lambda",
            "a Lambda layer's code was marshalled by another Python (Python 2 bytecode, or another 3.x minor's): no Keras "
            "release and no safe_mode setting reads it here; rebuild the Lambda in code under this Python and load the "
            "weights into it (load_weights)",
        )
    activation = _ACTIVATION.search(text)
    if activation:
        function = activation.group(1)
        standin = any(a.get("ok") and a.get("standin") for a in attempts)
        evidence = (
            " (tried with a stand-in function: then the model loads, so that function is all it lacks)"
            if standin
            else " (not tried: the harness does not have your function)"
        )
        if CUSTOM in done:
            evidence = " (proven: it loaded with your custom objects)"
        return (
            "custom-object",
            function,
            f"a layer's activation was saved as '{function}'"
            + (
                " (a Python lambda, which a file keeps by name only)"
                if function == "<lambda>"
                else " (a function this Keras does not define)"
            )
            + f": pass custom_objects={{'{function}': the_function}} to load_model{evidence}",
        )
    if _RESET_AFTER.search(text):
        return (
            "version-mismatch",
            "reset_after",
            f"the GRU was saved by {saved}, before GRU had reset_after (it computed reset_after=False); this Keras assumes "
            "reset_after=True: set reset_after=False in the layer's config"
            + (" (proven: the repaired config loaded)" if repaired else " (not tried here)"),
        )
    keras1 = _KERAS1_WORDS.search(text) or _MISSING_ARGUMENT.search(text)
    if keras1 and _keras1_file(info):
        return (
            "version-mismatch",
            keras1.group(1),
            f"the file was written by {saved} with Keras 1 argument names (the message names '{keras1.group(1)}'), which Keras 2 renamed: "
            "rename them in the config as Keras 2.0 did (output_dim -> units, init -> kernel_initializer, ...)"
            + (" (proven: the repaired config loaded)" if repaired else " (not tried here)"),
        )
    if repaired:
        return (
            "version-mismatch",
            None,
            f"the config written by {saved} needs changes for this Keras (proven: the repaired config loaded); "
            "`harness migrate` writes the repaired file",
        )
    return None


def _direction_fix(info: ModelInfo, env_major: int | None, keras: str, loader: str = "keras") -> str:
    """Which Keras to load a file with, from who wrote it and what is here."""
    saved = info.keras_major
    if saved and env_major and saved != env_major:
        return _format_fix(info, env_major)
    if info.keras_version and keras and _release(info.keras_version) > _release(keras):
        return f"the file was written by Keras {info.keras_version}: load with keras>={info.keras_version}, or re-save the model with {loader} {keras}"
    return f"load with the Keras that wrote it ({info.keras_version or 'see harness inspect'})"


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


# tensorflow-addons releases and the TensorFlow minor lines each was built for (its README);
# 0.23 is the last release: the project ended in May 2024.
ADDONS_SUPPORT = {"0.23": ("2.13", "2.15"), "0.22": ("2.12", "2.14"), "0.21": ("2.11", "2.13"), "0.20": ("2.10", "2.12")}


def _addons_fix(tf: str) -> str:
    line = ".".join(tf.split(".")[:2])
    fitting = [addons for addons, (low, high) in ADDONS_SUPPORT.items() if _minor(low) <= _minor(line) <= _minor(high)]
    if fitting:
        return f"install tensorflow-addons=={fitting[0]}.* (built for tensorflow {line}) and import tensorflow_addons before load_model"
    return (
        f"no tensorflow-addons release supports tensorflow {tf} (the last, 0.23, covers 2.13-2.15): "
        "load on tensorflow<=2.15 or replace the layer with its Keras equivalent"
    )


def _minor(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return (0, 0)


def _format_fix(info: ModelInfo, env_major: int | None) -> str:
    saved = info.keras_major
    if info.format == "keras-dir":
        if (env_major or 0) >= 3:
            return (
                "an unzipped .keras folder, which this keras reads only zipped (zipped=False came with a later Keras 3; "
                "seen: 3.3.3 cannot, 3.15.1 can): zip the folder's files into a .keras archive, or load with a newer keras"
            )
        return f"an unzipped .keras folder of Keras {info.keras_version or '3'}, which Keras 2 cannot read: load it with a newer Keras 3"
    if info.format == "savedmodel" and (env_major or 0) >= 3:
        return (
            f"a SavedModel{' of Keras ' + info.keras_version if info.keras_version else ''}, which Keras 3's load_model does not read: "
            "load with tf-keras and TF_USE_LEGACY_KERAS=1 (--try-fixes tries it), or for inference only wrap it with "
            "keras.layers.TFSMLayer(path, call_endpoint='serving_default')"
        )
    if saved and saved >= 3 and (env_major or 0) < 3:
        # Keras 2 reads neither Keras 3's .keras nor its H5 layer configs (seen: InputLayer batch_shape)
        return f"this file was saved by Keras {info.keras_version}, which Keras 2 cannot read: load it with tensorflow>=2.16 (Keras 3)"
    if env_major is not None and env_major <= 2:  # tf-keras is what loads here already: it is no advice
        if saved == 1:
            return (
                f"this file was saved by Keras {info.keras_version or '1'}, whose layer arguments Keras 2.0 renamed: "
                "rename them in the config (harness migrate does) or load with the Keras 1 that wrote it"
            )
        return f"this file was saved by Keras {info.keras_version or '?'}: load it with the Keras that wrote it"
    return (
        f"this file was saved by Keras {info.keras_version or '2'}: install tf-keras and set TF_USE_LEGACY_KERAS=1 "
        "(--try-fixes tries it), or load it once there and re-save it with Keras 3"
    )


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


def _errors(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [error, *error.get("chain", [])] if error else []


def _messages(error: Mapping[str, Any]) -> list[str]:
    return [f"{e.get('type')}: {e.get('message', '')}" for e in _errors(error)]


def _unknown_name(error: Mapping[str, Any]) -> str | None:
    for e in _errors(error):
        if _LAMBDA_NAME.search(e.get("message", "")):
            return "<lambda>"
        for pattern in (_UNKNOWN_OBJECT, _NOT_LOCATED, _CANNOT_DESERIALIZE):
            found = pattern.search(e.get("message", ""))
            if found:
                return found.group(1)
    return None


def _attribute(error: Mapping[str, Any]) -> str | None:
    for e in _errors(error):
        if e.get("type") == "AttributeError":
            return e.get("attribute") or _attribute_from_text(e.get("message", ""))
    return None


def _attribute_from_text(text: str) -> str | None:
    found = _NO_ATTRIBUTE.search(text) or _NOT_FOUND.search(text)
    return found.group(1) if found else None


def _printed_attribute_errors(stderr: str) -> list[str]:
    return _STDERR_ATTRIBUTE.findall(stderr or "")


def _tf_version(versions: Mapping[str, str]) -> str:
    return next((versions[k] for k in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos") if k in versions), "?")


def _env_keras_major(cell: Cell, versions: Mapping[str, str]) -> int | None:
    if cell.api == "tf_keras" or (dict(cell.env).get("TF_USE_LEGACY_KERAS") == "1" and "tf-keras" in versions):
        return 2
    keras = versions.get("keras")
    return int(keras.split(".")[0]) if keras and keras[0].isdigit() else None


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


def first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or [""])[0][:300]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])
