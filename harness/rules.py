"""The diagnosis rules: what a failed load raised -> (cause, missing name, fix), as a table.

Each rule is one function over what the probe saw (`Seen`) and returns its answer or None;
RULES lists them in the order they are asked, and the first answer decides. Every rule
reads a message a real release raises, quoted in tests/test_diagnose.py (captured from
TensorFlow 2.12-2.21, tf-keras and Keras 1-3 files). To teach the harness a new failure:
write the function next to its neighbours, put it in RULES where it belongs (more
specific before more general), and add the real message to tests/test_diagnose.py.

A fix sentence says whether the run proved it: "(proven: ...)" when the probe's chain of
load options loaded the model that way in this cell; recipes.py marks the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .matrix import Cell
from .modelfile import ModelInfo, keras_builtins, partial_note
from .outcomes import KERAS_BACKEND, Cause
from .probe import AS_H5, COMPILE, CUSTOM, REPAIRED, RESCUES, UNSAFE

Answer = tuple[Cause, str | None, str]  # (cause, missing name, fix)
PROVEN = " (proven: it loaded)"
REPAIRED_SAID = "the repaired config loaded"  # recipes.py names the repairs after these words


SERVING_FAILED = "; its serving signature does not answer here either, for inference: "
SERVE_ADVICE = ", or for inference only wrap it with keras.layers.TFSMLayer(path, call_endpoint='serving_default')"


def with_serving(fix: str, attempts: Iterable[Mapping[str, Any]], versions: Mapping[str, str] | None = None) -> str:
    """The fix with what the run saw of its inference-only advice: marked proven where the
    serving signature answered; where it failed too, the advice is dropped and the failure said."""
    attempts = tuple(attempts)
    mark = serving_mark(attempts)
    if not mark:
        return fix
    if SERVING_FAILED in mark and "has no attribute 'add_slot'" in mark and "tf-keras" not in (versions or {}):
        # Seen by hand (basic-pitch's nmp SavedModel, TF 2.21.0): the optimizer's slot variables are
        # revived through the Keras 2 optimizer classes that tf-keras registers; with tf-keras merely
        # installed (no TF_USE_LEGACY_KERAS), TFSMLayer and tf.saved_model.load both read it
        mark += (
            " (tf-keras installed next to it, without TF_USE_LEGACY_KERAS, lets TensorFlow revive the Keras 2 optimizer "
            "whose slots this SavedModel keeps; not tried here)"
        )
    proven = mark.startswith(" (proven")
    if SERVE_ADVICE in fix:
        return fix.replace(SERVE_ADVICE, SERVE_ADVICE + mark if proven else "", 1) + ("" if proven else mark)
    return fix + mark


def serving_mark(attempts: Iterable[Mapping[str, Any]]) -> str:
    """What harness run saw of its own inference-only advice for a SavedModel (call its serving
    signature through TFSMLayer or tf.saved_model.load): the probe tried it after load_model
    failed and called it on a batch. "" where it was not tried."""
    served = [a for a in attempts if a.get("serving")]
    if not served:
        return ""
    ok = next((a for a in served if a.get("ok")), None)  # the one serving_answered finds
    if ok is not None:
        return f" (proven for inference only: its serving signature answered a batch through {ok.get('fix')} here; load_model still fails)"
    failed = "; ".join(
        f"{a.get('fix')} raised {(a.get('error') or {}).get('type', 'an error')}: {first_line(str((a.get('error') or {}).get('message', '')))[:160]}"
        for a in served
        if a.get("error")
    )
    # worded without a "(tried" mark: the rest of the sentence keeps its own (not tried: ...)
    return f"{SERVING_FAILED}{failed}" if failed else ""


def standin_loaded(attempts: Iterable[Mapping[str, Any]]) -> bool:
    """A load with stand-ins for the functions the file names went through (never a load of the model)."""
    return any(a.get("ok") and a.get("standin") for a in attempts)


def serving_answered(attempts: Iterable[Mapping[str, Any]]) -> bool:
    """The SavedModel's serving signature answered a batch (inference only, never a load of the model)."""
    return any(a.get("ok") and a.get("serving") for a in attempts)


