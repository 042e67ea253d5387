"""Load Keras models inside a cell and write what happened as JSON.

Runs with the cell's own Python, so it imports nothing from harness, only the standard
library (and, inside the cell, the framework under test), and keeps to Python 3.8 syntax.

    python probe.py REQUEST.json

A failure to load is data: the probe still exits 0 and reports the exception's type,
module, message, missing attribute, chained exceptions and framework frames. When
several models share the cell, the framework is imported once and each model is loaded
in a forked child, so every load stays isolated while the import is paid once.

What it found leaves on its stdout, the result channel: one JSON message a line
(start, import, model, outputs, done). Before anything else the probe moves that
channel to a private descriptor and points fd 1 at stderr, so whatever the framework or
a model prints lands in the log, not in the channel. The harness reads the channel
bounded and validates it; a model's code runs in this process and can lie about its
own result (the report says so for files that carry code), nothing more. With "out" in
the request the probe also writes the assembled result there (a reproduction run by hand).
"""

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import re
import signal
import sys
import time
import traceback
import typing  # noqa: F401 - names in type comments (mypy reads them; nothing at run time)

PROBE_VERSION = 15  # 15: a repaired config made for the cell's backend is preferred (3-torch). 14: torch's outputs detached before numpy (outputs compared on torch cells). 13: the Keras 3 backend said with the import. 12: three generated batches (edge values, two seeded), called one by one; a saved batch names its rows. 11: the made input records its seed and rows. 10: a SavedModel's model exported for serving (migrate's re-export). 9: the weights' digests with the outputs; inputs made from the model (dtype, Embedding id ranges, 3 rows: ramp, seeded random, zeros), outputs saved by name (dicts, nested). 7: a failing SavedModel is also tried through its serving signature in harness run (inference only, never a load). 6: the chain of load options (stand-ins, a repaired config), each model's own stderr. 5: a load that returns no Keras model fails as predict does; the SavedModel rescue. 4: export (architecture and weights) and re-save (harness migrate's bridge); 3: file-dependent fixes (an .h5 name, safe_mode=False when trusted); the causes of 2026-11
OUTPUTS_MAX = 48 << 20  # bytes of saved outputs sent back per model (base64 on the channel)
DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "keras",
    "tf-keras",
    "tensorflow-addons",
    "jax",
    "jaxlib",
    "torch",
    "h5py",
    "numpy",
    "protobuf",
    "ml-dtypes",
)
FRAMEWORK_PATH = re.compile(r"[/\\](tensorflow|keras|tf_keras|tensorflow_addons|h5py|numpy|google[/\\]protobuf)[/\\]")


def installed_versions():
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8 has no importlib.metadata
        return {}
    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except Exception:  # noqa: BLE001 - PackageNotFoundError and broken metadata alike
            pass
    return found


def describe_exception(exc, custom_file=None):
    """Type, message, missing name, the chain, and the frames that belong to the framework."""
    info = _one(exc)
    chain = []
    seen = {id(exc)}
    link = exc.__cause__ or exc.__context__
    while link is not None and id(link) not in seen and len(chain) < 8:
        seen.add(id(link))
        chain.append(_one(link))
        link = link.__cause__ or link.__context__
    info["chain"] = chain
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        users = bool(custom_file) and frame.filename == custom_file
        if FRAMEWORK_PATH.search(frame.filename) or users:
            short = re.sub(r"^.*[/\\]site-packages[/\\]", "", frame.filename)
            frames.append({"file": short, "line": frame.lineno, "function": frame.name, "code": frame.line, "custom": users})
    info["frames"] = frames[-15:]
    return info


def _one(exc):
    info = {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc)[:4000]}
    if isinstance(exc, AttributeError):
        info["attribute"] = getattr(exc, "name", None)  # Python 3.10+; diagnosis parses the message otherwise
    if isinstance(exc, ImportError):
        info["import_name"] = exc.name
    return info


def import_framework(api):
    """(keras module, framework versions); raises what the import raises."""
    if api == "keras":
        import keras

        return keras
    if api == "tf_keras":
        import tf_keras

        return tf_keras
    import tensorflow as tf

    return tf.keras


def load_custom_objects(path):
    """The user's module: its CUSTOM_OBJECTS dict, or every class and function it defines."""
    spec = importlib.util.spec_from_file_location("harness_custom_objects", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness_custom_objects"] = module
    spec.loader.exec_module(module)
    for attr in ("CUSTOM_OBJECTS", "custom_objects"):
        if isinstance(getattr(module, attr, None), dict):
            return dict(getattr(module, attr))
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == module.__name__
    }


def keras_major(keras, api, versions):
    """The major version of the Keras that loads here ("2", "3"), or None."""
    version = getattr(keras, "__version__", None)
    if not version:
        legacy = api == "tf_keras" or (api == "tf.keras" and os.environ.get("TF_USE_LEGACY_KERAS") == "1")
        version = versions.get("tf-keras" if legacy and "tf-keras" in versions else "keras")
    version = str(version or "")
    return version.split(".")[0] if version[:1].isdigit() else None


def for_major(model, major, backend=None):
    """The model's request with the repaired config made for this Keras major (for its backend
    where one was made: "3-torch"), if any."""
    model = dict(model)
    repaired = model.pop("repaired", None)
    if isinstance(repaired, dict):
        variant = "%s-%s" % (major, backend)
        key = variant if repaired.get(variant) else major
        if repaired.get(key):
            model["repaired"] = repaired[key]
    return model


