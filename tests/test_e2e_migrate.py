"""`harness migrate` end to end: files saved during the run by real TensorFlow releases,
migrated in real environments, proven (or not) by their outputs.

Keras 2 files (TF 2.15.1) go to TF 2.21.0 (Keras 3), a Keras 3 file (TF 2.21.0) goes back
to TF 2.15.1. The verification is checked too: a candidate whose weights were changed
after the repair must not be proven.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import make_venv

from harness import cli
from harness import migrate as migrate_module

pytestmark = pytest.mark.e2e

TO_KERAS3 = ["--to", "tensorflow==2.21.0", "--package", "tensorflow=tensorflow-cpu"]
TO_KERAS2 = ["--to", "2.15", "--package", "tensorflow=tensorflow-cpu"]

# Keras 2 files with differences Keras 3 refuses, and a custom layer whose code only runs in
# Keras 2 (add_weight's first positional argument is the name there, the shape in Keras 3).
SAVE_KERAS2 = """
import os, sys, tensorflow as tf
keras = tf.keras
out = sys.argv[1]
sys.path.insert(0, out)
inputs = keras.Input((8, 8, 3))
x = keras.layers.GlobalAveragePooling2D()(keras.layers.DepthwiseConv2D(3, padding="same")(inputs))
depthwise = keras.Model(inputs, keras.layers.Dense(2)(x))
depthwise.compile(optimizer="adam", loss="mse")
depthwise.save(os.path.join(out, "depthwise.h5"))
inputs = keras.Input((5, 3))
gru = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(4)(inputs)))
gru.compile(optimizer="adam", loss="mse")
gru.save(os.path.join(out, "gru.h5"))
from keras2_only import Scale
inputs = keras.Input((3,))
keras.Model(inputs, Scale()(keras.layers.Dense(3)(inputs))).save(os.path.join(out, "keras2_code.h5"))
# a text classifier: word ids (a float Input, as most tutorials write it) into an Embedding of 50 words, 12 steps
inputs = keras.Input((12,))
x = keras.layers.LSTM(6)(keras.layers.Embedding(50, 8)(inputs))
text = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
text.compile(optimizer="adam", loss="categorical_crossentropy")
text.save(os.path.join(out, "embedding_lstm.h5"))
# two inputs, a dict of two outputs, saved as a SavedModel
a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
joined = keras.layers.Concatenate()([a, b])
keras.Model([a, b], {"score": keras.layers.Dense(1, name="score")(joined), "label": keras.layers.Dense(3, name="label")(joined)}).save(
    os.path.join(out, "dict_outputs")
)
# two inputs, exported for serving (no Keras model in it): Keras 3 reaches it only through its signature
a, b = keras.Input((4,), name="left"), keras.Input((2,), name="right")
keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))).export(os.path.join(out, "exported_two"))
"""
KERAS2_ONLY = """
import tensorflow as tf