@dataclass(frozen=True)
class Seen:
    """What one failed load showed: the file, the cell, the plain load's error and the attempts."""

    cell: Cell
    info: ModelInfo
    error: Mapping[str, Any]
    versions: Mapping[str, str]
    plugins: tuple[Mapping[str, Any], ...] = ()
    worked: str | None = None  # the attempt that loaded (its options joined by "+")
    attempts: tuple[Mapping[str, Any], ...] = ()
    text: str = field(init=False)  # every message of the plain load's error and its chain
    later: str = field(init=False)  # the messages of the attempts after it

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", " ".join(_messages(self.error)))
        object.__setattr__(self, "later", " ".join(" ".join(_messages(a.get("error") or {})) for a in self.attempts[1:]))

    @property
    def done(self) -> set[str]:
        return options(self.worked)

    @property
    def tf(self) -> str:
        return _tf_version(self.versions)

    @property
    def loader(self) -> str:
        return _loader(self.cell, self.versions)[0]

    @property
    def keras(self) -> str:
        return _loader(self.cell, self.versions)[1]

    @property
    def here(self) -> str:
        """The Keras that loads here, as the user installed it: "keras 3.15.1", "tf-keras 2.21.0"."""
        return f"{self.loader} {self.keras}"

    @property
    def env_major(self) -> int | None:
        return _env_keras_major(self.cell, self.versions)

    @property
    def legacy_tried(self) -> bool:
        """Whether --try-fixes tries tf-keras legacy mode for this cell (fixes.wants_legacy: tf.keras cells)."""
        return self.cell.api == "tf.keras"

    @property
    def backend(self) -> str | None:
        """jax or torch when Keras 3 runs there (no TensorFlow, so no tf-keras); None on tensorflow."""
        return off_tensorflow(self.versions)

    @property
    def saved(self) -> str:
        return f"Keras {self.info.keras_version}" if self.info.keras_version else "another Keras"

    @property
    def name(self) -> str | None:
        """The object the error says is unknown, if it names one."""
        return _unknown_name(self.error)

    @property
    def compiled(self) -> list[str]:
        """Custom functions the training config names (loss, metrics)."""
        return sorted({c.name for c in self.info.classes if c.kind == "custom" and c.where in ("loss", "metrics")})

    def proven_if(self, option: str) -> str:
        return PROVEN if option in self.done else ""

    @property
    def repair_mark(self) -> str:
        """What the rules' config repair did here, for a fix that names one."""
        if REPAIRED in self.done:
            return f" (proven: {REPAIRED_SAID})"
        if any(REPAIRED in options(a.get("fix")) for a in self.attempts[1:]):
            return " (tried here: the repaired config did not load either)"
        return " (not tried here)"


# --------------------------------------------------------------------------- the rules, in order


def damaged(s: Seen) -> Answer | None:
    """h5py: "Unable to synchronously open file (truncated file ...)", zipfile's "Bad magic number" ..."""
    if not any(h in s.text for h in _CORRUPT):
        return None
    if s.info.problems:
        return "corrupt-file", None, "the file is damaged: re-export or re-download it"
    if s.info.format == "keras":  # a sound zip read as HDF5: this Keras predates the format
        return (
            "version-mismatch",
            None,
            f"{s.here} cannot read the .keras format (Keras 2.12+ can): load with a newer TensorFlow or re-save as .h5",
        )
    return (
        "version-mismatch",
        None,
        f"the file is sound here (static check) but this environment's HDF5 stack cannot open it (h5py {s.versions.get('h5py', '?')})",
    )


def weights_only(s: Seen) -> Answer | None:
    """Keras 2: "No model config found in the file at ..." """
    if "No model config found" not in s.text:
        return None
    fix = (
        partial_note(s.info) if s.info.partial else "the file holds weights only (save_weights): build the model in code, then load_weights"
    )
    return "not-a-model", None, fix


def numpy_removed(s: Seen) -> Answer | None:
    """Code that uses np.float and friends: "module 'numpy' has no attribute 'float'"."""
    removed = _numpy_fix(s.text, s.tf, s.versions.get("numpy", "?"))
    return ("environment", "numpy", removed[0]) if removed is not None else None


def graph_only(s: Seen) -> Answer | None:
    """A SavedModel with no Keras objects: Keras 3 says "File format not supported"; Keras 2's
    load_model returns a bare trackable object, and the probe's next step, predict, raises AttributeError."""
    if not s.info.graph_only:
        return None
    return (
        "not-a-model",
        None,
        "a SavedModel with no Keras model in it (tf.saved_model.save, or Keras 3's model.export): no load_model "
        "rebuilds it; for inference call its serving signature: keras.layers.TFSMLayer(path, call_endpoint='serving_default') "
        "in Keras 3, tf.saved_model.load(path).signatures['serving_default'] in any TensorFlow (harness migrate tries both)"
        + (f" (proven: it ran through {s.worked})" if s.worked in RESCUES else ""),
    )