def import_plugins(names):
    done = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            done.append({"name": name, "installed": False, "ok": False})
            continue
        try:
            importlib.import_module(name)
            done.append({"name": name, "installed": True, "ok": True})
        except BaseException as exc:  # noqa: BLE001 - a broken plugin is a finding
            done.append({"name": name, "installed": True, "ok": False, "error": describe_exception(exc)})
    return done


ARCHITECTURE = "architecture.json"
WEIGHTS_NAMES = ("weights.h5", "weights.weights.h5")


def attempt(keras, path, compile_flag, objects, fix, custom_file, unsafe=False):
    start = time.time()
    record = {"fix": fix, "compile": compile_flag, "ok": False}
    kwargs = {"compile": compile_flag}
    if unsafe:
        kwargs["safe_mode"] = False
    try:
        if fix in RESCUES:
            model = serving(keras, path, fix)
        elif objects is not None:
            with keras.utils.custom_object_scope(objects):
                model = keras.models.load_model(path, **kwargs)
        else:
            model = keras.models.load_model(path, **kwargs)
        if fix not in RESCUES:
            # A SavedModel with no Keras objects (tf.saved_model.save, Keras 3's export) "loads"
            # in Keras 2 as a bare trackable object; what a user calls next raises, so it counts.
            model.predict  # noqa: B018
        record["ok"] = True
        record["model"] = model
    except BaseException as exc:  # noqa: BLE001 - every failure is data
        if isinstance(exc, KeyboardInterrupt):
            raise
        record["error"] = describe_exception(exc, custom_file)
    record["seconds"] = round(time.time() - start, 4)
    return record


ROWS = 4  # rows per generated batch
BATCHES = 3  # batch 0: edge values (a ramp over the range, zeros, the range's low and high); 1, 2: seeded random rows
BATCH_ROWS_KEY = "__harness_batch_rows__"  # in a saved batch (.npz): the rows of each batch, to call the model on each again
SEED = 0
NAME_SAFE = re.compile(r"[^A-Za-z0-9_-]")  # "." joins nested names


def natural_key(key):
    """Sort key: output_2 before output_10 (the harness's output comparison sorts with it too)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(key))]


def model_inputs(model):
    """[(name, tensor or spec)] of the model's inputs; a model that takes a dict: its keys."""
    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        struct = getattr(model, "_nested_inputs", None)
    if isinstance(struct, dict):
        return [(str(k), struct[k]) for k in sorted(struct, key=natural_key)], True
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    return [(str(getattr(t, "name", "input_%d" % n)), t) for n, t in enumerate(inputs)], False


def _integer_range(model, tensor):
    """[low, high) of the ids an input feeds into an Embedding (or a CategoryEncoding), or None."""
    for layer in getattr(model, "layers", None) or []:
        kind = type(layer).__name__
        if kind not in ("Embedding", "CategoryEncoding"):
            continue
        try:
            source = layer.input
        except Exception:  # noqa: BLE001 - a layer used more than once has no single input
            continue
        if source is tensor or (getattr(source, "name", None) is not None and getattr(source, "name", None) == getattr(tensor, "name", "")):
            high = getattr(layer, "input_dim", None) if kind == "Embedding" else getattr(layer, "num_tokens", None)
            if high:
                return 0, int(high)
    return None


LENGTHS = (4, 32, 256, 2048, 16384)  # tried in turn for the dimensions an input leaves open
MAX_ELEMENTS = 1 << 24  # per input: a longer length is not tried


def generated_input(model, length=4, number=0):
    """Batch `number` shaped from the model's inputs, and what it is: for each input its name,
    shape, dtype and the range of its values. Batch 0 holds edge values (a ramp over the range,
    zeros, the range's low, its high); batches 1 to BATCHES-1 are uniform random rows from
    numpy's RandomState(SEED + number - 1). Integer ids stay inside [0, input_dim) of the
    Embedding they feed; a fixed batch size is kept; a dimension the input leaves open gets
    `length`."""
    import numpy as np

    named, as_dict = model_inputs(model)
    random = np.random.RandomState(SEED + max(number - 1, 0))  # batch 0 draws nothing
    arrays, spec = [], []
    for name, tensor in named:
        dims = tuple(getattr(tensor, "shape", ()) or ())
        rows = dims[0] if dims and dims[0] else ROWS
        shape = [rows] + [d if d else length for d in dims[1:]]
        dtype = getattr(getattr(tensor, "dtype", None), "name", None) or str(getattr(tensor, "dtype", "float32"))
        dtype = {"string": "str"}.get(dtype, dtype)
        per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        ids = _integer_range(model, tensor)
        if dtype.startswith(("int", "uint")) or ids:
            low, high = ids or (0, 2)
            edges = [np.arange(per_row) % (high - low) + low, np.zeros(per_row), np.full(per_row, low), np.full(per_row, high - 1)]
            drawn = lambda: random.randint(low, high, size=per_row)  # noqa: E731
            kind = dtype if dtype.startswith(("int", "uint")) else "float32"  # ids a float input carries to its Embedding
            values = {"low": low, "high": high}
        elif dtype == "bool":
            edges = [np.arange(per_row) % 2, np.zeros(per_row), np.ones(per_row)]
            drawn, kind, values = (lambda: random.randint(0, 2, size=per_row)), "bool", {}
        elif dtype == "str":
            edges = [np.array(["a"] * per_row), np.array([""] * per_row)]
            drawn, kind, values = (lambda: np.array([random.choice(list("abcdefgh")) for _ in range(per_row)])), "str", {}
        else:
            edges = [np.linspace(-1.0, 1.0, per_row), np.zeros(per_row), np.full(per_row, -1.0), np.ones(per_row)]
            drawn = lambda: random.uniform(-1.0, 1.0, size=per_row)  # noqa: E731
            kind, values = (dtype if dtype.startswith(("float", "bfloat")) else "float32"), {"low": -1.0, "high": 1.0}
        made = [edges[n % len(edges)] for n in range(shape[0])] if number == 0 else [drawn() for _ in range(shape[0])]
        arrays.append(np.stack(made).reshape(shape).astype(kind if kind != "bfloat16" else "float32"))
        batches = [{"rows": rows, "values": "edges: a ramp, zeros, low, high"}] + [
            {"rows": rows, "values": "uniform", "seed": SEED + n} for n in range(BATCHES - 1)
        ]
        spec.append(dict({"name": name, "shape": shape, "dtype": kind, "seed": SEED, "batches": batches}, **values))
    if as_dict:
        return dict(zip([n for n, _ in named], arrays)), spec
    return (arrays if len(arrays) > 1 else arrays[0]), spec


