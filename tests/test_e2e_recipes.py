"""Fix recipes, tried for real: files in the shapes older Keras wrote, saved by a real
TensorFlow at test time, run in a Keras 2 and a Keras 3 cell; then each recipe the report
calls proven (and the one it calls not tried) is followed by hand in a plain venv.

The files (saved by tensorflow-cpu 2.15.1, their configs then written as older Keras wrote them):
- lambda_activation.h5: Dense(activation=lambda x: x * 2), its activation saved by name
  ('<lambda>'), as TF 2.12 and every Keras before it wrote it (TF 2.13+ marshal the code);
- gru_keras20.h5: a GRU whose config has no reset_after and keras_version 2.0.8, as Keras 2.0 wrote it;
- lstm_keras1.h5: an LSTM, Dropout and Dense with Keras 1.2.2's argument names.

What plain loads raised (2026-12-07, tensorflow-cpu 2.12.1, 2.15.1, 2.21.0 and tf-keras 2.21.0):
lambda: "Unknown activation function: '<lambda>'" (Keras 2) / "Could not interpret activation
function identifier: <lambda>" (Keras 3); GRU: "GRU(reset_after=False) is not compatible with
GRU(reset_after=True)" (Keras 2) / "Unrecognized keyword arguments passed to GRU: {'time_major':
False}" (Keras 3); LSTM: "LSTM.__init__() missing 1 required positional argument: 'units'" (all).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness import cli

pytestmark = pytest.mark.e2e

SAVE = r"""
import json, sys, h5py, tensorflow as tf
k, out = tf.keras, sys.argv[1]

def rewrite(path, version, change):
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for entry in config["config"]["layers"]:
            change(entry["class_name"], entry["config"])
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = version
        f["model_weights"].attrs["keras_version"] = version

m = k.Sequential([k.layers.Input((4,)), k.layers.Dense(3, activation=lambda x: x * 2)])
m.save(out + "/lambda_activation.h5")
rewrite(out + "/lambda_activation.h5", "2.12.0", lambda kind, c: c.update(activation="<lambda>") if kind == "Dense" else None)

m = k.Sequential([k.layers.Input((5, 3)), k.layers.GRU(4, reset_after=False), k.layers.Dense(2)])
m.save(out + "/gru_keras20.h5")
rewrite(out + "/gru_keras20.h5", "2.0.8", lambda kind, c: c.pop("reset_after", None))

KERAS1 = {"units": "output_dim", "recurrent_activation": "inner_activation", "kernel_initializer": "init",
          "recurrent_initializer": "inner_init", "kernel_regularizer": "W_regularizer", "recurrent_regularizer": "U_regularizer",
          "bias_regularizer": "b_regularizer", "dropout": "dropout_W", "recurrent_dropout": "dropout_U", "rate": "p", "use_bias": "bias"}