def keras_not_matching_tf(s: Seen) -> Answer | None:
    """keras 2.x of another minor than tensorflow: "... experimental_enable_variable_lifting ..." """
    if "experimental_enable_variable_lifting" not in s.text:
        return None
    line = ".".join(s.tf.split(".")[:2])
    return (
        "environment",
        "keras",
        f"{s.here} does not match tensorflow {s.tf}: keras must match tensorflow's minor, install keras=={line}.*",
    )


def python2_lambda(s: Seen) -> Answer | None:
    """A Lambda marshalled by Python 2 (or another 3.x minor): "bad marshal data (unknown type code)"."""
    if not (any(m in s.text or m in s.later for m in _MARSHAL) and s.info.names("lambda")):
        return None
    return (
        "version-mismatch",
        "Lambda",
        "a Lambda layer's code was marshalled by another Python (Python 2 bytecode, or another 3.x minor's): no Keras "
        "release and no safe_mode setting reads it here; rebuild the Lambda in code under this Python and load the "
        "weights into it (load_weights)",
    )


def lambda_activation(s: Seen) -> Answer | None:
    """An activation saved by name only: "Unknown activation function: '<lambda>'" (Keras 2),
    "Could not interpret activation function identifier: <lambda>" (Keras 3)."""
    found = _ACTIVATION.search(s.text)
    if not found:
        return None
    function = found.group(1)
    standin = standin_loaded(s.attempts)
    evidence = (
        " (tried with a stand-in function: then the model loads, so that function is all it lacks)"
        if standin
        else " (not tried: the harness does not have your function)"
    )
    if CUSTOM in s.done:
        evidence = " (proven: it loaded with your custom objects)"
    return (
        "custom-object",
        function,
        f"a layer's activation was saved as '{function}'"
        + (" (a Python lambda, which a file keeps by name only)" if function == "<lambda>" else " (a function this Keras does not define)")
        + f": pass custom_objects={{'{function}': the_function}} to load_model{evidence}",
    )


def gru_reset_after(s: Seen) -> Answer | None:
    """A GRU from before reset_after existed: "GRU(reset_after=False) is not compatible with GRU(reset_after=True)"."""
    if not _RESET_AFTER.search(s.text):
        return None
    return (
        "version-mismatch",
        "reset_after",
        f"the GRU was saved by {s.saved}, before GRU had reset_after (it computed reset_after=False); this Keras assumes "
        "reset_after=True: set reset_after=False in the layer's config" + s.repair_mark,
    )


_MORE_TENSORS = re.compile(r"Layer \"([^\"]{1,200})\" expects (\d+) input\(s\), but it received (\d+) input tensors")


def nested_endpoint_list(s: Seen) -> Answer | None:
    """A model nested in a Keras 3 file whose one output was written as a one-item list (Keras
    3.0-3.8): a later Keras 3 hands the next layer a structure: 'Layer "dense" expects 1 input(s),
    but it received 2 input tensors' (a published Keras 3.8.0 file in keras 3.15.1)."""
    found = _MORE_TENSORS.search(s.text)
    if not found or (s.info.keras_major or 0) < 3 or int(found.group(3)) <= int(found.group(2)):
        return None
    if s.info.keras_version and s.info.keras_version == s.keras:
        return None  # the Keras that wrote it: a model of its own making, not a reading difference
    return (
        "version-mismatch",
        None,
        f"layer '{found.group(1)}' gets {found.group(3)} tensors where the file's model gives it {found.group(2)}: a model nested in this "
        f"file (saved by {s.saved}) lists its one input or output as a one-item list, which {s.here} reads as a structure; write "
        "that nested model's input_layers and output_layers bare ([name, 0, 0]) in config.json, or load with the Keras that wrote it"
        + s.repair_mark,
    )


def keras1_arguments(s: Seen) -> Answer | None:
    """Keras 1 argument names: "LSTM.__init__() missing 1 required positional argument: 'units'"
    (every release reading output_dim), "Keyword argument not understood: 'init'"."""
    found = _KERAS1_WORDS.search(s.text) or _MISSING_ARGUMENT.search(s.text)
    if not (found and _keras1_file(s.info)):
        return None
    return (
        "version-mismatch",
        found.group(1),
        f"the file was written by {s.saved} with Keras 1 argument names (the message names '{found.group(1)}'), which Keras 2 renamed: "
        "rename them in the config as Keras 2.0 did (output_dim -> units, init -> kernel_initializer, ...)" + s.repair_mark,
    )