def generated_batches(model, length=4):
    """The BATCHES batches generated_input makes, and their spec."""
    made = [generated_input(model, length, n) for n in range(BATCHES)]
    return [b for b, _ in made], made[0][1]


def joined_outputs(per_batch):
    """The named outputs of several calls as one set: each output's arrays joined along the
    batch axis (a scalar output: stacked, one value per batch)."""
    import numpy as np

    names = [n for n, _ in per_batch[0]]
    if any([n for n, _ in outs] != names for outs in per_batch):
        raise ValueError("the model returned different outputs for different batches")
    joined = []
    for k, name in enumerate(names):
        arrays = [outs[k][1] for outs in per_batch]
        if all(a.ndim >= 1 and a.shape[1:] == arrays[0].shape[1:] for a in arrays):
            joined.append((name, np.concatenate(arrays, axis=0)))
        elif all(a.shape == arrays[0].shape for a in arrays):
            joined.append((name, np.stack(arrays)))  # no batch axis (a scalar): one value per batch
        else:
            raise ValueError("output %r has a different shape in each batch" % name)
    return joined


def split_batch(batch, rows):
    """A batch joined by rows (a saved .npz's arrays, or a dict of them) cut back into the calls it came from."""
    import numpy as np

    bounds = list(np.cumsum(rows)[:-1])
    if isinstance(batch, dict):
        parts = {k: np.split(v, bounds) for k, v in batch.items()}
        return [{k: parts[k][n] for k in batch} for n in range(len(rows))]
    if isinstance(batch, list):
        parts = [np.split(v, bounds) for v in batch]
        return [[p[n] for p in parts] for n in range(len(rows))]
    return np.split(batch, bounds)


def first_array(batch):
    return next(iter(batch.values())) if isinstance(batch, dict) else batch[0] if isinstance(batch, list) else batch


def joined_batch(batches):
    """The batches as one, by rows (what the target of a migration is given)."""
    import numpy as np

    first = batches[0]
    if isinstance(first, dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([b[n] for b in batches]) for n in range(len(first))]
    return np.concatenate(batches)


def named_outputs(out):
    """[(name, array)] of whatever a model returned: one tensor is "0", a list or tuple its
    indices, a dict its keys (in natural order), nested ones joined by "."; names are kept
    to a safe alphabet and 64 characters (they come from the model)."""

    found = []

    def walk(node, name, depth):
        if depth > 8 or len(found) > 256:
            raise ValueError("the model's outputs are nested more than 8 deep or number more than 256")
        if isinstance(node, dict):
            for key in sorted(node, key=natural_key):
                walk(node[key], (name + "." if name else "") + NAME_SAFE.sub("_", str(key))[:64], depth + 1)
        elif isinstance(node, (list, tuple)):
            for n, value in enumerate(node):
                walk(value, (name + "." if name else "") + str(n), depth + 1)
        else:
            found.append((name or "0", as_array(node)))

    walk(out, "", 0)
    seen, unique = {}, []
    for name, array in found:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else "%s~%d" % (name, seen[name]), array))
    return unique


def as_array(value):
    """A backend's tensor as a numpy array: torch's carry their autograd graph and refuse
    numpy() until detached (Keras 3 on torch: "Can't call numpy() on Tensor that requires
    grad"), and live on a device; jax's, TensorFlow's and numpy's convert as they are."""
    import numpy as np

    detach = getattr(value, "detach", None)
    if callable(detach) and hasattr(value, "requires_grad"):  # a torch.Tensor (numpy arrays have neither)
        value = detach().cpu()
    return np.asarray(value)


WEIGHTS_LISTED = 1000  # per-weight digests sent up to this many (the set's digest always)


def weight_digests(model):
    """What the model's weights are, to compare across Keras releases whose weight names and
    order differ: each weight's shape and the sha256 of its values as float64 (an int32 or
    float16 weight a repair made float32 still compares equal when its values are), as a sorted
    multiset, and the digest of that set. None for what has no weights list (a signature)."""
    import hashlib


    weights = getattr(model, "weights", None)
    if weights is None:
        return None
    items = []
    for w in weights:
        value = as_array(w.numpy() if hasattr(w, "numpy") else w)
        data = value.astype("float64") if value.dtype.kind in "biuf" else value
        items.append("%s:%s" % ("x".join(str(d) for d in value.shape) or "scalar", hashlib.sha256(data.tobytes()).hexdigest()[:16]))
    items.sort()
    digest = hashlib.sha256("\n".join(items).encode()).hexdigest()
    return {"count": len(items), "set": digest, "items": items if len(items) <= WEIGHTS_LISTED else None}


