"""Containment: hostile model files cannot reach outside their cell, on every backend.

The files are Keras 2 HDF5 files whose Lambda layer runs a payload inside `load_model`
(tests/hostile.py), saved during this test by a real TensorFlow 2.15.1. One run of the
real harness CLI (a child process, so nothing it does can take pytest down with it)
loads them all; the test then looks only at what it made: its listener on 127.0.0.1,
its canary paths, its own child processes (this process is their subreaper, so escaped
daemons would come back to it), its report folder, store and cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, become_subreaper, live_children, make_venv
from hostile import SAVE, SAVE3, payloads

from harness.store import Store

SECRET_ENV = "HARNESS_TEST_SECRET_TOKEN"
MATRIX = """
name: hostile
matrix:
  tensorflow: ["2.15.1"]
  env: [{HOSTILE_ARMED: "1"}]
packages: {tensorflow: tensorflow-cpu}
load: {timeout: 60}
"""
CELL = "py3.11-tensorflow2.15.1-HOSTILE_ARMED=1"


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    self.connections.append(conn.recv(100))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def pth_files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*.pth")} if folder.exists() else set()


@pytest.fixture(scope="module")
def hostile_models(work_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The payloads, saved now with the test's own listener port and canary paths."""
    base = tmp_path_factory.mktemp("hostile")
    listener = Listener()
    token = f"SECRET-{os.getpid()}-{time.time_ns()}"
    secret_file = base / "secret.txt"
    secret_file.write_text(token)
    secret_file.chmod(0o600)
    canaries = [
        f"/root/harness-canary-{os.getpid()}",
        f"/etc/harness-canary-{os.getpid()}",
        f"/var/tmp/harness-canary-{os.getpid()}",
        f"/tmp/harness-canary-{os.getpid()}",
        str(base / "out" / "canary"),
        str(base / "store-canary"),
        str(Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "zz_canary.pth"),
    ]
    spec = payloads(listener.port, canaries, [str(secret_file), "/etc/shadow"], spawn=60, memory=3 << 30, flood_mib=1024)
    (base / "spec.json").write_text(json.dumps(spec))
    saver = make_venv(work_root / "saver-tf2.15", "tensorflow-cpu==2.15.1", "tensorflow-addons==0.23.0")
    models = base / "models"
    subprocess.run(
        [str(saver), "-c", SAVE, str(base / "spec.json"), str(models)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    # the same payloads as Keras 3 .keras files (their Lambda's code holds the payload), for the Keras 3 cells
    saver3 = make_venv(work_root / "saver-tf2.21", "tensorflow-cpu==2.21.0")
    models3 = base / "models3"
    models3.mkdir()
    subprocess.run(
        [str(saver3), "-c", SAVE3, str(base / "spec.json"), str(models3)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    yield {
        "base": base,
        "listener": listener,
        "token": token,
        "canaries": canaries,
        "models": sorted(models.glob("*.h5")),
        "models3": sorted(models3.glob("*.keras")),
    }
    listener.close()
    for path in canaries:  # only if containment failed; our own paths either way
        with contextlib.suppress(OSError):
            Path(path).unlink()


def run_hostile(
    hostile_models: dict[str, Any], harness_cache: Path, backend: str, extra: list[str], matrix: str = MATRIX, models: str = "models"
) -> dict[str, Any]:
    base: Path = hostile_models["base"] / backend
    base.mkdir()
    out, store = hostile_models["base"] / "out", hostile_models["base"] / "store.sqlite"
    out.mkdir(exist_ok=True)
    (base / "matrix.yaml").write_text(matrix)
    cache_envs = harness_cache / "envs"
    before = pth_files(Path(sys.prefix)), pth_files(cache_envs)
    become_subreaper()
    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache), SECRET_ENV: hostile_models["token"]}
    argv = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())", "run", str(base / "matrix.yaml")]
    argv += [str(m) for m in hostile_models[models]]
    argv += ["-o", str(out / backend), "--store", str(store), "--fresh", "--memory", "2g", "--pids", "256", "-j", "2", *extra]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    leftovers = live_children()  # anything still alive escaped its cell
    doc = json.loads((out / backend / "results.json").read_text())
    return {
        "done": done,
        "doc": doc,
        "out": out / backend,
        "store": store,
        "seconds": seconds,
        "leftovers": leftovers,
        "pth_before": before,
        "pth_after": (pth_files(Path(sys.prefix)), pth_files(cache_envs)),
    }


def by_model(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results = {r["model"]: r for r in doc["results"]}
    assert len(results) == len(doc["results"]), "one result per model"
    return results


def check_contained(run: dict[str, Any], hostile_models: dict[str, Any], sandbox: str) -> None:
    done, doc = run["done"], run["doc"]
    token = hostile_models["token"]
    results = by_model(doc)
    # the harness survived everything and reported every model, with the gate's exit code
    assert doc["run"]["complete"] is True, done.stderr[-3000:]
    assert set(results) == {m.name for m in hostile_models["models"]}
    assert all(r["cell"] == CELL for r in results.values())
    assert done.returncode == 1, done.stderr[-3000:]  # some cells failed: --fail-on any
    assert doc["run"]["sandbox"] == sandbox and all(r["sandbox"] == sandbox for r in results.values())
    assert all(r["carries_code"] for r in results.values())
    # nothing reached the listener, no canary file appeared, no process is left
    assert hostile_models["listener"].connections == []
    assert [p for p in hostile_models["canaries"] if os.path.lexists(p)] == []
    assert run["leftovers"] == {}
    # the payload that probed everything ran, and saw neither the network nor the host
    report = results["everything.h5"]
    message = report["exception"]["message"]
    assert "HOSTILE-REPORT" in message and "connect:ConnectionRefusedError" in message and "connect:ok" not in message
    # a write can succeed only in the cell's own scratch (/tmp inside), which the host never sees (checked above)
    assert set(re.findall(r"write:ok:(\S+)", message)) <= {p for p in hostile_models["canaries"] if p.startswith("/tmp/harness-canary")}
    assert "read:ok" not in message
    # the only processes it can see are the cell's own: their folders are the cell's scratch
    assert set(re.findall(r"cwd:\d+=(\S+)", message)) <= {"/tmp/work", "/work", "/"}
    # no secret (the harness's environment, a 0600 file) in anything the harness wrote
    for path in [p for p in run["out"].rglob("*") if p.is_file()] + [run["store"]]:
        assert token.encode() not in path.read_bytes(), path
    assert token not in done.stdout + done.stderr
    # the harness's own venv and the environment cache got no .pth; the store holds what the harness saw
    assert run["pth_after"] == run["pth_before"]
    store = Store(run["store"])
    try:
        stored = {r["model"]: r["status"] for r in store.results(doc["run"]["store_run"])}
    finally:
        store.close()
    assert stored == {name: r["status"] for name, r in results.items()}
    # what each payload got: its own result, decided by the harness
    assert results["spawn.h5"]["status"] == "load-error" and "HOSTILE-SPAWN" in results["spawn.h5"]["exception"]["message"]
    assert results["memory.h5"]["status"] == "crash" and "out of memory" in results["memory.h5"]["detail"]
    # killing its ancestors: under bwrap the probe (PID 2 of the namespace) dies, so the load crashes;
    # in Docker the probe is the container's PID 1, which the kernel shields from its own namespace
    assert results["kill.h5"]["status"] == ("crash" if sandbox == "bwrap" else "loaded")
    assert results["forge.h5"]["status"] == "crash"  # its forged "loaded" never reached the harness
    assert results["daemon.h5"]["status"] == "loaded" and results["flood.h5"]["status"] == "loaded"
    # a gigabyte into its working folder: the scratch is a capped tmpfs, the host disk never sees it
    fill = re.search(r"HOSTILE-FILL wrote (\d+) MiB: (.+?)(\n|$)", results["fill.h5"]["exception"]["message"])
    assert fill is not None and int(fill.group(1)) <= 512 and fill.group(2) == "No space left on device", fill
    # a gigabyte on stderr: the log keeps a bounded head and tail
    log = (run["out"] / "logs" / f"{CELL}.log").stat().st_size
    assert log < 400_000, log
    # every report marks the files whose code ran, and says how cells were contained
    markdown = (run["out"] / "report.md").read_text()
    assert "code in this file ran during load; its outcome is what that code allowed" in markdown.lower()
    assert "cells ran sandboxed" in markdown


@pytest.mark.e2e
def test_hostile_models_stay_in_the_uv_sandbox(hostile_models, harness_cache):
    run = run_hostile(hostile_models, harness_cache, "uv", ["--backend", "uv", "--sandbox", "bwrap"])
    check_contained(run, hostile_models, "bwrap")


@pytest.mark.e2e
@pytest.mark.docker
def test_hostile_models_stay_in_their_container(hostile_models, harness_cache, docker_ready):
    run = run_hostile(hostile_models, harness_cache, "docker", ["--backend", "docker", "--base-image", "harness-base:py{python}"])
    check_contained(run, hostile_models, "docker")


JAX_MATRIX = """
name: hostile-jax
matrix:
  keras: ["3.15.1"]
  keras-backend: [jax]
  env: [{HOSTILE_ARMED: "1"}]
load: {timeout: 60, inference: true}
"""


@pytest.mark.e2e
def test_hostile_models_stay_in_a_jax_cell_even_when_trusted(hostile_models, harness_cache):
    """Keras 3 on jax, with --trust-models: the probe's safe_mode=False attempt runs each Lambda's
    payload (Keras 3 refuses it by default), under the same bubblewrap sandbox; nothing of it
    reaches the host, the listener, the harness's secrets or another result."""
    trusted = ["--backend", "uv", "--sandbox", "bwrap", "--trust-models"]
    run = run_hostile(hostile_models, harness_cache, "uv-jax", trusted, JAX_MATRIX, "models3")
    done, doc, token = run["done"], run["doc"], hostile_models["token"]
    results = {name.replace(".keras", ".h5"): r for name, r in by_model(doc).items()}
    assert doc["run"]["complete"] is True and done.returncode == 1, done.stderr[-3000:]
    assert set(results) == {m.name for m in hostile_models["models"]}
    assert all(r["cell"] == "py3.11-keras3.15.1-HOSTILE_ARMED=1-on-jax" and r["sandbox"] == "bwrap" for r in results.values())
    assert all(r["versions"]["keras-backend"] == "jax" for r in results.values() if r["status"] not in ("crash", "timeout"))
    assert hostile_models["listener"].connections == []
    assert [p for p in hostile_models["canaries"] if os.path.lexists(p)] == []
    assert run["leftovers"] == {}
    # the payloads ran in the trusted attempt (Keras 3 refused each file first): the one that probed
    # everything was refused the network (its report's first words, as the attempt keeps them: what
    # it could read or write was checked above, on the host), the forger and the killer crashed
    everything = results["everything.h5"]
    assert everything["fix_worked"] == "safe_mode=False" and "Requested the deserialization of a `Lambda`" in everything["attempts"][0]["message"]
    assert everything["detail"].startswith("loads, but did not run on the input (RuntimeError: Exception encountered when calling Lambda")
    assert "HOSTILE-REPORT connect:ConnectionRefusedError" in everything["detail"] and "connect:ok" not in everything["detail"]
    assert results["forge.h5"]["status"] == "crash" and results["kill.h5"]["status"] == "crash"
    assert "HOSTILE-SPAWN" in results["spawn.h5"]["detail"]
    for path in [p for p in run["out"].rglob("*") if p.is_file()] + [run["store"]]:
        assert token.encode() not in path.read_bytes(), path
    assert token not in done.stdout + done.stderr
    assert run["pth_after"] == run["pth_before"]