class Scale(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight("scale", shape=(int(input_shape[-1]),), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


CUSTOM_OBJECTS = {"Scale": Scale}
"""
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras2_files(work_root: Path) -> dict[str, Path]:
    out = work_root / "migrate-models"
    out.mkdir(exist_ok=True)
    (out / "keras2_only.py").write_text(KERAS2_ONLY)
    if not (out / "exported_two").exists():
        python = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([str(python), "-c", SAVE_KERAS2, str(out)], check=True, env=env, capture_output=True)
    return {p.name: p for p in out.iterdir()}


def migrate(monkeypatch: pytest.MonkeyPatch, cache: Path, model: Path, outdir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    code = cli.main(["migrate", str(model), *args, "-o", str(outdir)])
    return code, json.loads((outdir / "migration.json").read_text())


# migration.md's "How to load it" block, run as a user pastes it: in a plain venv of the target's
# release, in the folder of the migrated file, with `inputs` a batch shaped as migration.json's input
RUN_SNIPPET = r"""
import json, sys
import numpy as np
spec = json.loads(sys.argv[1])
random = np.random.RandomState(1)
arrays = {}
for item in spec:
    if "low" in item and item["dtype"].startswith(("int", "uint")) or item.get("high", 1.0) > 1.0:
        arrays[item["name"]] = random.randint(item["low"], item["high"], size=item["shape"]).astype(item["dtype"])
    else:
        arrays[item["name"]] = random.uniform(-1, 1, size=item["shape"]).astype(item["dtype"])
inputs = next(iter(arrays.values())) if len(arrays) == 1 else arrays
scope = {"inputs": inputs}
exec(compile(sys.argv[2], "migration.md", "exec"), scope)
outputs = scope["outputs"] if "outputs" in scope else scope["model"](inputs)
flat = outputs.values() if isinstance(outputs, dict) else (outputs if isinstance(outputs, (list, tuple)) else [outputs])
print("RAN", [tuple(np.asarray(o).shape) for o in flat])
"""


def run_snippet(out: Path, doc: dict[str, Any], work_root: Path, venv: tuple[str, ...] = ("saver-tf2.21", "tensorflow-cpu==2.21.0")) -> str:
    """`venv`: the plain venv's folder name and what it installs (the target's release)."""
    import re

    text = (out / "migration.md").read_text()
    [snippet] = re.findall(r"## How to load it\n\n```python\n(.*?)\n```", text, re.S)
    python = make_venv(work_root / venv[0], *venv[1:])
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # the snippet sets its own
    done = subprocess.run(
        [str(python), "-c", RUN_SNIPPET, json.dumps(doc["input"]), snippet],
        cwd=out,
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO / "examples")},
        timeout=600,
    )
    assert "RAN" in done.stdout, (snippet, done.stderr[-3000:])
    return snippet


def strategies(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["strategy"]: s for s in doc["strategies"]}


@pytest.mark.parametrize(
    ("name", "repair"),
    [
        ("depthwise.h5", "dropped groups=1"),
        ("gru.h5", "dropped time_major=False"),
        ("lstm.h5", "dropped time_major=False"),
        ("mixed_precision.h5", "dtype policy object -> 'mixed_float16'"),
    ],
)
def test_keras2_files_migrate_to_keras3_proven_by_outputs(name, repair, tmp_path, monkeypatch, keras2_files, saved_models, harness_cache):
    model = keras2_files.get(name) or saved_models[name]
    code, doc = migrate(monkeypatch, harness_cache, model, tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["proven"] is True and doc["target"]["cell"] == "py3.11-tensorflow2.21.0"
    tried = strategies(doc)
    assert tried["as is"]["status"] == "load-error" and not tried["as is"]["proven"]  # it needed migrating
    chosen = tried[doc["strategy"]]
    assert doc["strategy"].startswith("config repair") and any(repair in r for r in chosen["repairs"])
    assert doc["max_abs_diff"] <= doc["tolerance"]["atol"] + doc["tolerance"]["rtol"]
    migrated = tmp_path / "out" / doc["migrated"]
    assert migrated.is_file() and migrated.read_bytes() != model.read_bytes()
    text = (tmp_path / "out" / "migration.md").read_text()
    assert "**Proven**" in text and repair in text and f"keras.models.load_model({doc['migrated']!r})" in text
    if name == "mixed_precision.h5":  # float16 arithmetic: the tolerance says why it is wider
        assert doc["tolerance"]["atol"] == 1e-3 and "mixed_float16" in doc["tolerance"]["why"]


def test_an_addons_layer_becomes_its_keras_equivalent(tmp_path, monkeypatch, saved_models, harness_cache):
    """The source is TF 2.15 with tensorflow-addons (read from the file); the target has no Addons."""
    code, doc = migrate(monkeypatch, harness_cache, saved_models["addons_groupnorm.h5"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["source"]["cell"] == "py3.11-tensorflow2.15.1-tensorflow-addons0.23.0"
    chosen = strategies(doc)[doc["strategy"]]
    assert any("Addons>GroupNormalization -> GroupNormalization" in r for r in chosen["repairs"])
    assert doc["max_abs_diff"] <= 1e-5


def test_a_nested_sequential_keras3_cannot_read_is_renumbered(tmp_path, monkeypatch, saved_models, harness_cache):
    """Keras 3.15 refuses a TF 2.15 file whose nested Sequential's second node is named."""
    code, doc = migrate(monkeypatch, harness_cache, saved_models["nested.h5"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and "disconnected nodes" in strategies(doc)["as is"]["why"]
    assert any("node indices of nested model(s) inner" in r for r in strategies(doc)[doc["strategy"]]["repairs"])


def test_a_savedmodel_crosses_through_the_bridge_to_a_keras3_file(tmp_path, monkeypatch, saved_models, harness_cache, work_root):
    """A Keras 2 SavedModel (a custom layer, a Lambda, a nested Sequential): exported in TF 2.15,
    assembled, loaded and saved by Keras 3, and that .keras file proven by loading it fresh."""
    objects = REPO / "examples" / "custom_objects.py"
    args = (*TO_KERAS3, "--custom-objects", str(objects), "--trust-models")  # the Lambda's code runs only when trusted
    code, doc = migrate(monkeypatch, harness_cache, saved_models["residual_savedmodel"], tmp_path / "out", *args)
    tried = strategies(doc)
    assert code == 0 and doc["strategy"] == "bridge re-save" and doc["migrated"] == "residual_savedmodel.keras"
    assert tried["as is"]["status"] == "load-error" and tried["bridge"]["status"] in ("loaded", "loaded-after-fix")
    # the chain keeps the custom objects that got the load past its first blocker, then safe_mode=False
    assert doc["loaded_with"] == "custom_objects+safe_mode=False" and doc["max_abs_diff"] <= 1e-5
    assert zipfile.is_zipfile(tmp_path / "out" / doc["migrated"])
    text = (tmp_path / "out" / "migration.md").read_text()
    assert "load_model('residual_savedmodel.keras', custom_objects=CUSTOM_OBJECTS, safe_mode=False)" in text
    assert "training config" in text  # what it cannot do: said
    run_snippet(tmp_path / "out", doc, work_root)  # with examples/ on the path: its custom_objects module


def test_an_exported_savedmodel_is_rescued_for_inference_and_says_so(tmp_path, monkeypatch, saved_models, harness_cache, work_root):
    """Keras 3's model.export holds no Keras model: no load_model reads it, anywhere. The source
    (found by trying: the file names no Keras) runs its signature through tf.saved_model.load, the
    target through TFSMLayer; the folder is copied whole and migration.md says inference only."""
    code, doc = migrate(monkeypatch, harness_cache, saved_models["exported_keras3"], tmp_path / "out", *TO_KERAS3)
    tried = strategies(doc)
    assert code == 0 and doc["strategy"] == "SavedModel rescue" and doc["loaded_with"] == "TFSMLayer"
    assert doc["reference"]["loaded_with"] == "tf.saved_model.load" and doc["source"]["pins"]["tensorflow"].startswith("2.15")
    assert tried["as is"]["status"] == "load-error" and "File format not supported" in tried["as is"]["message"]
    assert "no Keras model to export" in tried["bridge re-save"]["why"]
    assert doc["max_abs_diff"] <= 1e-5
    written = tmp_path / "out" / doc["migrated"]
    assert written.is_dir() and (written / "saved_model.pb").is_file()
    text = (tmp_path / "out" / "migration.md").read_text()
    assert "keras.layers.TFSMLayer('exported_keras3', call_endpoint=\"serving_default\")" in text and "inference only" in text
    assert "outputs = model(inputs)" in run_snippet(tmp_path / "out", doc, work_root)


def test_a_lambda_loss_is_dropped_with_a_note(tmp_path, monkeypatch, saved_models, harness_cache):
    code, doc = migrate(monkeypatch, harness_cache, saved_models["lambda_loss.h5"], tmp_path / "out", *TO_KERAS3)
    tried = strategies(doc)
    assert code == 0 and doc["strategy"] == "config repair" and doc["loaded_with"] is None  # loads plainly
    assert tried["as is"]["loaded_with"] == "compile=False" and not tried["as is"]["proven"]  # only without its training config
    assert any("'<lambda>'" in r for r in tried["config repair"]["repairs"])
    assert "compile the model again" in (tmp_path / "out" / "migration.md").read_text()


def test_a_hdf5_file_under_a_keras_name_is_renamed(tmp_path, monkeypatch, saved_models, harness_cache):
    code, doc = migrate(monkeypatch, harness_cache, saved_models["hdf5_named.keras"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["migrated"] == "hdf5_named.h5"
    assert strategies(doc)["format"]["status"] in ("loaded", "loaded-after-fix")


def test_a_custom_layer_migrates_with_its_custom_objects(tmp_path, monkeypatch, saved_models, harness_cache):
    objects = REPO / "examples" / "custom_objects.py"
    code, doc = migrate(
        monkeypatch, harness_cache, saved_models["residual_block.h5"], tmp_path / "out", *TO_KERAS3, "--custom-objects", str(objects)
    )
    assert code == 0 and doc["loaded_with"] == "custom_objects"
    assert "custom_objects=CUSTOM_OBJECTS" in (tmp_path / "out" / "migration.md").read_text()


def test_a_keras3_file_migrates_back_to_tf_2_15(tmp_path, monkeypatch, saved_models, harness_cache):
    code, doc = migrate(monkeypatch, harness_cache, saved_models["dense_keras3.keras"], tmp_path / "out", *TO_KERAS2)
    assert code == 0 and doc["target"]["cell"] == "py3.11-tensorflow2.15.1" and "keras==3." in doc["source"]["spec"]
    chosen = strategies(doc)[doc["strategy"]]
    assert any("keras.src.engine.functional" in r for r in chosen["repairs"])


def test_code_written_for_keras2_fails_honestly_with_what_it_raised(tmp_path, monkeypatch, keras2_files, harness_cache):
    code, doc = migrate(
        monkeypatch,
        harness_cache,
        keras2_files["keras2_code.h5"],
        tmp_path / "out",
        *TO_KERAS3,
        "--custom-objects",
        str(keras2_files["keras2_only.py"]),
    )
    assert code == 1 and doc["proven"] is False and doc["migrated"] is None
    why = strategies(doc)["as is"]["why"]
    assert "inside their code" in why and "add_weight" in why  # Keras 3's own words about the user's layer
    assert "no config change reaches it" in (tmp_path / "out" / "migration.md").read_text()
    assert not list((tmp_path / "out").glob("keras2_code.*"))


@pytest.mark.parametrize("delta", [0.5, 1e-7])
def test_the_proof_catches_a_changed_weight(tmp_path, monkeypatch, keras2_files, harness_cache, delta):
    """Every candidate file gets one weight changed after it is written (the repaired copies and
    the bridge's assembled file): none may be proven. 0.5 moves the outputs; 1e-7 does not (well
    inside atol 1e-5, as a dead filter's weight would not), and the weights' digests catch it."""

    def damage(target: Path) -> None:
        with h5py.File(target, "r+") as h5:
            kernels: list[Any] = []
            h5["model_weights"].visititems(lambda name, node: kernels.append(node) if isinstance(node, h5py.Dataset) else None)
            dense = next(k for k in kernels if "dense" in k.name and "kernel" in k.name)
            values = np.array(dense[...])
            values.flat[0] += delta
            dense[...] = values

    def damaging(real: Any) -> Any:
        def write(source_or_config: Any, weights_or_target: Any, *rest: Any) -> None:
            real(source_or_config, weights_or_target, *rest)
            damage(rest[0] if rest and isinstance(rest[0], Path) else weights_or_target)

        return write

    monkeypatch.setattr(migrate_module, "write_repaired", damaging(migrate_module.write_repaired))
    monkeypatch.setattr(migrate_module, "assemble", damaging(migrate_module.assemble))
    code, doc = migrate(monkeypatch, harness_cache, keras2_files["depthwise.h5"], tmp_path / "out", *TO_KERAS3)
    assert code == 1 and doc["proven"] is False
    loaded = [s for s in doc["strategies"] if s["strategy"] != "as is"]
    assert {s["strategy"] for s in loaded} >= {"config repair", "bridge"}
    assert all(s["status"] in ("loaded", "loaded-after-fix") for s in loaded)
    if delta == 0.5:
        assert all("answers differently" in s["why"] and s["max_abs_diff"] > doc["tolerance"]["atol"] for s in loaded)
    else:
        assert all(s["max_abs_diff"] <= doc["tolerance"]["atol"] for s in loaded)  # the outputs alone would pass
        total = loaded[0]["weights"]["total"]
        assert all(s["weights"] == {"equal": total - 1, "total": total, "here": total, "same": False} for s in loaded)
        assert all(f"holds {total - 1} of {total}" in s["why"] for s in loaded)


def test_a_file_that_does_not_say_its_keras_finds_a_source_by_trying(tmp_path, monkeypatch, keras2_files, harness_cache):
    unsigned = tmp_path / "unsigned.h5"
    unsigned.write_bytes(keras2_files["gru.h5"].read_bytes())
    with h5py.File(unsigned, "r+") as h5:
        del h5.attrs["keras_version"]
    code, doc = migrate(monkeypatch, harness_cache, unsigned, tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["source"]["spec"] == "tensorflow==2.15" and doc["model"]["saved_by_keras"] is None


def test_word_ids_into_an_embedding_get_ids_in_its_range_and_the_input_is_recorded(
    tmp_path, monkeypatch, keras2_files, harness_cache, work_root
):
    """A float ramp from -1 would be an out-of-range word id (TF raises on it); the input is
    made from the model: ids in [0, 50), three batches of four rows (edge values, two seeded), each
    called on its own in the source and in the target, each with its own difference."""
    code, doc = migrate(monkeypatch, harness_cache, keras2_files["embedding_lstm.h5"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["proven"] is True, [s["why"] for s in doc["strategies"]]
    [given] = doc["input"]
    assert (given["shape"], given["low"], given["high"]) == ([4, 12], 0, 50)
    assert [b.get("seed") for b in given["batches"]] == [None, 0, 1]
    assert [b["rows"] for b in doc["batch_diffs"]] == [4, 4, 4] and all(b["max_abs"] <= 1e-5 for b in doc["batch_diffs"])
    assert "in [0, 50)" in (tmp_path / "out" / "migration.md").read_text()
    assert "keras.models.load_model(" in run_snippet(tmp_path / "out", doc, work_root)


def test_a_dict_of_outputs_from_a_two_input_savedmodel_is_compared_by_name(tmp_path, monkeypatch, keras2_files, harness_cache, work_root):
    code, doc = migrate(monkeypatch, harness_cache, keras2_files["dict_outputs"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["proven"] is True, [s["why"] for s in doc["strategies"]]
    assert [i["name"] for i in doc["input"]] == ["a", "b"] and [i["shape"] for i in doc["input"]] == [[4, 4], [4, 3]]
    outputs = np.load(next((tmp_path / "out" / "work").glob("source-0/outputs/**/*.npz")))  # the source's outputs, by the model's names
    assert sorted(outputs.files) == ["label", "score"]
    run_snippet(tmp_path / "out", doc, work_root)


def test_a_two_input_export_runs_through_tfsmlayer_and_its_snippet_runs(tmp_path, monkeypatch, keras2_files, harness_cache, work_root):
    """Keras 2's model.export with two inputs: only the signature reaches it in Keras 3; TFSMLayer
    passes one positional input on, so the snippet calls the endpoint by the inputs' names."""
    code, doc = migrate(monkeypatch, harness_cache, keras2_files["exported_two"], tmp_path / "out", *TO_KERAS3)
    assert code == 0 and doc["loaded_with"] == "TFSMLayer", [s["why"] for s in doc["strategies"]]
    assert "call_endpoint_fn(**inputs)" in run_snippet(tmp_path / "out", doc, work_root)


def test_verify_re_proves_a_migrated_folder_and_names_what_changed(tmp_path, monkeypatch, keras2_files, harness_cache, capsys):
    """`harness migrate --verify DIR`: the recorded target, input, source outputs and weights."""
    out = tmp_path / "out"
    code, doc = migrate(monkeypatch, harness_cache, keras2_files["gru.h5"], out, *TO_KERAS3)
    assert code == 0 and doc["proof"]["input"]["file"] == "proof/input.npz"
    capsys.readouterr()
    assert cli.main(["migrate", "--verify", str(out)]) == 0
    said = capsys.readouterr().out
    assert "verified:" in said and "weight tensors equal" in said
    # one weight changed by 1e-7: the outputs stay inside atol, the file and its weights do not
    migrated = out / doc["migrated"]

    def nudge(path: Path) -> None:
        with h5py.File(path, "r+") as h5:
            kernels: list[Any] = []
            h5.visititems(lambda name, node: kernels.append(node) if isinstance(node, h5py.Dataset) and node.ndim == 2 else None)
            values = np.array(kernels[0][...])
            values.flat[0] += 1e-7
            kernels[0][...] = values

    if zipfile.is_zipfile(migrated):  # a .keras archive: its weights file inside
        with zipfile.ZipFile(migrated) as old:
            members = {n: old.read(n) for n in old.namelist()}
        weights = tmp_path / "w.h5"
        weights.write_bytes(members["model.weights.h5"])
        nudge(weights)
        members["model.weights.h5"] = weights.read_bytes()
        with zipfile.ZipFile(migrated, "w") as new:
            for name, data in members.items():
                new.writestr(name, data)
    else:
        nudge(migrated)
    assert cli.main(["migrate", "--verify", str(out)]) == 1
    said = capsys.readouterr().out
    assert "is not the file that was proven" in said and "of the source's weight tensors with equal values" in said
    # a migration.json whose names leave the folder is refused in one line
    record = json.loads((out / "migration.json").read_text())
    record["migrated"] = "../../etc/passwd"
    (out / "migration.json").write_text(json.dumps(record))
    assert cli.main(["migrate", "--verify", str(out)]) == 2
    assert "is not a name in the folder" in capsys.readouterr().err