def sequential_as_list(s: Seen) -> Answer | None:
    """Keras 3 reading a Sequential that Keras <= 2.2.2 saved as a bare list of layers:
    "pop expected at most 1 argument, got 2" (its loader calls config.pop(key, None) on the list)."""
    if _LIST_CONFIG not in s.text:
        return None
    return (
        "version-mismatch",
        None,
        f"a Sequential saved by {s.saved}, whose config is a bare list of layers (Keras 2.2.2 and before), which {s.here} cannot "
        "read: write it as {'name', 'layers'} in the config" + s.repair_mark,
    )


def integer_embedding(s: Seen) -> Answer | None:
    """An Embedding whose dtype Keras 2.0 wrote as its input's (int32): tf.keras makes its
    weights in it, "Cannot convert -0.05 to EagerTensor of dtype int32"."""
    if not (_INT_EMBEDDING.search(s.text) and "Embedding" in {c.name for c in s.info.classes}):
        return None
    return (
        "version-mismatch",
        "Embedding",
        f"the Embedding's dtype is int32 (written by {s.saved}, where it meant the input's dtype); this Keras makes its "
        "weights in that dtype: set the Embedding's dtype to float32 in the config" + s.repair_mark,
    )


def initializer_dtype(s: Seen) -> Answer | None:
    """Keras 3 reading tf.keras 2.1-2.3 initializers that carry a dtype: "Zeros() takes no arguments"."""
    found = _INITIALIZER_ARGUMENT.search(s.text)
    if not found:
        return None
    return (
        "version-mismatch",
        found.group(1),
        f"the file's initializers carry a dtype argument (written by {s.saved}), which {s.here}'s {found.group(1)} does not take: "
        "drop it from the initializer configs" + s.repair_mark,
    )


def repaired_config(s: Seen) -> Answer | None:
    """Whatever the plain load raised, the config repaired by the harness's rules loaded."""
    if REPAIRED not in s.done:
        return None
    return (
        "version-mismatch",
        None,
        f"the config written by {s.saved} needs changes for this Keras (proven: {REPAIRED_SAID}); "
        "`harness migrate` writes the repaired file",
    )


def addons(s: Seen) -> Answer | None:
    """An Addons class unknown ("Unknown layer: 'Addons>GroupNormalization'"), or Addons that does not import."""
    names = s.info.names("addons")
    if not (names and any(a in s.text for a in names)):
        return None
    plugin = {p.get("name"): p for p in s.plugins}.get("tensorflow_addons")
    renamed = (
        "; or without Addons: the config with its Addons objects renamed to their Keras equivalents (the same weights) loads here "
        f"(proven: {REPAIRED_SAID})"
        if REPAIRED in s.done
        else ""
    )
    if plugin and plugin.get("installed") and not plugin.get("ok"):
        return (
            "version-mismatch",
            "tensorflow_addons",
            f"tensorflow-addons {s.versions.get('tensorflow-addons', '?')} does not import with tensorflow {s.tf}: "
            + _addons_fix(s.tf).replace("install ", "use ", 1)
            + renamed,
        )
    if s.env_major and s.env_major >= 3:
        return (
            "missing-dependency",
            names[0],
            "tensorflow-addons has no Keras 3 support: " + legacy_advice(s.backend, tried=False) + ", or replace the layer with its Keras equivalent" + renamed,
        )
    return "missing-dependency", names[0], _addons_fix(s.tf) + renamed


def hub_layer(s: Seen) -> Answer | None:
    """ "Unknown layer: 'KerasLayer'": tensorflow-hub's layer."""
    if s.name != "KerasLayer":
        return None
    return (
        "missing-dependency",
        "tensorflow_hub",
        "KerasLayer comes from tensorflow-hub: install it and pass custom_objects={'KerasLayer': hub.KerasLayer}"
        + ("; tensorflow-hub's layer is Keras 2 only: " + legacy_advice(s.backend, tried=False) if (s.env_major or 0) >= 3 else ""),
    )


