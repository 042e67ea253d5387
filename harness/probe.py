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

PROBE_VERSION = 5  # 5: a load that returns no Keras model fails as predict does; the SavedModel rescue. 4: export (architecture and weights) and re-save (harness migrate's bridge); 3: file-dependent fixes (an .h5 name, safe_mode=False when trusted); the causes of 2026-11
OUTPUTS_MAX = 48 << 20  # bytes of saved outputs sent back per model (base64 on the channel)
DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "keras",
    "tf-keras",
    "tensorflow-addons",
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


def run_inference(model, input_file=None, save_to=None):
    """Run the model on a deterministic input (or the user's .npy/.npz); save the outputs."""
    import numpy as np

    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    if input_file:
        loaded = np.load(input_file, allow_pickle=False)
        batch = [loaded[k] for k in loaded.files] if hasattr(loaded, "files") else [loaded]
    else:
        batch = []
        for tensor in inputs:
            shape = [1 if i == 0 else (d if d else 4) for i, d in enumerate(tuple(tensor.shape))]
            size = int(np.prod(shape))
            batch.append(np.linspace(-1.0, 1.0, size, dtype="float32").reshape(shape))
    out = model(batch if len(batch) > 1 else batch[0], training=False)
    outs = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    if save_to:
        np.savez(save_to, *outs)
    summary = []
    for o in outs:
        a = np.asarray(o, dtype="float64")
        summary.append(
            {
                "shape": list(a.shape),
                "mean": float(a.mean()),
                "absmax": float(np.abs(a).max()),
                "finite": bool(np.isfinite(a).all()),
                "head": [float(x) for x in a.ravel()[:8]],
            }
        )
    return summary


AS_H5 = "copied to .h5"
UNSAFE = "safe_mode=False"
TFSM = "TFSMLayer"
SAVED_MODEL_LOAD = "tf.saved_model.load"
RESCUES = (TFSM, SAVED_MODEL_LOAD)  # inference-only ways into a SavedModel (harness migrate's rescue)


class Serving(object):
    """A SavedModel's serving signature, called as run_inference calls a model: `inputs`
    (the signature's, in the order of their names) and a call on a batch; a dict of
    outputs comes back in the order of its names (output_2 before output_10)."""

    def __init__(self, function, call):
        specs = function.structured_input_signature[1]
        self.names = sorted(specs)
        self.inputs = [specs[n] for n in self.names]
        self.call = call

    def __call__(self, batch, training=False):
        named = dict(zip(self.names, batch if isinstance(batch, list) else [batch]))
        out = self.call(named)
        if isinstance(out, dict):
            return [out[k] for k in sorted(out, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)])]
        return out


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


def attempt_plan(request, model=None):
    """(fix, compile flag, with the user's custom objects) for the plain load, then the fixes.

    Two fixes depend on the file: an HDF5 file under a .keras name is tried under an .h5
    name (Keras 3 picks the format by the extension), and safe_mode=False (it runs the
    file's code) only for a file the user said they trust.
    """
    model = model or {}
    compile_flag = bool(request.get("compile", True))
    custom = bool(request.get("custom_objects"))
    plan = [(None, compile_flag, False)]
    if request.get("fixes", True):
        if model.get("format") == "h5" and str(model.get("path", "")).endswith(".keras"):
            plan.append((AS_H5, compile_flag, False))
        if custom:
            plan.append(("custom_objects", compile_flag, True))
        if compile_flag:
            plan.append(("compile=False", False, False))
            if custom:
                plan.append(("custom_objects+compile=False", False, True))
        if request.get("trusted"):
            plan.append((UNSAFE, compile_flag, custom))
    if model.get("rescue") and model.get("format") == "savedmodel":
        plan += [(TFSM, False, False), (SAVED_MODEL_LOAD, False, False)]
    return plan


def export_model(keras, model, workdir, key, custom_file=None):
    """The loaded model's architecture (JSON) and weights, for harness migrate's bridge."""
    keras3 = str(getattr(keras, "__version__", "2")).startswith("3")
    try:
        with open(os.path.join(workdir, "export-%s-%s" % (key, ARCHITECTURE)), "w") as f:
            f.write(model.to_json())
        model.save_weights(os.path.join(workdir, "export-%s-%s" % (key, WEIGHTS_NAMES[1] if keras3 else WEIGHTS_NAMES[0])))
        return {"ok": True}
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": describe_exception(exc, custom_file)}


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