def _call_generated(model):
    """(named outputs, batches, spec) from calling the model on each batch made from its inputs;
    where an input leaves a dimension open and the call fails (a Cropping1D of 5000 steps each
    side), longer lengths are tried in turn (LENGTHS, each input under MAX_ELEMENTS); the last
    failure is raised."""
    import numpy as np

    named, _ = model_inputs(model)
    left_open = any(d is None for _, t in named for d in tuple(getattr(t, "shape", ()) or ())[1:])
    failed = None
    for length in LENGTHS:
        batch, spec = generated_input(model, length)
        if length != LENGTHS[0] and max(int(np.prod(i["shape"])) for i in spec) > MAX_ELEMENTS:
            break
        try:
            first = named_outputs(model(batch, training=False))
        except Exception as exc:  # noqa: BLE001 - a model that wants another length; the last one is raised
            failed = exc
            if not left_open:
                break  # nothing is left open: another length changes nothing
            continue
        batches, spec = generated_batches(model, length)
        outs = [first] + [named_outputs(model(b, training=False)) for b in batches[1:]]
        return joined_outputs(outs), batches, spec
    raise failed


def run_inference(model, input_file=None, save_to=None, save_input=None):
    """Run the model on the user's .npy/.npz, or on the batches made from its inputs
    (generated_input); save the outputs by name (and the batches made, joined by rows, to
    `save_input`). A saved batch that names its rows (BATCH_ROWS_KEY: harness migrate's source
    batches) is called batch by batch, as the source was. Returns (a summary of each output,
    what the input was)."""
    import numpy as np

    if input_file:
        loaded = np.load(input_file, allow_pickle=False)
        keys = [k for k in loaded.files if k != BATCH_ROWS_KEY] if hasattr(loaded, "files") else []
        rows = [int(r) for r in loaded[BATCH_ROWS_KEY]] if keys and BATCH_ROWS_KEY in loaded.files else None
        arrays = [loaded[k] for k in keys] if keys else [loaded]
        named, as_dict = model_inputs(model)
        if as_dict and sorted(keys) == sorted(n for n, _ in named):  # saved by name (the source's own batch): by name
            batch = {k: loaded[k] for k in keys}
        else:
            batch = arrays if len(arrays) > 1 else arrays[0]
        spec = [{"name": "from %s" % os.path.basename(input_file), "shape": list(a.shape), "dtype": str(a.dtype)} for a in arrays]
        if rows and all(a.ndim and a.shape[0] == sum(rows) for a in arrays):
            outs = joined_outputs([named_outputs(model(b, training=False)) for b in split_batch(batch, rows)])
            for item in spec:
                item["batches"] = [{"rows": r} for r in rows]
        else:
            outs = named_outputs(model(batch, training=False))
    else:
        outs, batches, spec = _call_generated(model)
        if save_input:  # harness migrate gives the target the source's own batches
            joined = joined_batch(batches)
            rows = np.array([len(first_array(b)) for b in batches])
            if isinstance(joined, dict):
                np.savez(save_input, **dict(joined, **{BATCH_ROWS_KEY: rows}))
            else:
                np.savez(save_input, *(joined if isinstance(joined, list) else [joined]), **{BATCH_ROWS_KEY: rows})
    if save_to:
        np.savez(save_to, **dict(outs))
    summary = []
    for name, o in outs:
        a = np.asarray(o, dtype="float64") if o.dtype.kind in "biuf" else np.zeros(0)
        summary.append(
            {
                "name": name,
                "shape": list(o.shape),
                "mean": float(a.mean()) if a.size else None,
                "absmax": float(np.abs(a).max()) if a.size else None,
                "finite": bool(np.isfinite(a).all()),
                "head": [float(x) for x in a.ravel()[:8]],
            }
        )
    return summary, spec


AS_H5 = "copied to .h5"
UNSAFE = "safe_mode=False"
TFSM = "TFSMLayer"
SAVED_MODEL_LOAD = "tf.saved_model.load"
RESCUES = (TFSM, SAVED_MODEL_LOAD)  # inference-only ways into a SavedModel (harness migrate's rescue)


class Serving(object):
    """A SavedModel's serving signature, called as run_inference calls a model: `inputs`
    (the signature's, in the order of their names) and a call on a batch; its dict of
    outputs comes back as it is (named_outputs keeps the names)."""

    def __init__(self, function, call):
        specs = function.structured_input_signature[1]
        self.names = sorted(specs)
        self.inputs = [specs[n] for n in self.names]
        self._inputs_struct = dict(zip(self.names, self.inputs))  # called with a dict keyed by the signature's names
        self.call = call

    def __call__(self, batch, training=False):
        named = batch if isinstance(batch, dict) else dict(zip(self.names, batch if isinstance(batch, list) else [batch]))
        return self.call(named)  # a dict of outputs stays a dict: outputs are compared by name


def serving(keras, path, how):
    """The SavedModel's serving_default signature as a user reaches it for inference: through
    Keras 3's TFSMLayer, or through tf.saved_model.load in any TensorFlow."""
    if how == TFSM:
        layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
        function = layer.call_endpoint_fn
        # one input: called as a layer is; several: by name, as TFSMLayer itself passes keywords on
        return Serving(function, lambda named: layer(*named.values()) if len(named) == 1 else function(**named))
    import tensorflow as tf

    function = tf.saved_model.load(path).signatures["serving_default"]
    return Serving(function, lambda named: function(**named))


CUSTOM = "custom_objects"
STANDIN = "stand-in functions"
COMPILE = "compile=False"
REPAIRED = "repaired config"
# The load options, in the order the chain tries them: nothing that changes the file before
# what changes only the call; running the file's code (safe_mode=False) last.
OPTIONS = (AS_H5, CUSTOM, STANDIN, COMPILE, REPAIRED, UNSAFE)


def fix_name(options):
    """An attempt's options as one name: "custom_objects+compile=False"."""
    return "+".join(options) or None