def hdf5_named_keras(s: Seen) -> Answer | None:
    """Keras 3 picks the loader by the name: "... is not a valid `.keras` zip file" for an HDF5 file named .keras."""
    if not (s.info.format == "h5" and s.info.name.endswith(".keras") and (".keras` zip" in s.text or AS_H5 in s.done)):
        return None
    return (
        "version-mismatch",
        None,
        f"the file is HDF5 under a .keras name, and {s.here} picks the loader by the name: copy it to a .h5 name" + s.proven_if(AS_H5),
    )


def tfsm_refused(s: Seen) -> Answer | None:
    """Keras 3 safe mode: "Requested the deserialization of a `TFSMLayer` ... safe_mode=False"."""
    if not ("TFSMLayer" in s.text and "safe_mode" in s.text):
        return None
    return (
        "safe-mode",
        "TFSMLayer",
        "the model wraps an external SavedModel (TFSMLayer), which Keras refuses by default: only for a file you trust, "
        "pass safe_mode=False, with that SavedModel at the path the file names" + s.proven_if(UNSAFE),
    )


def lambda_refused(s: Seen) -> Answer | None:
    """Keras 3 safe mode: "Requested the deserialization of a Lambda layer ... pass `safe_mode=False`"."""
    if "safe_mode" not in s.text:
        return None
    return (
        "safe-mode",
        "Lambda",
        "Keras 3 refuses Python code stored in a file (a Lambda) by default: only for a file you trust, pass safe_mode=False "
        "(it runs the file's code)" + s.proven_if(UNSAFE),
    )


def lambda_loss(s: Seen) -> Answer | None:
    """ "Unknown loss function: '<lambda>'": a lambda as loss or metric, which no file keeps."""
    if not (s.name == "<lambda>" or (s.done == {COMPILE} and "<lambda>" in s.compiled)):
        return None
    return (
        "custom-object",
        "<lambda>",
        "the training config names a lambda as loss or metric, which no Keras can rebuild from a file: "
        f"load_model(..., compile=False){s.proven_if(COMPILE)} and compile again with the function in code",
    )


def dtype_policy(s: Seen) -> Answer | None:
    """A mixed-precision Policy of another Keras: "Unknown dtype policy: 'Policy'", or an AttributeError in Keras 3."""
    policy = "Policy" in {c.name for c in s.info.classes}
    if not (
        s.name in ("Policy", "DTypePolicy")
        or (policy and (s.env_major or 0) >= 3 and any(e.get("type") == "AttributeError" for e in _errors(s.error)))
    ):
        return None
    return (
        "version-mismatch",
        s.name or "Policy",
        f"the file stores a mixed-precision policy of {s.saved} (a Keras class, not a custom object), which {s.here} cannot read: "
        + _format_fix(s.info, s.env_major, s.backend, s.legacy_tried),
    )


def unknown_object(s: Seen) -> Answer | None:
    """ "Unknown layer: 'ResidualBlock'", "Could not locate class 'Scale'", "Cannot deserialize object of type `Scale`"."""
    name = s.name
    if name is None:
        return None
    package, _, short = name.rpartition(">")
    if name in s.info.names("custom") or short not in keras_builtins():
        if package and package != "Addons":  # saved registered: importing the package that registers it is the fix
            fix = (
                f"import the module that registers '{name}' (@register_keras_serializable(package='{package}')) before "
                f"load_model, or pass custom_objects={{'{name}': {short}}}"
            )
        else:
            fix = (
                f"pass custom_objects={{'{name}': {short}}} to load_model (or decorate it with @keras.saving.register_keras_serializable())"
            )
        return "custom-object", name, fix
    return (
        "version-mismatch",
        name,
        f"'{name}' is not known to {s.here}: load with the Keras that saved the file ({s.info.keras_version})",
    )


def weights_where_only_its_minor_looks(s: Seen) -> Answer | None:
    """A Keras 2.13-2.15 .keras file in another minor: "Layer 'dense' expected 2 variables, but received 0"."""
    found = _EXPECTED_VARIABLES.search(s.text)
    if not found:
        return None
    return (
        "version-mismatch",
        None,
        f"layer '{found.group(1)}' finds {found.group(3)} of its {found.group(2)} weights: Keras 2.13-2.15 .keras files "
        f"keep weights where only the minor that wrote them looks; this one was written by {s.saved}: load it with that minor "
        "(or re-save it there as .h5)",
    )


