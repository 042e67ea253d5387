"""Keras 3 on every backend, for real: one Keras release on TensorFlow, on JAX and on PyTorch
(each installed from PyPI by its cell, no TensorFlow in the jax and torch cells), the README's
example models loaded in all three, the jax and torch cells' answers compared with the tensorflow
cell's, a custom layer written against tf.* diagnosed as TensorFlow-only content, files saved on
each backend loaded on the others, and a migration to jax proven by outputs. torch is one cell (its
PyPI wheels bring about 3 GB of CUDA libraries; the README says what it costs): the three tests
that use it share its environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_venv
from test_e2e_migrate import run_snippet
from test_e2e_published import published  # noqa: F401 - the pinned PyPI archives' files
from test_e2e_uv import result, run_harness

from harness import cli

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TF, JAX, TORCH = "py3.11-keras3.15.1-on-tensorflow", "py3.11-keras3.15.1-on-jax", "py3.11-keras3.15.1-on-torch"


TF_OPS = """
import sys, tensorflow as tf
inputs = tf.keras.Input(shape=(4,))
x = tf.keras.layers.Dense(3)(inputs)
x = tf.nn.relu(tf.math.multiply(x, 2.0))  # Keras 2 records these calls as TFOpLambda layers
tf.keras.Model(inputs, x).save(sys.argv[1])
"""


@pytest.fixture(scope="module")
def tf_ops_model(work_root, tmp_path_factory):
    """A functional model that calls tf.* on Keras tensors, saved now by a real TF 2.15.1."""
    saver = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
    path = tmp_path_factory.mktemp("tfops") / "tf_ops.h5"
    subprocess.run([str(saver), "-c", TF_OPS, str(path)], check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return path


def test_the_same_keras_on_tensorflow_jax_and_torch(tmp_path, monkeypatch, harness_cache, tf_ops_model):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("dense.h5", "dense_keras3.keras", "residual_block_keras3.keras"):
        shutil.copy(EXAMPLES / "models" / name, models / name)
    shutil.copy(tf_ops_model, models / "tf_ops.h5")
    matrix = EXAMPLES.parent / "matrices" / "keras3-backends.yaml"  # the shipped matrix, as the README runs it
    code = run_harness(monkeypatch, harness_cache, str(matrix), *map(str, sorted(models.iterdir())), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == 1
    assert [c["id"] for c in doc["cells"]] == [TF, JAX, TORCH]
    for cell, backend in ((JAX, "jax"), (TORCH, "torch")):
        here = result(doc, "dense.h5", cell)["versions"]
        assert here["keras-backend"] == backend and here["keras"] == "3.15.1" and backend in here
        assert not {"tensorflow", "tensorflow-cpu"} & set(here)  # no TensorFlow in the cell at all
    assert result(doc, "dense.h5", TF)["versions"]["keras-backend"] == "tensorflow"

    # a Keras 2 file and a Keras 3 file load on jax and torch and answer as on tensorflow, the same batches
    for cell in (JAX, TORCH):
        for name in ("dense.h5", "dense_keras3.keras"):
            r = result(doc, name, cell)
            assert r["status"] == "loaded", r
            assert r["output_diff"]["reference"] == TF and r["output_diff"]["max_abs"] < 1e-5, r["output_diff"]
            assert not r.get("detail"), r  # it ran on the input (torch's tensors detached)
        assert result(doc, "dense.h5", cell)["output_diff"]["backend"] == "tensorflow"  # a Keras 2 file: the twin on tensorflow

        # the custom layer is written against tf.*: TensorFlow-only content off tensorflow, said so, with what to change
        tf_only = result(doc, "residual_block_keras3.keras", cell)
        assert (tf_only["status"], tf_only["cause"]) == ("load-error", "backend")
        assert "imports tensorflow" in tf_only["fix"] and "keras.ops" in tf_only["fix"]
    assert result(doc, "residual_block_keras3.keras", TF)["status"] == "loaded-after-fix"
    # tf.* calls recorded as TFOpLambda layers: no Keras 3 rebuilds them; off tensorflow that is TensorFlow-only content
    for cell, cause in ((TF, "version-mismatch"), (JAX, "backend"), (TORCH, "backend")):
        ops = result(doc, "tf_ops.h5", cell)
        assert (ops["status"], ops["cause"]) == ("load-error", cause) and "Unknown layer: 'TFOpLambda'" in ops["exception"]["message"]
        assert "keras.ops" in ops["fix"] and "custom_objects=" not in ops["fix"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "on-jax" in md and "on-torch" in md and "cause: backend" in md


def test_published_files_on_jax_and_torch_and_a_savedmodel_that_only_tensorflow_reads(tmp_path, monkeypatch, harness_cache, published):  # noqa: F811
    """Files other projects published, on Keras 3 over JAX and PyTorch: a Keras 3.3 .keras (sleepecg)
    and Keras 2 HDF5 files (tempocnn, fer) load; tempocnn's cnn.h5 names its layers "Conv4.1", which
    torch refuses ('parameter name can't contain "."'): on torch it loads after the harness's torch
    repair (the layers renamed), tried in the cell; basic-pitch's SavedModel is TensorFlow's own
    format: Keras 3.15.1 on jax says TFSMLayer needs the TensorFlow backend, and the cause says so."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text("matrix:\n  python: ['3.11']\n  keras: ['3.15.1']\n  keras-backend: [jax, torch]\n")
    names = ("classifier.keras", "fcn.h5", "cnn.h5", "emotion_model.hdf5", "nmp")
    run_harness(monkeypatch, harness_cache, str(matrix), *(str(published[n]) for n in names), "-o", str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    for cell in (JAX, TORCH):
        assert result(doc, "classifier.keras", cell)["status"] == "loaded" and result(doc, "fcn.h5", cell)["status"] == "loaded"
        assert result(doc, "emotion_model.hdf5", cell)["status"] == "loaded-after-fix"  # its optimizer's lr: compile=False, proven
        nmp = result(doc, "nmp", cell)
        assert (nmp["status"], nmp["cause"]) == ("load-error", "backend") and "TensorFlow's own format" in nmp["fix"]
        serving = {a["fix"]: a for a in nmp["attempts"]}
        assert "only currently supported with the TensorFlow backend" in serving["TFSMLayer"]["message"]
        assert "tf-keras" not in nmp["fix"]  # no advice that needs TensorFlow in a cell that has none
    assert result(doc, "cnn.h5", JAX)["status"] == "loaded"
    dotted = result(doc, "cnn.h5", TORCH)
    assert (dotted["status"], dotted["cause"], dotted["fix_worked"]) == ("loaded-after-fix", "backend", "repaired config")
    assert "parameter name can" in dotted["exception"]["message"] and "torch refuses" in dotted["fix"]
    # no inference in this run: the rename loaded, and the fix says it is not proven by outputs
    # (test_a_file_torch_refuses_migrates_to_torch_proven_by_outputs proves them)
    assert "the repaired config loaded: layer names: '.' replaced by '_'" in dotted["fix"]
    assert "not proven: the repaired config loads here, but its outputs were not compared" in dotted["fix"]


def test_files_saved_on_jax_and_torch_load_on_tensorflow_and_back(tmp_path, monkeypatch, harness_cache):
    """examples/build_keras3.py saves a Functional model, a custom layer written with keras.ops
    and a Lambda model on each backend (harness crossload runs it in each cell); each file loads
    on the other backends: the custom layer with the build script itself as its (keras-only) custom objects module, the Lambda
    with safe_mode=False for a trusted file, never with TensorFlow in the jax or torch cell."""
    objects = EXAMPLES / "build_keras3.py"  # imported, it is the custom objects module of the files it saves
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f"matrix:\n  python: ['3.11']\n  keras: ['3.15.1']\n  keras-backend: [tensorflow, jax, torch]\nload: {{custom_objects: {objects}}}\n"
        "packages: {tensorflow: tensorflow-cpu}\n"
    )
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    build = EXAMPLES / "build_keras3.py"
    assert cli.main(["crossload", str(matrix), "--build", str(build), "-o", str(tmp_path / "out"), "--trust-models"]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    expected = {"functional.keras": (None,), "custom_ops.keras": ("custom_objects",), "lambda.keras": ("safe_mode=False",)}
    seen = set()
    for r in doc["results"]:
        name, saved_by = r["model"].split("@")
        assert r["status"] in ("loaded", "loaded-after-fix") and r.get("fix_worked") in expected[name], r
        seen.add((name, saved_by, r["cell"]))
    assert len(seen) == 3 * 3 * 3  # every file, saved on each backend, loaded on each
    assert {saved_by for _, saved_by, _ in seen} == {TF, JAX, TORCH}
    crossload = (tmp_path / "out" / "crossload.md").read_text()
    assert "on-jax" in crossload and "on-torch" in crossload


def test_a_keras_2_file_migrates_to_jax_proven_by_outputs(tmp_path, monkeypatch, harness_cache, published, work_root):  # noqa: F811
    """inaSpeechSegmenter's Keras 2.3.1 CNN does not load as it is in Keras 3.15.1 on jax (its Reshape
    carries batch_input_shape); harness migrate --keras-backend jax repairs the config, loads it in a
    cell with keras and jax only, and proves it by the outputs and weights of the TensorFlow source.
    migration.md's snippet runs as pasted in a plain keras + jax venv, and --verify re-proves it."""
    model, out = published["keras_speech_music_cnn.hdf5"], tmp_path / "on-jax"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    args = ["migrate", str(model), "--to", "keras==3.15.1", "--keras-backend", "jax", "--package", "tensorflow=tensorflow-cpu", "-o", str(out)]
    assert cli.main(args) == 0
    doc = json.loads((out / "migration.json").read_text())
    target = doc["target"]
    assert (target["cell"], target["keras_backend"], target["spec"]) == (JAX, "jax", "keras==3.15.1,keras-backend==jax")
    locked = {line.split("==")[0] for line in target["lock"]}
    assert {"keras", "jax", "jaxlib"} <= locked and not locked & {"tensorflow", "tensorflow-cpu", "tf-keras"}
    assert doc["source"]["cell"].startswith("py3.11-tensorflow")  # the reference answers on TensorFlow
    tried = {s["strategy"]: s for s in doc["strategies"]}
    assert not tried["as is"]["proven"] and "did not run on the input" in tried["as is"]["why"]  # Keras 3 misreads its input shape
    assert all("install tf-keras" not in s["why"] for s in doc["strategies"])  # no advice a jax cell cannot follow
    chosen = tried[doc["strategy"]]
    assert doc["strategy"] == "config repair" and any("an InputLayer of batch shape" in r for r in chosen["repairs"])
    assert chosen["weights"]["same"] is True and doc["max_abs_diff"] <= doc["tolerance"]["atol"] + doc["tolerance"]["rtol"]
    snippet = run_snippet(out, doc, work_root, ("keras3.15.1-jax", "keras==3.15.1", "jax[cpu]"))
    assert 'os.environ["KERAS_BACKEND"] = "jax"' in snippet
    assert cli.main(["migrate", "--verify", str(out)]) == 0


def test_a_file_torch_refuses_migrates_to_torch_proven_by_outputs(tmp_path, monkeypatch, harness_cache, published):  # noqa: F811
    """tempocnn's cnn.h5 (layers named "Conv4.1") to Keras 3.15.1 on torch: the renamed file is
    proven by the TensorFlow source's outputs and every one of its weight tensors."""
    out = tmp_path / "on-torch"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    args = ["migrate", str(published["cnn.h5"]), "--to", "keras==3.15.1", "--keras-backend", "torch", "--package", "tensorflow=tensorflow-cpu"]
    assert cli.main([*args, "-o", str(out)]) == 0
    doc = json.loads((out / "migration.json").read_text())
    assert (doc["target"]["cell"], doc["target"]["keras_backend"], doc["strategy"]) == (TORCH, "torch", "config repair")
    tried = {s["strategy"]: s for s in doc["strategies"]}
    assert tried["as is"]["status"] == "load-error" and "parameter name can" in tried["as is"]["message"]
    assert any("'.' replaced by '_'" in r for r in tried["config repair"]["repairs"])
    assert tried["config repair"]["weights"]["same"] is True and tried["config repair"]["weights"]["total"] > 100