def candidates(request, model=None):
    """The load options that apply to this file and request, in OPTIONS order.

    An HDF5 file under a .keras name is tried under an .h5 name (Keras 3 picks the format by
    the extension); the user's custom objects when given; stand-ins for functions the file
    names and nobody defines (an activation saved as '<lambda>': does anything else block?);
    compile=False for a compiled load; the config repaired by the harness's rules for this
    Keras major (GRU reset_after, Keras 1 argument names, ...); safe_mode=False (it runs the
    file's code) only for a file the user said they trust.
    """
    model = model or {}
    if not request.get("fixes", True):
        return []
    found = []
    if model.get("format") == "h5" and str(model.get("path", "")).endswith(".keras"):
        found.append(AS_H5)
    if request.get("custom_objects"):
        found.append(CUSTOM)
    if model.get("standins"):
        found.append(STANDIN)
    if request.get("compile", True):
        found.append(COMPILE)
    if model.get("repaired"):
        found.append(REPAIRED)
    if request.get("trusted"):
        found.append(UNSAFE)
    return found


def attempt_plan(request, model=None):
    """(fix, compile flag, with the user's custom objects) of the attempts every run makes
    whatever happens: the plain load, and the inference-only rescue of a SavedModel (harness
    migrate asks for it). The chain between them is decided as it goes (load_model_attempts)."""
    model = model or {}
    plan = [(None, bool(request.get("compile", True)), False)]
    if (model.get("rescue") or model.get("serve")) and model.get("format") == "savedmodel":
        plan += [(TFSM, False, False), (SAVED_MODEL_LOAD, False, False)]
    return plan


def blocker(record):
    # type: (typing.Mapping[str, typing.Any]) -> tuple
    """What an attempt failed on, as a comparable key: the exception type and message head."""
    error = record.get("error") or {}
    if not error:
        return ("timeout",) if record.get("timeout") else ("crash",) if record.get("crash") else ("?",)
    return (error.get("type"), str(error.get("message", ""))[:200])


def export_model(keras, model, workdir, key, custom_file=None, serving=False):
    """The loaded model's architecture (JSON) and weights, for harness migrate's bridge; with
    `serving` (the file is a SavedModel) also the model exported for serving (model.export,
    Keras 2.13+ and 3), zipped: a SavedModel whose own signature a newer TensorFlow cannot read
    (a pre-2.5 one: "'_UserObject' object has no attribute 'add_slot'") may read this one."""
    keras3 = str(getattr(keras, "__version__", "2")).startswith("3")
    done = {"ok": True}
    try:
        with open(os.path.join(workdir, "export-%s-%s" % (key, ARCHITECTURE)), "w") as f:
            f.write(model.to_json())
        model.save_weights(os.path.join(workdir, "export-%s-%s" % (key, WEIGHTS_NAMES[1] if keras3 else WEIGHTS_NAMES[0])))
    except BaseException as exc:  # noqa: BLE001
        done = {"ok": False, "error": describe_exception(exc, custom_file)}
    if serving:
        try:
            import shutil
            import zipfile

            folder = os.path.join(workdir, "serving-%s" % key)
            model.export(folder)
            with zipfile.ZipFile(os.path.join(workdir, FILE_ROLES["serving"] % key), "w") as archive:
                for root, _, names in os.walk(folder):
                    for name in sorted(names):
                        path = os.path.join(root, name)
                        if os.path.isfile(path) and not os.path.islink(path):
                            archive.write(path, os.path.relpath(path, folder))
            shutil.rmtree(folder, ignore_errors=True)
            done["serving"] = {"ok": True}
        except BaseException as exc:  # noqa: BLE001
            done["serving"] = {"ok": False, "error": describe_exception(exc, custom_file)}
    return done


def save_rebuilt(model, workdir, key, save_as, custom_file=None):
    """A loaded model saved again in the environment's own format (.keras or .h5): harness migrate's bridge."""
    try:
        model.save(os.path.join(workdir, "rebuilt-%s.%s" % (key, "keras" if save_as == "keras" else "h5")))
        return {"ok": True}
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": describe_exception(exc, custom_file)}


def h5_alias(model, workdir):
    """The model under an .h5 name in the cell's scratch (a symlink: nothing is copied)."""
    alias = os.path.join(workdir, "%s.h5" % model["key"])
    if not os.path.lexists(alias):
        os.symlink(model["path"], alias)
    return alias


def _standin(x, *args, **kwargs):
    """What a function the file names but nobody defines is replaced by to see whether
    anything else blocks the load (the identity: what the model then computes is not the
    model's, so a load with a stand-in never counts as loaded)."""
    return x