def unrecognized_arguments(s: Seen) -> Answer | None:
    """ "Unrecognized keyword arguments passed to Dense: {'quantization_config': None}" (Keras 3),
    "Unrecognized keyword arguments: ['batch_shape']" (Keras 2 reading Keras 3)."""
    found = _UNRECOGNIZED.search(s.text)
    if not found:
        return None
    layer = found.group(1) or next((m.group(1) for e in _errors(s.error) if (m := _DESERIALIZING.search(e.get("message", "")))), "a layer")
    keys = ", ".join(re.findall(r"'(\w+)'", found.group(2))) or found.group(2)
    return (
        "version-mismatch",
        None,
        f"{layer}'s config has {keys}, which {s.here} does not accept; " + _direction_fix(s.info, s.env_major, s.keras, s.loader, s.backend, s.legacy_tried),
    )


def slash_in_name(s: Seen) -> Answer | None:
    """Keras 3: "Argument `name` must be a string and cannot contain character `/`"."""
    if "cannot contain character `/`" not in s.text:
        return None
    return (
        "version-mismatch",
        None,
        f"a layer name of {s.saved} contains '/', which Keras 3 refuses: " + legacy_advice(s.backend, tried=s.legacy_tried),
    )


def optimizer_argument(s: Seen) -> Answer | None:
    """Keras 3 reading an old optimizer: "Argument(s) not recognized: {'lr': 0.001}"."""
    found = _NOT_RECOGNIZED.search(s.text)
    if not found:
        return None
    return (
        "version-mismatch",
        found.group(1),
        f"the saved training config passes '{found.group(1)}', which {s.here} no longer accepts (written by {s.saved}): "
        f"load_model(..., compile=False){s.proven_if(COMPILE)} and compile again",
    )


def savedmodel_off_tensorflow(s: Seen) -> Answer | None:
    """A SavedModel in Keras 3 on jax or torch: "File format not supported" from load_model, and
    TFSMLayer raises "The TFSMLayer is only currently supported with the TensorFlow backend."
    (Keras 3.15.1 on jax): TensorFlow's own format, with advice that needs no TensorFlow there."""
    backend = s.backend
    if backend is None or s.info.format != "savedmodel" or s.worked:
        return None
    return (
        "backend",
        None,
        f"a SavedModel is TensorFlow's own format: Keras 3 on {backend} can neither load it nor call its signature "
        "(TFSMLayer needs TensorFlow): load it on the tensorflow backend, or save it once as .keras from an environment "
        "that loads it (harness migrate does, and proves the copy)",
    )


_TORCH_NAME = re.compile(r"(parameter|module) name can\\?'t contain")  # a KeyError's str() escapes its quote: can\'t


def torch_refused_name(s: Seen) -> Answer | None:
    """Keras 3 on torch registers each layer's weights under the layer's name, and torch refuses a
    dot there: 'parameter name can't contain "."' (KeyError, Keras 3.15.1 on torch 2.15.0 with
    tempocnn 0.0.8's Keras 2.4.0 cnn.h5, whose layers are named "Conv4.1"; it loads on jax and
    tensorflow). The rename is the harness's config repair for torch (an HDF5 model's weights
    follow its layers by position), tried in the cell."""
    if s.backend != "torch" or not _TORCH_NAME.search(s.text):
        return None
    rename = (
        "rename the layers without '.'" + s.repair_mark
        if s.info.format == "h5"
        else "rename the layers without '.' and save the model again (a .keras file's weights are stored by layer name: not tried here)"
    )
    return (
        "backend",
        None,
        f"a layer name has a '.', which torch refuses in the names Keras 3 registers weights under: {rename}; "
        "`harness migrate --keras-backend torch` writes the renamed file and proves it by its outputs, or load it on jax or tensorflow",
    )


TF_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")  # tf.* calls and tensor slicing Keras 2 recorded as layers


def tf_op_layers(s: Seen) -> Answer | None:
    """ "Unknown layer: 'TFOpLambda'" (Keras 3.15.1 on tensorflow, jax and torch alike, a TF 2.15
    file whose functional model calls tf.math.multiply and tf.nn.relu): Keras 2 recorded tf.*
    calls as layers, which only TensorFlow's Keras 2 rebuilds. Off tensorflow that is
    TensorFlow-only content (cause backend); on it, the Keras 2 -> 3 change."""
    if s.name not in TF_OP_LAYERS:
        return None
    what = (
        f"the model calls tf.* functions on Keras tensors, which Keras 2 recorded as {s.name} layers and only TensorFlow's "
        "Keras 2 rebuilds: write those calls with keras.ops (keras.ops.multiply, keras.ops.relu, ...) in a model built in code "
        "and load this file's weights into it (model.load_weights), or "
    )
    if s.backend:
        return "backend", s.name, what + legacy_advice(s.backend, migrates=False)
    return "version-mismatch", s.name, what + legacy_advice(None, tried=s.legacy_tried)


