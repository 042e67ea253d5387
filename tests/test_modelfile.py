"""Static inspection of model files saved by a real TensorFlow (shipped in examples/models)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.inspection import inspect_model
from harness.modelfile import keras_builtins

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def test_keras2_h5_with_custom_layer():
    info = inspect_model(MODELS / "residual_block.h5")
    assert (info.format, info.keras_version, info.backend) == ("h5", "2.15.0", "tensorflow")
    assert info.names("custom") == ["ResidualBlock"]
    assert not info.problems and not info.risks
    assert {c.name for c in info.classes} >= {"Functional", "InputLayer", "ResidualBlock"}


def test_custom_loss_is_found_in_the_training_config():
    info = inspect_model(MODELS / "custom_loss.h5")
    assert info.loss == "my_custom_loss"
    assert info.names("custom") == ["my_custom_loss"]
    assert info.optimizer == "Custom>Adam"  # TF 2.15 writes its own Adam this way; not custom
    assert "Custom>Adam" not in info.names("custom")


def test_addons_and_lambda_layers():
    assert inspect_model(MODELS / "addons_groupnorm.h5").names("addons") == ["Addons>GroupNormalization"]
    info = inspect_model(MODELS / "lambda_layer.h5")
    assert info.names("lambda") == ["Lambda"]
    assert "runs when it is loaded" in info.risks[0]


def test_keras3_zip_is_told_by_content_not_name(tmp_path):
    info = inspect_model(MODELS / "residual_block_keras3.keras")
    assert (info.format, info.keras_version) == ("keras", "3.15.1")
    assert info.names("custom") == ["ResidualBlock"]
    renamed = tmp_path / "model.bin"
    renamed.write_bytes((MODELS / "residual_block_keras3.keras").read_bytes())
    assert inspect_model(renamed).format == "keras"
    h5_named_keras = tmp_path / "old.keras"  # what TF 2.12 wrote
    h5_named_keras.write_bytes((MODELS / "dense.h5").read_bytes())
    assert inspect_model(h5_named_keras).format == "h5"


def test_nested_models_and_wrappers_are_walked():
    from harness.modelread import walk_classes

    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "TimeDistributed", "config": {"layer": {"class_name": "MyInner", "config": {}}}},
                {
                    "class_name": "Functional",
                    "config": {
                        "layers": [{"class_name": "Addons>WeightNormalization", "config": {"layer": {"class_name": "Dense", "config": {}}}}]
                    },
                },
            ]
        },
    }
    found = {(c["name"], c["kind"]) for c in walk_classes(config)}
    assert ("MyInner", "custom") in found
    assert ("Addons>WeightNormalization", "addons") in found
    assert ("Dense", "builtin") in found and ("TimeDistributed", "builtin") in found


def test_truncated_hdf5_is_corrupt(tmp_path):
    data = (MODELS / "dense.h5").read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[:5000])
    info = inspect_model(cut)
    assert info.corrupt
    assert info.problems[0] == f"truncated HDF5 file: 5000 bytes on disk, the superblock records {len(data)}"


def test_keras_zip_with_bad_crc_or_missing_member(tmp_path):
    src = zipfile.ZipFile(MODELS / "dense_keras3.keras")
    raw = bytearray((MODELS / "dense_keras3.keras").read_bytes())
    info = src.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 5] ^= 0xFF  # flip a byte of a stored member's data
    bad = tmp_path / "bad.keras"
    bad.write_bytes(bytes(raw))
    assert any("bad CRC" in p or "damaged" in p or "not valid JSON" in p for p in inspect_model(bad).problems)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("metadata.json", src.read("metadata.json"))
        out.writestr("config.json", src.read("config.json"))
    missing = tmp_path / "missing.keras"
    missing.write_bytes(buffer.getvalue())
    assert inspect_model(missing).problems == (".keras archive has no model.weights.h5",)


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "an empty file"), (b"model: yes\n", "text"), (bytes(range(256)), "unrecognised bytes")]
)
def test_not_a_model_is_a_usage_error(tmp_path, content, message):
    path = tmp_path / "x.h5"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=f"not a model file \\({message}"):
        inspect_model(path)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_savedmodel_folder_reads_keras_metadata(tmp_path):
    import json

    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    root = {"class_name": "Functional", "keras_version": "2.15.0", "training_config": {"loss": "my_loss"}}
    nodes = [("root", root), ("root.layer-1", {"class_name": "ResidualBlock"}), ("root.layer-1.conv1", {"class_name": "Conv2D"})]
    blob = b"".join(
        _field(1, _varint(2 << 3) + _varint(i) + _field(3, path.encode()) + _field(5, json.dumps(meta).encode()))
        for i, (path, meta) in enumerate(nodes)
    )
    (folder / "keras_metadata.pb").write_bytes(blob)
    info = inspect_model(folder)
    assert (info.format, info.keras_version, info.loss) == ("savedmodel", "2.15.0", "my_loss")
    assert info.names("custom") == ["ResidualBlock", "my_loss"]
    assert [c.where for c in info.classes if c.name == "Conv2D"] == ["root.layer-1.conv1"]
    (folder / "keras_metadata.pb").write_bytes(blob[:-10])
    assert "keras_metadata.pb cannot be read" in inspect_model(folder).problems[0]


def test_weights_that_do_not_match_the_config(tmp_path):
    import h5py
    import numpy as np

    missing = tmp_path / "missing.h5"
    missing.write_bytes((MODELS / "dense.h5").read_bytes())
    with h5py.File(missing, "r+") as f:
        del f["model_weights"]["dense"]["dense"]["kernel:0"]
    assert inspect_model(missing).problems == ("layer 'dense' lists weight 'dense/kernel:0' that the file does not hold",)

    extra = tmp_path / "extra.h5"
    extra.write_bytes((MODELS / "dense.h5").read_bytes())
    with h5py.File(extra, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"].attrs["layer_names"]]
        f["model_weights"].attrs["layer_names"] = np.array([*names, "ghost"], dtype="S")
        f["model_weights"].create_group("ghost")
    # a heuristic, not a certainty: a doubt, and the cells still run
    assert inspect_model(extra).doubts == ("weights for layer 'ghost', which the config does not have",)
    assert not inspect_model(extra).corrupt

    source = zipfile.ZipFile(MODELS / "dense_keras3.keras")
    weights = tmp_path / "w.h5"
    weights.write_bytes(source.read("model.weights.h5"))
    with h5py.File(weights, "r+") as f:
        del f["layers"]["dense_1"]
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(damaged, "w") as out:
        for name in ("metadata.json", "config.json"):
            out.writestr(name, source.read(name))
        out.writestr("model.weights.h5", weights.read_bytes())
    assert inspect_model(damaged).doubts == ("model.weights.h5 holds 2 layers, the config lists 3",)
    assert not inspect_model(damaged).corrupt


@pytest.mark.e2e
def test_no_false_alarm_on_models_saved_by_real_tensorflow(saved_models):
    for name, path in saved_models.items():
        if name != "truncated.h5":
            assert inspect_model(path).problems == (), name


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_model_paths_that_are_no_files(tmp_path, kind):
    import os

    if kind == "fifo":
        path = tmp_path / "m.h5"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    with pytest.raises(UsageError, match="is a FIFO" if kind == "fifo" else "is a device"):
        inspect_model(path)


def test_a_model_larger_than_any_is_refused(tmp_path, monkeypatch):
    from harness import modelfile

    path = tmp_path / "m.h5"
    path.write_bytes(modelfile.HDF5_SIGNATURE + b"\0" * 100)
    monkeypatch.setattr(modelfile, "MAX_MODEL_BYTES", 50)
    with pytest.raises(UsageError, match="larger than any model file"):
        inspect_model(path)


def test_functions_stored_as_code_are_found():
    from harness.modelread import count_code

    keras2_lambda = {"class_name": "Lambda", "config": {"function": ["4wEAAA==", None, None], "function_type": "lambda"}}
    keras2_shape = {"class_name": "Dense", "config": {"output_shape_type": "lambda"}}
    keras3 = {"class_name": "Activation", "config": {"activation": {"class_name": "__lambda__", "config": {"code": "..."}}}}
    assert count_code({"layers": [keras2_lambda, keras2_shape, keras3, {"class_name": "Dense", "config": {}}]}) == 3
    assert count_code({"layers": [{"class_name": "Dense", "config": {"function_type": "raw"}}]}) == 0


@pytest.mark.e2e
def test_the_builtin_names_file_holds_what_real_releases_export(saved_models, work_root):
    """harness/keras_builtins.txt is generated (tools/gen_keras_builtins.py): regenerating it
    from the test savers' releases (TF 2.15.1's tf.keras, TF 2.21.0's Keras 3) adds nothing."""
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "gen_keras_builtins.py"
    pythons = [str(work_root / v / "bin" / "python") for v in ("saver-tf2.15", "saver-tf2.21")]
    done = subprocess.run([sys.executable, str(tool), *pythons], capture_output=True, text=True, timeout=900, check=True)
    generated = {line for line in done.stdout.splitlines() if line and not line.startswith("#")}
    assert "keras 2.15.0" in done.stdout.splitlines()[0] and "keras 3." in done.stdout.splitlines()[0]
    assert {"Dense", "accuracy", "acc", "Functional", "TFOpLambda", "Policy", "DTypePolicy", "mse"} <= generated
    assert generated <= keras_builtins()


def test_an_inspection_is_kept_by_content_and_never_answers_for_other_bytes(tmp_path, monkeypatch):
    import shutil

    from harness import inspection

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "residual_block.h5"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "examples" / "models" / "residual_block.h5", model)
    first = inspect_model(model)

    def no_inspection(*args):
        raise AssertionError("inspected again")

    monkeypatch.setattr(inspection, "_run_reader", no_inspection)
    assert inspect_model(model) == first  # the same bytes at the same path: kept
    with open(model, "r+b") as handle:  # one byte of the weights changed, size and path the same
        handle.seek(first.size - 100)
        byte = handle.read(1)
        handle.seek(first.size - 100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(AssertionError, match="inspected again"):
        inspect_model(model)