def one_attempt(keras, model, request, options):
    """One attempt with `options` (a tuple of OPTIONS, or one of RESCUES), in a process that
    has imported the framework and nothing of the user's: the environment's plugins (as a
    careful user would import them), the user's custom objects only when this attempt is
    about them, the load, and inference when it loads for real."""
    fix = fix_name(options)
    rescue = fix if fix in RESCUES else None
    compile_flag = bool(request.get("compile", True)) and COMPILE not in options and not rescue
    custom_file = request.get("custom_objects")
    result = {"plugins": import_plugins(model.get("plugins", []))}
    objects = None
    if CUSTOM in options:
        try:
            objects = load_custom_objects(custom_file)
            result["custom_objects"] = {"ok": True, "names": sorted(objects)}
        except BaseException as exc:  # noqa: BLE001
            result["custom_objects"] = {"ok": False, "error": describe_exception(exc, custom_file)}
            result["attempt"] = {"fix": fix, "compile": compile_flag, "ok": False, "skipped": "the custom objects module did not import"}
            result["peak_rss_mb"] = peak_rss_mb()
            return result
    if STANDIN in options:
        objects = dict(objects or {})
        for name in model.get("standins") or []:
            objects.setdefault(name, _standin)
    path = model["path"]
    if REPAIRED in options:
        path = model["repaired"]
    elif AS_H5 in options:
        path = h5_alias(model, request["workdir"])
    if rescue == TFSM and not hasattr(keras.layers, TFSM):
        result["attempt"] = {"fix": fix, "compile": compile_flag, "ok": False, "skipped": "this Keras has no TFSMLayer (Keras 3 has)"}
        result["peak_rss_mb"] = peak_rss_mb()
        return result
    record = attempt(keras, path, compile_flag, objects, fix, custom_file, unsafe=UNSAFE in options)
    served = bool(rescue) and not model.get("rescue")
    if served:
        # harness run's check of its own advice ("for inference, call the serving signature"):
        # the signature must answer a batch; it is never the model loading (load_model failed)
        record["serving"] = True
        if record["ok"]:
            try:
                run_inference(record["model"], request.get("input"))
            except BaseException as exc:  # noqa: BLE001
                record["ok"] = False
                record["error"] = describe_exception(exc, custom_file)
    real = record["ok"] and STANDIN not in options and not served
    if STANDIN in options:
        record["standin"] = True
    if real and request.get("inference"):
        try:
            save_to = os.path.join(request["workdir"], "outputs-%s.npz" % model["key"])
            made = os.path.join(request["workdir"], FILE_ROLES["input"] % model["key"]) if request.get("export") else None
            summary, given = run_inference(record["model"], request.get("input"), save_to, made)
            result["inference"] = {"ok": True, "outputs": summary, "input": given, "saved": os.path.basename(save_to)}
            if not rescue:
                result["inference"]["weights"] = weight_digests(record["model"])
        except BaseException as exc:  # noqa: BLE001
            result["inference"] = {"ok": False, "error": describe_exception(exc, custom_file)}
    if real and request.get("export") and not rescue:
        result["export"] = export_model(
            keras, record["model"], request["workdir"], model["key"], custom_file, serving=model.get("format") == "savedmodel"
        )
    if real and model.get("resave") and request.get("save_as") and not rescue:
        result["rebuilt"] = save_rebuilt(record["model"], request["workdir"], model["key"], request["save_as"], custom_file)
    record.pop("model", None)
    result["attempt"] = record
    result["peak_rss_mb"] = peak_rss_mb()
    return result


STDERR_KEEP = 12000  # characters of a model's own stderr sent back with its result


def load_model_attempts(keras, model, request, run_attempt):
    """The plain load, then a chain of load options until one loads; every attempt recorded.

    The chain: each option that applies (candidates) is tried on top of those kept so far;
    an option that moved the load past its blocker (the attempt failed on something else)
    is kept, so a file that needs custom objects *and* compile=False is tried with both,
    and the attempts show each blocker in turn. `run_attempt(options, deadline)` runs one
    attempt (in a fresh fork where the platform has fork) and returns its result, or
    {"timeout": True} / {"crash": ...}. The model's timeout covers all its attempts.
    """
    deadline = time.time() + float(request.get("timeout", 300))
    merged = {"attempts": []}
    stderr = []

    def run(options):
        """(what the attempt sent, its entry in the attempts list)."""
        out = run_attempt(options, deadline)
        if out.get("stderr"):
            stderr.append("--- %s\n%s" % (fix_name(options) or "as is", out["stderr"]))
        if "timeout" in out or "crash" in out:
            return out, dict(((k, v) for k, v in out.items() if k != "stderr"), fix=fix_name(options), ok=False)
        merged.setdefault("plugins", out.get("plugins", []))
        if "custom_objects" in out:
            merged["custom_objects"] = out["custom_objects"]
        for extra in ("inference", "export", "rebuilt"):
            if extra in out:
                merged[extra] = out[extra]
        merged["peak_rss_mb"] = max(merged.get("peak_rss_mb") or 0, out.get("peak_rss_mb") or 0) or None
        return out, out["attempt"]

    def finish():
        if stderr:
            merged["stderr"] = "\n".join(stderr)[-STDERR_KEEP:]
        return merged

    out, first = run(())
    if "timeout" in out or "crash" in out:
        if stderr:
            out["stderr"] = "\n".join(stderr)[-STDERR_KEEP:]
        return out  # the plain load itself hung or died: that is the outcome
    merged["attempts"].append(first)
    if first.get("ok"):
        return finish()
    kept, last = [], blocker(first)
    for option in candidates(request, model):
        if option == CUSTOM and (merged.get("custom_objects") or {}).get("ok") is False:
            continue
        if option == UNSAFE and not any("safe_mode" in json.dumps(a.get("error") or {}) for a in merged["attempts"]):
            continue  # nothing was refused for safety: running the file's code would prove nothing
        if time.time() >= deadline:
            break
        options = tuple(o for o in OPTIONS if o in kept or o == option)
        out, record = run(options)
        merged["attempts"].append(record)
        if "timeout" in out:
            return finish()
        if record.get("ok"):
            return finish()
        if record.get("skipped") or "crash" in out:
            continue
        now = blocker(record)
        if now != last:
            kept.append(option)
            last = now
    for fix, _, _ in attempt_plan(request, model)[1:]:  # the inference-only rescue, last
        if time.time() >= deadline:
            break
        out, record = run((fix,))
        merged["attempts"].append(record)
        if "timeout" in out or record.get("ok"):
            break
    return finish()