def format_not_read(s: Seen) -> Answer | None:
    """ "File format not supported: filepath=..." (Keras 3 and a SavedModel or another format);
    "parent module ... cannot be imported" (a .keras module path this Keras lacks)."""
    if ("parent module" in s.text and "cannot be imported" in s.text) or "File format not supported" in s.text:
        return "version-mismatch", None, _format_fix(s.info, s.env_major, s.backend, s.legacy_tried)
    return None


def newer_file(s: Seen) -> Answer | None:
    """Keras 3 wraps what went wrong: "... could not be deserialized properly"; the file is newer than this Keras."""
    info, keras = s.info, s.keras
    if not (
        "could not be deserialized properly" in s.text and info.keras_version and keras and _release(info.keras_version) > _release(keras)
    ):
        return None
    return (
        "version-mismatch",
        None,
        f"the model's config does not deserialize in {s.here}; " + _direction_fix(info, s.env_major, keras, s.loader, s.backend, s.legacy_tried),
    )


def custom_objects_loaded(s: Seen) -> Answer | None:
    """The user's custom objects loaded it, whatever the message said."""
    if CUSTOM not in s.done:
        return None
    return "custom-object", next(iter(s.info.names("custom")), None), "pass the custom objects to load_model (custom_objects=...)"


def compile_false_loaded(s: Seen) -> Answer | None:
    """compile=False loaded it: the training config names a function no Keras knows (its
    message may say anything: Keras 3 reading a Keras 2 file raises "string indices must be integers")."""
    if s.done != {COMPILE}:
        return None
    if s.compiled:
        first = s.compiled[0]
        return (
            "custom-object",
            first,
            f"the training config names {', '.join(s.compiled)}, which this environment does not know: pass "
            f"custom_objects={{'{first}': {first}}}, or load_model(..., compile=False) (proven) and compile again",
        )
    return (
        "version-mismatch",
        None,
        f"the saved training config does not load in {s.here}: load_model(..., compile=False) and compile again",
    )


def other_major(s: Seen) -> Answer | None:
    """Nothing above named it, and the file is of another Keras major than this one."""
    if s.info.keras_major and s.env_major and s.info.keras_major != s.env_major:
        return "version-mismatch", None, _format_fix(s.info, s.env_major, s.backend, s.legacy_tried)
    return None


RULES: tuple[Callable[[Seen], Answer | None], ...] = (
    savedmodel_off_tensorflow,  # first: off tensorflow, no other rule's advice (tf-keras, TFSMLayer) can be followed
    torch_refused_name,
    tf_op_layers,
    damaged,
    weights_only,
    numpy_removed,
    graph_only,
    keras_not_matching_tf,
    python2_lambda,
    lambda_activation,
    gru_reset_after,
    nested_endpoint_list,
    addons,
    keras1_arguments,
    sequential_as_list,
    integer_embedding,
    initializer_dtype,
    hub_layer,
    hdf5_named_keras,
    tfsm_refused,
    lambda_refused,
    lambda_loss,
    dtype_policy,
    unknown_object,
    weights_where_only_its_minor_looks,
    unrecognized_arguments,
    slash_in_name,
    optimizer_argument,
    format_not_read,
    newer_file,
    repaired_config,
    custom_objects_loaded,
    compile_false_loaded,
    other_major,
)


def load_cause(seen: Seen) -> Answer:
    """The first rule's answer; a load no rule explains is `unknown`, with what it raised."""
    for rule in RULES:
        answer = rule(seen)
        if answer is not None:
            cause, missing, fix = answer
            if REPAIRED in seen.done and "repaired config" not in fix:  # the rule named the blocker; the repair is what loaded it
                fix += f"; the config repaired by the harness's rules loads here (proven: {REPAIRED_SAID})"
            return cause, missing, fix
    error = seen.error
    return "unknown", None, f"{error.get('type', 'error')}: {first_line(error.get('message', ''))}"


# --------------------------------------------------------------------------- what the rules read


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


