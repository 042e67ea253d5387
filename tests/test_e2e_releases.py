"""The static checks on files written by every TensorFlow line from 2.12 to 2.21.

A static check may call a file corrupt only when it is certain: each release below
writes a Functional, a Sequential and a nested model as `.keras` and `.h5` in a plain
venv, and `inspect` must find no problem and no doubt in any of them (TF 2.13 keeps
`.keras` weights under `_layer_checkpoint_dependencies/`, TF 2.12 writes HDF5 under
a `.keras` name: layouts a rule written for one release would misread).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_venv

from harness.inspection import inspect_model

pytestmark = pytest.mark.e2e

# The newest release of each line (tensorflow-cpu on PyPI, Python 3.11), as `pip install
# tensorflow-cpu==X` gets it today (TF 2.16+ then brings the newest Keras 3), and the Keras 3
# minor that was current beside each TF 2.16-2.20 (their .keras layouts differ).
RELEASES = [
    *(("tensorflow-cpu==" + v,) for v in ("2.12.1", "2.13.1", "2.14.1", "2.15.1", "2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.20.0", "2.21.0")),
    ("tensorflow-cpu==2.16.2", "keras==3.3.3"),
    ("tensorflow-cpu==2.17.1", "keras==3.5.0"),
    ("tensorflow-cpu==2.18.1", "keras==3.8.0"),
    ("tensorflow-cpu==2.19.1", "keras==3.10.0"),
    ("tensorflow-cpu==2.20.0", "keras==3.11.3"),
]

SAVE = """
import os, sys, tensorflow as tf
keras = tf.keras
out = sys.argv[1]
def functional():
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.BatchNormalization()(hidden)))
def sequential():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.1), keras.layers.Dense(2)])
def nested():
    inner = sequential()
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(1)(inner(inputs)))
for name, build in (("functional", functional), ("sequential", sequential), ("nested", nested)):
    model = build()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    for suffix in (".keras", ".h5"):
        model.save(os.path.join(out, name + suffix))
print(getattr(keras, "__version__", None) or __import__("keras").__version__)
"""


@pytest.mark.parametrize("requirements", RELEASES, ids=lambda r: "+".join(x.split("==")[1] for x in r))
def test_files_written_by_every_release_are_sound(requirements: tuple[str, ...], work_root: Path) -> None:
    release = "+".join(x.split("==")[1] for x in requirements)
    python = make_venv(work_root / f"saver-release-{release}", *requirements)
    out = work_root / "release-models" / release
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([str(python), "-c", SAVE, str(out)], check=True, env=env, capture_output=True, text=True, timeout=600)
    keras_version = done.stdout.strip().splitlines()[-1]
    for file in sorted(out.iterdir()):
        info = inspect_model(file)
        assert (info.problems, info.doubts) == ((), ()), f"{release} {file.name}"
        assert info.kind == "model" and info.keras_version == keras_version, f"{release} {file.name}: {info.keras_version}"
        assert not info.names("custom"), f"{release} {file.name}: {info.names('custom')}"  # 'mse', 'mae', Functional: built in