def load_one(keras, model, request):
    """Every attempt in this process, one after another (where there is no fork: the user's
    custom objects, once imported for a fix, stay imported; with fork each starts clean)."""

    def here(options, deadline):
        return one_attempt(keras, model, request, options)

    return load_model_attempts(keras, model, request, here)


def peak_rss_mb():
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, default=str)
    os.replace(tmp, path)


class Channel(object):
    """The result channel: the original stdout, moved out of the way of prints."""

    def __init__(self):
        sys.stdout.flush()
        self.fd = os.dup(1)
        os.dup2(2, 1)  # fd 1 (print, C libraries) now writes to stderr
        self.stream = os.fdopen(self.fd, "w")
        Channel.fd_in_use = self.fd

    fd_in_use = None

    def send(self, kind, **fields):
        fields["kind"] = kind
        self.stream.write(json.dumps(fields, default=str) + "\n")
        self.stream.flush()


def apply_limits(limits):
    """Resource limits for this process and all it starts, set before any model loads.

    A model's code cannot raise them again: the sandbox holds no capability.
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return {}
    names = {"file_size": "RLIMIT_FSIZE", "processes": "RLIMIT_NPROC", "address_space": "RLIMIT_AS", "core": "RLIMIT_CORE"}
    applied = {}
    for key, value in sorted(dict(limits or {}, core=0).items()):
        which = getattr(resource, names.get(key, ""), None)
        if which is None or value is None:
            continue
        try:
            resource.setrlimit(which, (int(value), int(value)))
            applied[key] = int(value)
        except (ValueError, OSError):
            pass
    return applied


def die_with_parent():
    """Be killed when the process that started this one dies (Linux), even by SIGKILL.

    A harness killed hard (kill -9, a Ray worker that dies mid-cell, a cancelled task)
    must leave no probe behind: nobody is left to kill its process group.
    """
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):  # not Linux: the harness kills the process group instead
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def load_in_children(keras, model, request):
    """Each attempt in its own fork of the process that imported the framework: every attempt
    starts from the same clean state (nothing of the user's imported, no class registered by
    an earlier attempt), and the import is still paid once."""

    def forked(options, deadline):
        return in_child(lambda: one_attempt(keras, model, request, options), deadline)

    return load_model_attempts(keras, model, request, forked)


def in_child(work, deadline):
    """Run `work()` in a forked child; its JSON-able result, or {"timeout"} / {"crash"},
    with the tail of what the child printed under "stderr".

    The child sends its result through a pipe, not a file: a model that fills the scratch
    folder cannot keep its own outcome from being reported. What it prints goes through a
    second pipe that this process drains as it comes (a model that prints a gigabyte is
    never blocked, and fills nothing): a bounded head goes on to the cell's log, the tail
    stays with the model's own result, so one model's warnings are never another's.
    """
    read_fd, write_fd = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.close(err_r)
        die_with_parent()
        if Channel.fd_in_use is not None:  # a model loaded here reports through its parent only
            os.close(Channel.fd_in_use)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(err_w, 1)
        os.dup2(err_w, 2)
        os.close(err_w)
        code = 0
        try:
            data = memoryview(json.dumps(work(), default=str).encode())
            while data:
                data = data[os.write(write_fd, data) :]
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    os.close(err_w)
    printed = Printed()
    try:
        received, status = _collect(pid, read_fd, err_r, printed, deadline)
    finally:
        os.close(read_fd)
        os.close(err_r)
    if status is None:
        out = {"timeout": True}
    elif os.WIFSIGNALED(status):
        out = {"crash": {"signal": os.WTERMSIG(status)}}
    else:
        try:
            out = json.loads(b"".join(received).decode("utf-8", "replace"))
            if not isinstance(out, dict):
                raise ValueError("not an object")
        except ValueError:
            out = {"crash": {"exit_code": os.WEXITSTATUS(status)}}
    if printed.tail:
        out["stderr"] = printed.text()
    return out


LOG_KEEP = 256 << 10  # bytes of one attempt's output passed on to the cell's log (its head)


class Printed(object):
    """What an attempt printed: the head passed on to this process's stderr (the cell's log),
    the tail kept for the model's result, the rest counted and dropped."""

    def __init__(self):
        self.passed = 0
        self.dropped = 0
        self.tail = b""

    def add(self, chunk):
        if self.passed < LOG_KEEP:
            part = chunk[: LOG_KEEP - self.passed]
            try:
                os.write(2, part)
            except OSError:
                pass
            self.passed += len(part)
            self.dropped += len(chunk) - len(part)
        else:
            self.dropped += len(chunk)
        self.tail = (self.tail + chunk)[-STDERR_KEEP * 2 :]

    def text(self):
        if self.dropped:
            try:
                os.write(2, ("\n[harness: %d more bytes of this load's output not logged]\n" % self.dropped).encode())
            except OSError:
                pass
        return self.tail.decode("utf-8", "replace")[-STDERR_KEEP:]


def _collect(pid, read_fd, err_fd, printed, deadline, limit=64 << 20):
    """(what the child sent, its wait status), or (.., None) when the deadline passed and it was killed.

    Reads as it comes (a large result must not block the child on a full pipe); once the
    child has exited, what is left in the pipes is drained without waiting for an EOF that
    a process the model started (holding a pipe) might never give. `err_fd`: the child's
    output, handed to `printed` as it comes.
    """
    import select

    chunks, size, status = [], 0, None
    open_fds = [read_fd, err_fd]
    while True:
        ready = select.select(open_fds, [], [], 0.05)[0] if open_fds else []
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.remove(fd)
            elif fd == read_fd:
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
            else:
                printed.add(chunk)
        # asked every round, data or not: a process the model started may print forever
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if not open_fds:
            time.sleep(0.02)
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return chunks, None
    _drain(read_fd, limit - size, chunks.append)
    _drain(err_fd, (64 << 20) - 1, printed.add)
    return chunks, status