def one_attempt(keras, model, request, fix, compile_flag, with_objects):
    """One attempt, in a process that has imported the framework and nothing of the user's:
    the environment's plugins (as a careful user would import them), the user's custom
    objects only when this attempt is about them, the load, and inference when it loads."""
    custom_file = request.get("custom_objects")
    result = {"plugins": import_plugins(model.get("plugins", []))}
    objects = None
    if with_objects:
        try:
            objects = load_custom_objects(custom_file)
            result["custom_objects"] = {"ok": True, "names": sorted(objects)}
        except BaseException as exc:  # noqa: BLE001
            result["custom_objects"] = {"ok": False, "error": describe_exception(exc, custom_file)}
            result["attempt"] = {"fix": fix, "compile": compile_flag, "ok": False, "skipped": "the custom objects module did not import"}
            result["peak_rss_mb"] = peak_rss_mb()
            return result
    path = h5_alias(model, request["workdir"]) if fix == AS_H5 else model["path"]
    if fix == TFSM and not hasattr(keras.layers, TFSM):
        result["attempt"] = {"fix": fix, "compile": compile_flag, "ok": False, "skipped": "this Keras has no TFSMLayer (Keras 3 has)"}
        result["peak_rss_mb"] = peak_rss_mb()
        return result
    record = attempt(keras, path, compile_flag, objects, fix, custom_file, unsafe=fix == UNSAFE)
    if record["ok"] and request.get("inference"):
        try:
            save_to = os.path.join(request["workdir"], "outputs-%s.npz" % model["key"])
            summary = run_inference(record["model"], request.get("input"), save_to)
            result["inference"] = {"ok": True, "outputs": summary, "saved": os.path.basename(save_to)}
        except BaseException as exc:  # noqa: BLE001
            result["inference"] = {"ok": False, "error": describe_exception(exc, custom_file)}
    if record["ok"] and request.get("export") and fix not in RESCUES:
        result["export"] = export_model(keras, record["model"], request["workdir"], model["key"], custom_file)
    if record["ok"] and model.get("resave") and request.get("save_as") and fix not in RESCUES:
        result["rebuilt"] = save_rebuilt(record["model"], request["workdir"], model["key"], request["save_as"], custom_file)
    record.pop("model", None)
    result["attempt"] = record
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def load_model_attempts(keras, model, request, run_attempt):
    """The plain load, then each fix until one loads; every attempt recorded.

    `run_attempt(fix, compile_flag, with_objects, deadline)` runs one attempt (in a fresh
    fork where the platform has fork) and returns its result, or {"timeout": True} /
    {"crash": ...}. The model's timeout covers all its attempts.
    """
    deadline = time.time() + float(request.get("timeout", 300))
    merged = {"attempts": []}
    for fix, compile_flag, with_objects in attempt_plan(request, model):
        if with_objects and (merged.get("custom_objects") or {}).get("ok") is False:
            continue  # the module did not import once; it will not now
        if fix == UNSAFE and not any("safe_mode" in json.dumps(a.get("error") or {}) for a in merged["attempts"]):
            continue  # nothing was refused for safety: running the file's code would prove nothing
        if time.time() >= deadline:
            break
        out = run_attempt(fix, compile_flag, with_objects, deadline)
        if "timeout" in out or "crash" in out:
            if not merged["attempts"]:
                return out  # the plain load itself hung or died: that is the outcome
            merged["attempts"].append(dict(out, fix=fix, compile=compile_flag, ok=False))
            if "timeout" in out:
                break
            continue
        merged.setdefault("plugins", out.get("plugins", []))
        if "custom_objects" in out:
            merged["custom_objects"] = out["custom_objects"]
        for extra in ("inference", "export", "rebuilt"):
            if extra in out:
                merged[extra] = out[extra]
        merged["peak_rss_mb"] = max(merged.get("peak_rss_mb") or 0, out.get("peak_rss_mb") or 0) or None
        merged["attempts"].append(out["attempt"])
        if out["attempt"].get("ok"):
            break
    return merged


def load_one(keras, model, request):
    """Every attempt in this process, one after another (where there is no fork: the user's
    custom objects, once imported for a fix, stay imported; with fork each starts clean)."""

    def here(fix, compile_flag, with_objects, deadline):
        return one_attempt(keras, model, request, fix, compile_flag, with_objects)

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

    def forked(fix, compile_flag, with_objects, deadline):
        return in_child(lambda: one_attempt(keras, model, request, fix, compile_flag, with_objects), deadline)

    return load_model_attempts(keras, model, request, forked)


def in_child(work, deadline):
    """Run `work()` in a forked child; its JSON-able result, or {"timeout"} / {"crash"}.

    The child sends its result through a pipe, not a file: a model that fills the scratch
    folder cannot keep its own outcome from being reported.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        die_with_parent()
        if Channel.fd_in_use is not None:  # a model loaded here reports through its parent only
            os.close(Channel.fd_in_use)
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
    try:
        received, status = _collect(pid, read_fd, deadline)
    finally:
        os.close(read_fd)
    if status is None:
        return {"timeout": True}
    if os.WIFSIGNALED(status):
        return {"crash": {"signal": os.WTERMSIG(status)}}
    try:
        return json.loads(b"".join(received).decode("utf-8", "replace"))
    except ValueError:
        return {"crash": {"exit_code": os.WEXITSTATUS(status)}}


def _collect(pid, read_fd, deadline, limit=64 << 20):
    """(what the child sent, its wait status), or (.., None) when the deadline passed and it was killed.

    Reads as it comes (a large result must not block the child on a full pipe); once the
    child has exited, what is left in the pipe is drained without waiting for an EOF that
    a process the model started (holding the pipe) might never give.
    """
    import fcntl
    import select

    chunks, size, status, eof = [], 0, None, False
    while True:
        ready = select.select([read_fd], [], [], 0.05)[0] if not eof else []
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if chunk:
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                continue
            eof = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if eof:
            time.sleep(0.02)
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return chunks, None
    fcntl.fcntl(read_fd, fcntl.F_SETFL, fcntl.fcntl(read_fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    while size <= limit:
        try:
            chunk = os.read(read_fd, 1 << 16)
        except OSError:  # EAGAIN: nothing more, though a stray process may hold the pipe open
            break
        if not chunk:
            break
        size += len(chunk)
        chunks.append(chunk)
    return chunks, status


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
    except BaseException as exc:  # noqa: BLE001 - a broken framework is the finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["import"] = {"ok": False, "seconds": round(time.time() - start, 4), "error": describe_exception(exc)}
        channel.send("import", **{"import": result["import"]})
        if out:
            write_json(out, result)
        return 0
    channel.send("import", **{"import": result["import"]})  # recorded even if a load later kills the process
    models = request["models"]
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
