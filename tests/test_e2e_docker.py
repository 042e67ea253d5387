"""End to end on the Docker backend: images built from the templates, sandboxed containers.

Needs a Docker daemon and debootstrap (for the base images: no registry is reachable
here, so `harness images base` makes them); `.ci/run` installs and starts both.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import default_sigint

from harness import cli

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.docker, pytest.mark.e2e]

SANDBOX_CHECK = """
import json, os, sys
facts = {"uid": os.getuid(), "interfaces": sorted(os.listdir("/sys/class/net"))}
try:
    open("/opt/harness/written", "w").write("x")
    facts["root_writable"] = True
except OSError:
    facts["root_writable"] = False
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
facts["cap_eff"] = status["CapEff"].strip()
facts["no_new_privs"] = status.get("NoNewPrivs", "").strip()
try:
    open("/models/m0.h5", "ab")
    facts["model_writable"] = True
except OSError:
    facts["model_writable"] = False
facts["tmp_writable"] = os.access("/tmp", os.W_OK)
sys.stderr.write("SANDBOX " + json.dumps(facts) + "\\n")
CUSTOM_OBJECTS = {}
"""


def docker_run(monkeypatch, cache: Path, matrix: Path, models: list[Path], out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    code = cli.main(
        ["run", str(matrix), *map(str, models), "-o", str(out), "--backend", "docker", "--base-image", "harness-base:py{python}", *extra]
    )
    return code, json.loads((out / "results.json").read_text())


def essence(doc: dict[str, Any]) -> list[tuple]:
    return sorted(
        (r["model"], r["cell"], r["status"], r["cause"], (r["exception"] or {}).get("type"), r["attribute_error"]) for r in doc["results"]
    )


def test_two_releases_give_the_same_answers_as_uv(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.11"]\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [saved_models[m] for m in ("dense.h5", "residual_block.h5", "dense_keras3.keras", "custom_loss.h5")]
    code, docker_doc = docker_run(monkeypatch, harness_cache, matrix, models, tmp_path / "docker")
    assert code == 1
    assert docker_doc["run"]["backend"] == "docker"
    statuses = {(r["model"], r["cell"]): r["status"] for r in docker_doc["results"]}
    assert statuses[("dense.h5", "py3.11-tensorflow2.15.1")] == "loaded"
    assert statuses[("dense_keras3.keras", "py3.11-tensorflow2.15.1")] == "load-error"
    assert statuses[("dense_keras3.keras", "py3.11-tensorflow2.21.0")] == "loaded"
    assert statuses[("residual_block.h5", "py3.11-tensorflow2.21.0")] == "load-error"
    assert (tmp_path / "docker" / "logs" / "py3.11-tensorflow2.15.1.log").exists()
    uv_code = cli.main(["run", str(matrix), *map(str, models), "-o", str(tmp_path / "uv"), "--backend", "uv"])
    uv_doc = json.loads((tmp_path / "uv" / "results.json").read_text())
    assert uv_code == code
    assert essence(docker_doc) == essence(uv_doc)
    # built once, reused: a second run (--fresh: it loads again, not from the store) builds nothing
    images = sorted(subprocess.run(["docker", "images", "-q", "harness-env"], capture_output=True, text=True).stdout.split())
    code, again = docker_run(monkeypatch, harness_cache, matrix, models[:1], tmp_path / "again", "--fresh")
    assert not any(r.get("cached") for r in again["results"]) and len(again["results"]) == 2
    assert sorted(subprocess.run(["docker", "images", "-q", "harness-env"], capture_output=True, text=True).stdout.split()) == images


def test_the_container_is_a_sandbox(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    objects = tmp_path / "sandbox_check.py"
    objects.write_text(SANDBOX_CHECK)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f'matrix:\n  tensorflow: ["2.15.1"]\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{custom_objects: "{objects}"}}\n'
    )
    # a file that needs the fix: only the custom-objects attempt imports the user's file (the plain one never does)
    code, doc = docker_run(monkeypatch, harness_cache, matrix, [saved_models["residual_block.h5"]], tmp_path / "out")
    [r] = doc["results"]
    assert (code, r["status"], [a["fix"] for a in r["attempts"]][:2]) == (1, "load-error", ["as is", "custom_objects"])
    line = next(x for x in (tmp_path / "out" / "logs" / "py3.11-tensorflow2.15.1.log").read_text().splitlines() if x.startswith("SANDBOX "))
    facts = json.loads(line.removeprefix("SANDBOX "))
    assert facts["uid"] != 0
    assert facts["interfaces"] == ["lo"]  # --network none
    assert facts["root_writable"] is False and facts["model_writable"] is False and facts["tmp_writable"] is True
    assert facts["cap_eff"] == "0000000000000000"
    assert facts["no_new_privs"] == "1"


def test_timeout_and_out_of_memory_leave_no_container(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        'matrix:\n  tensorflow: ["2.15.1"]\n  env: [{HARNESS_TEST_SLEEP: "600"}]\npackages: {tensorflow: tensorflow-cpu}\nload: {timeout: 40}\n'
    )
    code, doc = docker_run(monkeypatch, harness_cache, matrix, [saved_models["slow_lambda.h5"]], tmp_path / "slow")
    assert (code, [r["status"] for r in doc["results"]]) == (1, ["timeout"])
    plain = tmp_path / "plain.yaml"
    plain.write_text('matrix:\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\n')
    code, doc = docker_run(monkeypatch, harness_cache, plain, [saved_models["dense.h5"]], tmp_path / "oom", "--memory", "120m")
    [r] = doc["results"]
    assert (code, r["status"], r["cause"]) == (1, "crash", "environment")
    assert "out of memory" in r["detail"]
    assert containers_of(os.getpid()) == []  # this process ran the harness in-process: its owner label


def test_python_39_cell_loads_a_model_saved_by_a_newer_release(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    # tensorflow-cpu 2.11 has no Python 3.11 wheels; it declares no upper bound on numpy,
    # so its default resolution brings numpy 2 and the import fails (AttributeError printed).
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        'matrix:\n  python: ["3.9"]\n  tensorflow: ["2.11"]\n  numpy: [null, "1.26"]\npackages: {tensorflow: tensorflow-cpu}\n'
    )
    code, doc = docker_run(
        monkeypatch, harness_cache, matrix, [saved_models["dense.h5"], saved_models["dense_keras3.keras"]], tmp_path / "out"
    )
    results = {(r["model"], r["cell"]): r for r in doc["results"]}
    assert code == 1
    broken = results[("dense.h5", "py3.9-tensorflow2.11.1")]
    assert (broken["status"], broken["attribute"]) == ("import-error", "_ARRAY_API")
    fixed = results[("dense.h5", "py3.9-tensorflow2.11.1-numpy1.26.4")]
    assert fixed["versions"]["tensorflow-cpu"] == "2.11.1" and fixed["versions"]["numpy"] == "1.26.4"
    assert fixed["status"] == "loaded"  # saved by Keras 2.15, read by Keras 2.11 on Python 3.9
    newer = results[("dense_keras3.keras", "py3.9-tensorflow2.11.1-numpy1.26.4")]
    assert (newer["status"], newer["cause"]) == ("load-error", "version-mismatch")


def test_python_313_cell(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.13"]\n  tensorflow: [latest]\npackages: {tensorflow: tensorflow-cpu}\n')
    code, doc = docker_run(monkeypatch, harness_cache, matrix, [saved_models["dense_keras3.keras"]], tmp_path / "out")
    [r] = doc["results"]
    assert (code, r["status"]) == (0, "loaded")
    assert r["cell"].startswith("py3.13-tensorflow2.")


def test_dry_run_prints_the_rendered_dockerfiles(tmp_path, monkeypatch, capsys, docker_ready, harness_cache):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1", "2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\ndocker: {template: uv-cache}\n')
    code = cli.main(
        [
            "run",
            str(matrix),
            str(REPO / "examples" / "models" / "dense.h5"),
            "--backend",
            "docker",
            "--dry-run",
            "--base-image",
            "harness-base:py{python}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("FROM harness-base:py3.11") == 2 and "--mount=type=cache" in out


def test_auto_picks_docker_when_a_daemon_answers_else_uv(monkeypatch, docker_ready, tmp_path):
    from harness.backends import get_backend

    assert get_backend("auto").name == "docker"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    assert get_backend("auto").name == "uv"


SLOW_MATRIX = (
    'matrix:\n  tensorflow: ["2.15.1"]\n  env: [{HARNESS_TEST_SLEEP: "0"}, {HARNESS_TEST_SLEEP: "600"}]\n'
    "packages: {tensorflow: tensorflow-cpu}\nload: {timeout: 900}\n"
)


def start_slow_docker_run(tmp_path: Path, saved_models: dict[str, Path], harness_cache: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """A real run whose second cell sleeps in its container; returns once the first result is in."""
    import time

    matrix = tmp_path / "m.yaml"
    matrix.write_text(SLOW_MATRIX)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness.cli", "run", str(matrix), str(saved_models["slow_lambda.h5"]), "-o", str(out), "-j", "2"]
    argv += ["--backend", "docker", "--base-image", "harness-base:py{python}", *extra]
    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache)}
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if (out / "results.json").exists() and json.loads((out / "results.json").read_text())["results"]:
            break
        assert child.poll() is None, child.communicate()
        time.sleep(0.5)
    return child, out


def containers_of(pid: int) -> list[str]:
    """Containers (running or not) that the harness process `pid` started: its owner label."""
    import socket

    from harness.backends.docker import _boot_id

    owner = f"{socket.gethostname()}/{_boot_id()}/{pid}"
    done = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=harness.owner={owner}"], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_ctrl_c_removes_the_running_container(tmp_path, docker_ready, saved_models, harness_cache):
    import signal

    child, out = start_slow_docker_run(tmp_path, saved_models, harness_cache)
    assert len(containers_of(child.pid)) == 1  # the sleeping cell
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    doc = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in doc["results"]] == ["loaded"] and doc["run"]["interrupted"] is True
    assert containers_of(child.pid) == []


def test_after_kill_9_the_next_run_removes_what_the_dead_one_left(tmp_path, docker_ready, saved_models, harness_cache):
    """kill -9 leaves the cell's container running (nobody is left to stop it) and its scratch
    folder on disk; the next harness on this machine removes both before it starts a cell."""
    import glob
    import signal
    import tempfile

    child, _ = start_slow_docker_run(tmp_path, saved_models, harness_cache, "--store", str(tmp_path / "store.sqlite"))
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert len(containers_of(child.pid)) == 1  # still running: what the next start must clean
    scratch = glob.glob(os.path.join(tempfile.gettempdir(), f"harness-cell-{child.pid}-*"))
    assert scratch  # the killed harness's request folder
    argv = [sys.executable, "-m", "harness.cli", "run", str(tmp_path / "m.yaml"), str(saved_models["slow_lambda.h5"])]
    argv += ["-o", str(tmp_path / "again"), "--only", "*SLEEP=0", "--backend", "docker", "--base-image", "harness-base:py{python}"]
    again = subprocess.run(
        [*argv, "--store", str(tmp_path / "store.sqlite")],
        env={**os.environ, "HARNESS_CACHE_DIR": str(harness_cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    assert containers_of(child.pid) == []
    assert [p for p in scratch if os.path.exists(p)] == []


def test_uv_cache_template_builds_with_buildkit(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\ndocker: {template: uv-cache}\n')
    code, doc = docker_run(monkeypatch, harness_cache, matrix, [saved_models["dense.h5"]], tmp_path / "out")
    assert (code, [r["status"] for r in doc["results"]]) == (0, ["loaded"])
    # the image (built now, or by an earlier run: images are reused) was made by the template's uv step
    key = doc["cells"][0]["env_key"]
    history = subprocess.run(["docker", "history", "--no-trunc", f"harness-env:{key}"], capture_output=True, text=True, check=True).stdout
    assert "uv pip sync --link-mode=copy" in history


def test_docker_without_a_daemon_is_exit_4(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1"]\n')
    assert (
        cli.main(["run", str(matrix), str(REPO / "examples" / "models" / "dense.h5"), "--backend", "docker", "-o", str(tmp_path / "o")])
        == 4
    )
    err = capsys.readouterr().err.strip()
    assert "no Docker daemon answers" in err and "--backend uv" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_repro_folder_rebuilds_and_gives_the_same_outcome(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  tensorflow: ["2.15.1"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [saved_models["residual_block.h5"], saved_models["dense_keras3.keras"]]
    code, doc = docker_run(monkeypatch, harness_cache, matrix, models, tmp_path / "out")
    assert code == 1
    folder = tmp_path / "repro"
    code = cli.main(
        [
            "repro",
            str(tmp_path / "out" / "results.json"),
            "py3.11-tensorflow2.15.1",
            "-o",
            str(folder),
            "--verify",
            "--base-image",
            "harness-base:py{python}",
            *(word for m in models for word in ("--model", str(m))),  # a results file's paths are never followed
        ]
    )
    assert code == 0
    assert {p.name for p in folder.iterdir()} >= {
        "Dockerfile",
        "requirements.lock",
        "probe.py",
        "request.json",
        "model.json",
        "expected.json",
        "README.md",
    }
    assert not (folder / "residual_block.h5").exists()  # a reference, not a copy, unless asked
    reference = json.loads((folder / "model.json").read_text())
    assert reference[0]["sha256"] == doc["models"][0]["sha256"]
    readme = (folder / "README.md").read_text()
    assert "docker build --network host -t harness-repro:3.11 ." in readme and "--network none" in readme
    assert "tensorflow-cpu==2.15.1" in (folder / "requirements.lock").read_text()
    expected = json.loads((folder / "expected.json").read_text())["outcomes"]
    assert expected["residual_block.h5"]["status"] == "load-error" and expected["residual_block.h5"]["cause"] == "custom-object"

    copied = tmp_path / "repro-copy"
    args = ["repro", str(tmp_path / "out" / "results.json"), "py3.11-tensorflow2.15.1", "-o", str(copied), "--copy-model"]
    assert cli.main([*args, "--model", str(models[0]), "--model", str(models[1])]) == 0
    assert (copied / "residual_block.h5").read_bytes() == models[0].read_bytes()
    assert json.loads((copied / "model.json").read_text())[0]["copied"] is True

    # the README's commands, run as written, give the outcome the harness saw
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    for m in models:
        (model_dir / m.name).write_bytes(m.read_bytes())
    script = readme.split("```bash\n")[1].split("```")[0].replace("MODEL_DIR=$PWD", f"MODEL_DIR={model_dir}")
    done = subprocess.run(
        ["bash", "-ec", script.replace("docker build", "DOCKER_BUILDKIT=0 /usr/bin/docker build")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    messages = [json.loads(line) for line in (folder / "result.jsonl").read_text().splitlines()]
    [model] = [m["result"] for m in messages if m["kind"] == "model" and m["key"] == "m0"]
    assert model["attempts"][0]["error"]["type"] == "ValueError"
    assert "ResidualBlock" in model["attempts"][0]["error"]["message"]
    assert messages[-1]["kind"] == "done"


def test_a_base_image_that_cannot_be_had_skips_with_a_hint(tmp_path, monkeypatch, docker_ready, harness_cache):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.9", "3.12"]\n  tf-keras: [null]\n')
    code = cli.main(
        [
            "run",
            str(matrix),
            str(REPO / "examples" / "models" / "dense.h5"),
            "-o",
            str(tmp_path / "out"),
            "--backend",
            "docker",
            "--base-image",
            "harness-test-no-such-image:py{python}",
        ]
    )
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    details = {r["cell"]: r["detail"] for r in doc["results"] if r["status"] == "skipped"}
    assert code == 5 and set(details) == {"py3.9", "py3.12"}  # nothing could be tested: never a pass
    assert "harness images base --python 3.9" in details["py3.9"]
    assert "an image that has Python 3.12" in details["py3.12"]


def test_docker_backend_answers_the_protocol_without_touching_other_images(docker_ready, harness_cache, monkeypatch):
    """settings_record() is what a run records, portable_config() what workers rebuild the backend from; garbage collection dates images
    by what the daemon says (a cutoff in the far past removes nothing: every image is younger)."""
    from harness.backends import BackendConfig, create_backend

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    backend = create_backend("docker", BackendConfig(docker={"memory": "3g"}))
    record = backend.settings_record()
    assert record["docker"]["memory"] == "3g" and json.loads(json.dumps(record)) == record
    assert create_backend("docker", backend.portable_config()).settings_record() == record  # a worker's backend is the same
    # the base image the docker_ready fixture built: one this test run made, not any image of the host
    image = "harness-base:py3.11"
    created = subprocess.run(["docker", "image", "inspect", "--format", "{{.Created}}", image], capture_output=True, text=True, check=True)
    stamp = backend._created(image)
    shown = datetime.datetime.fromisoformat(created.stdout.strip()[:19]).replace(tzinfo=datetime.timezone.utc).timestamp()
    assert stamp is not None and abs(stamp - shown) < 120
    assert backend.collect_garbage(365 * 1000).startswith("removed 0 image(s)")


@pytest.mark.parametrize("given", ["url", "netrc"])
def test_a_private_index_s_credentials_reach_the_build_and_nothing_it_leaves(given, tmp_path, monkeypatch, docker_ready, harness_cache):
    """A loopback index that wants Basic auth (the build runs on the host's network): the
    credentials, from the index URL or from ~/.netrc, reach pip inside the build as a BuildKit
    secret, and are in none of what stays: the Dockerfile, the image's layers and history, the
    build log; the image holds the package and no secret file."""
    import uuid

    from privateindex import PASSWORD, USER, private_index

    from harness.backends.docker import DockerBackend, DockerSettings
    from harness.plan import EnvSpec
    from harness.resolve import IndexConfig

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    with private_index(tmp_path) as index:
        if given == "netrc":
            netrc = tmp_path / "netrc"
            netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
            netrc.chmod(0o600)
            monkeypatch.setenv("NETRC", str(netrc))
        config = IndexConfig(index.with_credentials() if given == "url" else index.url, source="given")
        backend = DockerBackend(DockerSettings(base_image="harness-base:py{python}"), index=config)
        env = EnvSpec("3.11", f"tinypkg==1.0\n# {given} {uuid.uuid4().hex}\n", "docker")  # a key no earlier run built
        tag = backend.image_tag(env)
        try:
            prepared = backend.prepare(env)
            assert any(path.startswith("/files/tinypkg-1.0") for path in index.authorized), index.seen
            dockerfile = backend.describe(env)
            assert "--mount=type=secret,id=harness-netrc" in dockerfile and PASSWORD not in dockerfile
            history = subprocess.run(["docker", "history", "--no-trunc", tag], capture_output=True, text=True, check=True).stdout
            inspected = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
            saved = subprocess.run(["docker", "image", "save", tag], capture_output=True, check=True).stdout
            assert PASSWORD not in history and PASSWORD not in inspected and PASSWORD.encode() not in saved
            assert prepared.log and PASSWORD not in Path(prepared.log).read_text()
            ran = subprocess.run(
                ["docker", "run", "--rm", "--network", "none", tag, "python", "-c",
                 "import os, tinypkg; print(tinypkg.VALUE, os.path.exists('/run/secrets/harness-netrc'))"],
                capture_output=True, text=True, timeout=120,
            )
            assert ran.stdout.split() == ["1", "False"], ran.stderr
        finally:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_a_jax_cell_in_a_container_answers_as_uv_and_is_a_sandbox(tmp_path, monkeypatch, docker_ready, saved_models, harness_cache):
    """Keras 3.15.1 on jax in a container: keras and jax installed by the image (no TensorFlow),
    KERAS_BACKEND set inside, the same answers as the uv cell, and the custom objects module
    (imported only by the custom-objects attempt) sees the same locked-down container."""
    objects = tmp_path / "sandbox_check.py"
    objects.write_text(SANDBOX_CHECK.replace('"/models/m0.h5"', '"/models/m1.keras"'))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(f"matrix:\n  python: ['3.11']\n  keras: ['3.15.1']\n  keras-backend: [jax]\nload: {{custom_objects: \"{objects}\"}}\n")
    models = [saved_models["dense.h5"], saved_models["residual_block_keras3.keras"]]
    code, doc = docker_run(monkeypatch, harness_cache, matrix, models, tmp_path / "docker")
    cell = "py3.11-keras3.15.1-on-jax"
    dense = next(r for r in doc["results"] if r["model"] == "dense.h5")
    assert (doc["run"]["backend"], dense["cell"], dense["status"], dense["sandbox"]) == ("docker", cell, "loaded", "docker")
    assert dense["versions"]["keras-backend"] == "jax" and "jax" in dense["versions"] and "tensorflow" not in dense["versions"]
    uv_code = cli.main(["run", str(matrix), *map(str, models), "-o", str(tmp_path / "uv"), "--backend", "uv"])
    assert uv_code == code and essence(doc) == essence(json.loads((tmp_path / "uv" / "results.json").read_text()))
    line = next(x for x in (tmp_path / "docker" / "logs" / f"{cell}.log").read_text().splitlines() if x.startswith("SANDBOX "))
    facts = json.loads(line.removeprefix("SANDBOX "))
    assert facts["uid"] != 0 and facts["interfaces"] == ["lo"] and facts["cap_eff"] == "0000000000000000"
    assert facts["root_writable"] is False and facts["model_writable"] is False and facts["no_new_privs"] == "1"