def _drain(fd, room, take):
    """What is left in a pipe, read without blocking (a stray process may hold it open, so no
    EOF is waited for), chunk by chunk to `take` while `room` bytes are left."""
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    while room >= 0:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EAGAIN: nothing more
            return
        if not chunk:
            return
        room -= len(chunk)
        take(chunk)


def read_outputs(workdir, key):
    """The outputs a load saved, as base64, or why they are not sent."""
    path = os.path.join(workdir, "outputs-%s.npz" % key)
    if not os.path.exists(path):
        return None, None
    return read_file(path, "the outputs", "exceed")


# Files a load may send back besides its outputs: role -> the name it has in the scratch folder.
FILE_ROLES = {
    "architecture": "export-%s-" + ARCHITECTURE,
    "weights": "export-%s-" + WEIGHTS_NAMES[0],
    "weights3": "export-%s-" + WEIGHTS_NAMES[1],
    "rebuilt": "rebuilt-%s.keras",
    "rebuilt_h5": "rebuilt-%s.h5",
    "input": "input-%s.npz",  # the batch the probe made (harness migrate's source: the target gets the same)
    "serving": "serving-%s.zip",  # a SavedModel's model exported again for serving (export_model)
}


def read_file(path, what=None, verb="exceeds"):
    """A file as base64, or why it is not sent (larger than the channel carries)."""
    import base64

    size = os.path.getsize(path)
    if size > OUTPUTS_MAX:
        return None, "%s (%d bytes) %s the %d bytes the probe sends back" % (what or os.path.basename(path), size, verb, OUTPUTS_MAX)
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii"), None


def send_model(channel, workdir, key, data):
    encoded, why = read_outputs(workdir, key)
    if why and isinstance(data.get("inference"), dict):
        data["inference"]["not_sent"] = why
    files = {}
    for role, pattern in sorted(FILE_ROLES.items()):
        path = os.path.join(workdir, pattern % key)
        if os.path.isfile(path) and not os.path.islink(path):
            files[role], not_sent = read_file(path)
            if not_sent:
                del files[role]
                data.setdefault("not_sent", []).append(not_sent)
    channel.send("model", key=key, result=data)
    if encoded is not None:
        channel.send("outputs", key=key, npz=encoded)
    for role, content in files.items():
        channel.send("file", key=key, role=role, data=content)


@contextlib.contextmanager
def collector_paused():
    """The framework imported without the cyclic garbage collector, which is back before any model loads.

    TensorFlow's import makes some 400,000 objects and the collector walked them again every
    700 allocations: TF 2.21's import took 2.1 s here, 1.6 s without it (the same modules,
    2 MiB more at the peak). No model code runs in the import. What it made is then frozen
    (gc.freeze, as one does before forking), so the loads, each in a fork, start with the
    collector on and do not walk or copy the framework's objects.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if hasattr(gc, "freeze"):
            gc.freeze()
        if was_on:
            gc.enable()


def not_dumpable():
    """No /proc/<pid>/fd or ptrace access to this process from the loads it forks."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE
    except (AttributeError, OSError):
        pass


def main(argv):
    die_with_parent()
    channel = Channel()
    not_dumpable()
    with open(argv[1]) as f:
        request = json.load(f)
    limits = apply_limits(request.get("limits"))
    workdir = request["workdir"]
    if not os.path.isdir(workdir):
        os.makedirs(workdir)
    out = request.get("out")
    result = {
        "probe_version": PROBE_VERSION,
        "python": sys.version.split()[0],
        "api": request.get("api", "tf.keras"),
        "pid": os.getpid(),
        "models": {},
        "limits": limits,
    }
    result["versions"] = installed_versions()
    channel.send("start", **{k: v for k, v in result.items() if k != "models"})
    start = time.time()
    try:
        with collector_paused():
            keras = import_framework(result["api"])
        result["import"] = {"ok": True, "seconds": round(time.time() - start, 4), "keras_version": getattr(keras, "__version__", None)}
        backend = getattr(getattr(keras, "config", None), "backend", None)  # Keras 3: tensorflow, jax or torch
        if callable(backend):
            try:
                result["import"]["backend"] = str(backend())
            except Exception:  # noqa: BLE001 - a Keras without it: no backend said
                pass
    except BaseException as exc:  # noqa: BLE001 - a broken framework is the finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["import"] = {"ok": False, "seconds": round(time.time() - start, 4), "error": describe_exception(exc)}
        channel.send("import", **{"import": result["import"]})
        if out:
            write_json(out, result)
        return 0
    channel.send("import", **{"import": result["import"]})  # recorded even if a load later kills the process
    major = keras_major(keras, result["api"], result["versions"])
    models = [for_major(m, major, result["import"].get("backend")) for m in request["models"]]
    # Every load in a forked child, one model too: its deadline is enforced here and this
    # process, which holds the channel, never runs a model's code.
    shared = hasattr(os, "fork") and request.get("fork", True)
    for model in models:
        if shared:
            data = load_in_children(keras, model, request)
        else:
            data = load_one(keras, model, request)
        result["models"][model["key"]] = data
        send_model(channel, workdir, model["key"], data)
        if out:
            write_json(out, result)
    result["seconds"] = round(time.time() - start, 4)
    channel.send("done", seconds=result["seconds"])
    if out:
        write_json(out, result)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # The result is on disk; skip the interpreter's teardown, which for TensorFlow costs
    # up to a second per cell and can hang on its thread pools.
    os._exit(code)
