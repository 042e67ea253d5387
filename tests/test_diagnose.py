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
    assert (r.cause, r.missing_name) == ("version-mismatch", "Lambda")


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