def keras1(kind, c):
    if kind not in ("LSTM", "Dense", "Dropout"):
        return
    for new, old in KERAS1.items():
        if new in c:
            c[old] = c.pop(new)
    if kind == "LSTM":
        for gone in ("time_major", "unit_forget_bias", "implementation", "kernel_constraint", "recurrent_constraint",
                     "bias_constraint", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"):
            c.pop(gone, None)
        c.update(consume_less="cpu", forget_bias_init="one")

m = k.Sequential([k.layers.Input((6, 3)), k.layers.LSTM(4, recurrent_activation="hard_sigmoid"), k.layers.Dropout(0.1), k.layers.Dense(2)])
m.save(out + "/lstm_keras1.h5", include_optimizer=False)
rewrite(out + "/lstm_keras1.h5", "1.2.2", keras1)
"""

MATRIX = """
name: recipes
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
packages: {tensorflow: tensorflow-cpu}
load: {timeout: 240}
"""
K2 = "py3.11-tensorflow2.15.1"
K3 = "py3.11-tensorflow2.21.0"

# A recipe followed by hand: the file's config changed as the recipe's repairs say (with h5py,
# as a user would), then a plain load_model in a plain venv with the recipe's pins.
BY_HAND = r"""
import json, shutil, sys, h5py
import tensorflow as tf
source, target, steps, objects = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
shutil.copy(source, target)
with h5py.File(target, "r+") as f:
    config = json.loads(f.attrs["model_config"])
    for entry in config["config"]["layers"]:
        c = entry["config"]
        if "reset_after" in steps and entry["class_name"] == "GRU":
            c["reset_after"] = False
        if "time_major" in steps:
            c.pop("time_major", None)
        if "keras1" in steps:
            for old, new in {"output_dim": "units", "inner_activation": "recurrent_activation", "init": "kernel_initializer",
                             "inner_init": "recurrent_initializer", "W_regularizer": "kernel_regularizer",
                             "U_regularizer": "recurrent_regularizer", "b_regularizer": "bias_regularizer", "dropout_W": "dropout",
                             "dropout_U": "recurrent_dropout", "p": "rate", "bias": "use_bias"}.items():
                if old in c:
                    c[new] = c.pop(old)
            if "consume_less" in c:
                c.pop("consume_less")
                c["implementation"] = 1
            if c.pop("forget_bias_init", None):
                c["unit_forget_bias"] = True
    f.attrs["model_config"] = json.dumps(config)
custom = {"<lambda>": lambda x: x * 2} if objects == "lambda" else None
model = tf.keras.models.load_model(target, custom_objects=custom)
print("LOADED", type(model).__name__)
"""


@pytest.fixture(scope="module")
def older(work_root: Path) -> dict[str, Path]:
    from conftest import make_venv

    out = work_root / "older"
    out.mkdir(exist_ok=True)
    if not (out / "lstm_keras1.h5").exists():
        python = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
        script = out / "save_older.py"  # a file: Keras 2.15 reads a lambda's source to save it, which `-c` has not
        script.write_text(SAVE)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([str(python), str(script), str(out)], check=True, capture_output=True, env=env)
    return {name: out / name for name in ("lambda_activation.h5", "gru_keras20.h5", "lstm_keras1.h5")}


@pytest.fixture(scope="module")
def recipes_run(tmp_path_factory: pytest.TempPathFactory, older: dict[str, Path], harness_cache: Path) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("recipes")
    (work / "matrix.yaml").write_text(textwrap.dedent(MATRIX))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(harness_cache))
        mp.setenv("HARNESS_STORE", str(work / "store.sqlite"))
        code = cli.main(["run", str(work / "matrix.yaml"), *(str(p) for p in older.values()), "-o", str(work / "out"), "-j", "2"])
    return {"code": code, "doc": json.loads((work / "out" / "results.json").read_text())}


def result(doc: dict[str, Any], model: str, cell: str) -> dict[str, Any]:
    found = [r for r in doc["results"] if r["model"] == model and r["cell"] == cell]
    assert len(found) == 1
    return found[0]


def test_older_files_load_after_the_repairs_the_harness_tried_in_the_cell(recipes_run):
    doc = recipes_run["doc"]
    for model, first in (("gru_keras20.h5", {K2: "GRU(reset_after=False)", K3: "time_major"}), ("lstm_keras1.h5", None)):
        for cell in (K2, K3):
            r = result(doc, model, cell)
            assert (r["status"], r["fix_worked"], r["cause"]) == ("loaded-after-fix", "repaired config", "version-mismatch"), (model, cell)
            assert r["recipe"]["proven"] is True and r["recipe"]["where"] == cell
            assert r["recipe"]["environment"]["pins"] == {"tensorflow": cell.rpartition("tensorflow")[2]}
            assert r["recipe"]["load"]["repairs"] and "proven" in r["fix"]
            if first:
                assert first[cell] in r["exception"]["message"]
    gru3 = result(doc, "gru_keras20.h5", K3)["recipe"]["load"]["repairs"]
    assert any("reset_after=False" in x for x in gru3) and any("time_major" in x for x in gru3)
    lstm = result(doc, "lstm_keras1.h5", K2)
    assert "missing 1 required positional argument: 'units'" in lstm["exception"]["message"] and "Keras 1 argument names" in lstm["fix"]
    assert "TF_USE_LEGACY_KERAS" not in lstm["fix"]


def test_a_lambda_activation_is_a_custom_object_whose_only_blocker_the_stand_in_shows(recipes_run):
    doc = recipes_run["doc"]
    for cell in (K2, K3):
        r = result(doc, "lambda_activation.h5", cell)
        assert (r["status"], r["cause"], r["missing_name"]) == ("load-error", "custom-object", "<lambda>")
        assert r["attempts"][-1]["fix"] == "stand-in functions" and r["attempts"][-1]["ok"] and r["attempts"][-1]["standin"]
        assert r["recipe"]["proven"] is False and "your function" in r["recipe"]["why"]
        assert r["recipe"]["load"]["custom_objects"] == ["<lambda>"]
        assert "TF_USE_LEGACY_KERAS" not in r["fix"] and "stand-in" in r["fix"]
        # the model's own warnings only: the other models of the cell print theirs elsewhere
        assert "--- stand-in functions" in r["stderr_tail"] and "--- repaired config" not in r["stderr_tail"]


@pytest.mark.parametrize(
    ("model", "cell", "steps", "objects"),
    [
        ("gru_keras20.h5", K2, ["reset_after"], ""),
        ("gru_keras20.h5", K3, ["reset_after", "time_major"], ""),
        ("lstm_keras1.h5", K2, ["keras1"], ""),
        ("lstm_keras1.h5", K3, ["keras1"], ""),
        ("lambda_activation.h5", K2, [], "lambda"),
        ("lambda_activation.h5", K3, [], "lambda"),
    ],
)
def test_each_recipe_followed_by_hand_in_a_plain_venv_loads(recipes_run, older, work_root, tmp_path, model, cell, steps, objects):
    """The recipe's pins make a plain venv (the same one the fixtures save with); its repairs
    are made by hand; load_model as the sentence says (custom_objects with the user's lambda)."""
    from conftest import make_venv

    r = result(recipes_run["doc"], model, cell)
    pins = r["recipe"]["environment"]["pins"] if r["recipe"]["environment"] else {"tensorflow": cell.rpartition("tensorflow")[2]}
    version = pins["tensorflow"]
    python = make_venv(
        work_root / f"saver-tf{version.rpartition('.')[0]}",
        f"tensorflow-cpu=={version}",
        *(["tensorflow-addons==0.23.0"] if version == "2.15.1" else []),
    )
    if objects:
        assert r["recipe"]["load"]["custom_objects"] == ["<lambda>"]
    else:
        said = " ".join(r["recipe"]["load"]["repairs"])
        assert all(step.replace("keras1", "Keras 1 arguments") in said for step in steps)
    done = subprocess.run(
        [str(python), "-c", BY_HAND, str(older[model]), str(tmp_path / model), json.dumps(steps), objects],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert "LOADED" in done.stdout, done.stderr[-2000:]