def options(fix: str | None) -> set[str]:
    """The load options of an attempt's name ("custom_objects+compile=False")."""
    return set((fix or "").split("+")) - {""}


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
_MARSHAL = ("bad marshal data", "unknown type code", "EOF read where object expected")
_LIST_CONFIG = "pop expected at most 1 argument, got 2"
_INT_EMBEDDING = re.compile(r"Cannot convert -?[\d.e-]+ to EagerTensor of dtype u?int\d+")
_INITIALIZER_ARGUMENT = re.compile(
    r"\b(Zeros|Ones|Constant|RandomNormal|RandomUniform|TruncatedNormal|VarianceScaling|Orthogonal|Identity|Glorot\w+|He\w+|Lecun\w+)\(\) takes no arguments"
)


def _keras1_file(info: ModelInfo) -> bool:
    """Written by Keras 1: its version says so, or an HDF5 model says no version (Keras 1.0-1.1 wrote none)."""
    return info.keras_major == 1 or (info.keras_version is None and info.format == "h5")


def _direction_fix(
    info: ModelInfo, env_major: int | None, keras: str, loader: str = "keras", backend: str | None = None, tried: bool = True
) -> str:
    """Which Keras to load a file with, from who wrote it and what is here."""
    saved = info.keras_major
    if saved and env_major and saved != env_major:
        return _format_fix(info, env_major, backend, tried)
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


def legacy_advice(backend: str | None, tried: bool = True, migrates: bool = True) -> str:
    """The Keras 2 way out: tf-keras in legacy mode. It needs TensorFlow: on jax or torch it is a
    bridge through a tensorflow environment, never advice for the cell itself (--try-fixes tries
    the legacy sibling of tf.keras cells only: said so)."""
    if backend is None:
        return "load with tf-keras and TF_USE_LEGACY_KERAS=1" + (" (--try-fixes tries it)" if tried else "")
    if not migrates:  # the content itself is Keras 2 on TensorFlow only: no Keras 3 file can be made of it by config
        return f"tf-keras needs TensorFlow, which Keras on {backend} does not have: load it with tf-keras and TF_USE_LEGACY_KERAS=1 on TensorFlow"
    return (
        f"tf-keras needs TensorFlow, which Keras on {backend} does not have: load it once with tf-keras and TF_USE_LEGACY_KERAS=1 "
        f"on TensorFlow and save it with Keras 3 (harness migrate --keras-backend {backend} does, and proves the copy; not tried here)"
    )


def off_tensorflow(versions: Mapping[str, str]) -> str | None:
    """jax or torch when a result's versions say Keras 3 ran there (no TensorFlow in the cell), else None."""
    backend = versions.get(KERAS_BACKEND)
    return backend if backend in ("jax", "torch") else None


def _format_fix(info: ModelInfo, env_major: int | None, backend: str | None = None, tried: bool = True) -> str:
    """`tried`: --try-fixes tries tf-keras legacy mode in this cell (a tf.keras cell)."""
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
            + legacy_advice(backend, tried=tried)
            + ("" if backend else SERVE_ADVICE)
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
    if backend:
        return f"this file was saved by Keras {info.keras_version or '2'}: " + legacy_advice(backend)
    return (
        f"this file was saved by Keras {info.keras_version or '2'}: install tf-keras and set TF_USE_LEGACY_KERAS=1 "
        + ("(--try-fixes tries it), " if tried else "(not tried here), ")
        + "or load it once there and re-save it with Keras 3"
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


def _tf_version(versions: Mapping[str, str]) -> str:
    return next((versions[k] for k in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos") if k in versions), "?")


def _env_keras_major(cell: Cell, versions: Mapping[str, str]) -> int | None:
    if cell.api == "tf_keras" or (dict(cell.env).get("TF_USE_LEGACY_KERAS") == "1" and "tf-keras" in versions):
        return 2
    keras = versions.get("keras")
    return int(keras.split(".")[0]) if keras and keras[0].isdigit() else None


def first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or [""])[0][:300]


_KERAS_WRAPPER = "Exception encountered when calling"  # Keras 3's first line around what a layer's call raised
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def telling_line(text: str | None) -> str:
    """The first line of a message, with the line after it when the first is only Keras 3's
    wrapper ("Exception encountered when calling Lambda.call()."): what the call raised."""
    lines = [line.strip() for line in _ANSI.sub("", text or "").splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(_KERAS_WRAPPER):
        return f"{lines[0]} {lines[1]}"[:300]
    return (lines or [""])[0][:300]
