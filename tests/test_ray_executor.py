"""Cells on a real Ray cluster: two nodes on this machine, inside a network namespace with
only loopback up (Ray then binds 127.0.0.1 and nothing leaves the machine).

The namespace has no route out, so the test first runs the matrix locally (that run
builds the environments and caches the index listings and locks), then runs it again
through the cluster and compares. A worker is killed mid-cell; the cell is retried and
recorded once. Ctrl-C on the driver cancels what is still running on the cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import become_subreaper, default_sigint

REPO = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
PORT = 6390

pytestmark = [pytest.mark.e2e, pytest.mark.ray]

MATRIX = """\
name: on-ray
matrix:
  python: ["3.11"]
  tensorflow: ["2.15.1", "2.21.0"]
  env: [{}, {HARNESS_TEST_SLEEP: "%s"}]
  exclude:
    - {tensorflow: "2.21.0", env: {HARNESS_TEST_SLEEP: "%s"}}
packages:
  tensorflow: tensorflow-cpu
load:
  timeout: 600
"""


def _can_make_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture(scope="module")
def cluster(harness_cache, tmp_path_factory):
    """`ray start --head` plus one more node, both in a fresh namespace with only lo."""
    pytest.importorskip("ray")
    if not _can_make_namespaces():
        if os.environ.get("HARNESS_REQUIRE_RAY"):
            pytest.fail("the Ray tests need root and iproute2 (ip netns)")
        pytest.skip("needs root and iproute2 for a loopback-only network namespace")
    become_subreaper()  # Ray's daemons detach: as a subreaper, this process stays their ancestor
    ns = f"harness-ray-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("HARNESS_STORE", None)
    inside = ["ip", "netns", "exec", ns]
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    temp = tmp_path_factory.mktemp("ray")
    try:
        subprocess.run(
            [*inside, str(RAY), "start", "--head", "--port", str(PORT), "--include-dashboard=false", f"--temp-dir={temp}", *common],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*inside, str(RAY), "start", "--address", f"127.0.0.1:{PORT}", *common], env=env, check=True, capture_output=True)
        yield {"ns": ns, "inside": inside, "env": env}
    finally:
        subprocess.run([*inside, str(RAY), "stop", "--force"], env=env, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def harness_argv(matrix: Path, models: list[Path], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", str(matrix), *map(str, models), "-o", str(out), "--no-store", *extra]


def start_driver(cluster: dict, matrix: Path, models: list[Path], out: Path) -> subprocess.Popen[str]:
    """`harness run --executor ray` inside the namespace, in the background."""
    return subprocess.Popen(
        [*cluster["inside"], *harness_argv(matrix, models, out, "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}")],
        env=cluster["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
        text=True,
    )


def outcomes(out: Path) -> list[tuple]:
    doc = json.loads((out / "results.json").read_text())
    return sorted((r["model"], r["cell"], r["status"], (r.get("exception") or {}).get("type"), r.get("cause")) for r in doc["results"])


def markdown_body(out: Path) -> str:
    return "\n".join(line for line in (out / "report.md").read_text().splitlines() if not line.startswith("<sub>"))


def descendants(root: int) -> list[int]:
    """Every process below `root`. This test process is a subreaper (see `cluster`), so Ray's
    daemons, their workers and whatever those start stay below it: no other process is looked at."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


def processes(word: str, root: int | None = None) -> dict[int, str]:
    """Our descendants (below `root`, default this process) whose command line holds `word`."""
    found = {}
    for pid in descendants(root or os.getpid()):
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in text:
            found[pid] = text
    return found


def test_a_matrix_through_the_cluster_matches_a_local_run_even_when_a_worker_dies(cluster, tmp_path, saved_models):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % ("8", "8"))
    models = [saved_models["dense.h5"], saved_models["residual_block.h5"], saved_models["slow_lambda.h5"]]
    env = cluster["env"]

    local = subprocess.run(harness_argv(matrix, models, tmp_path / "local", "-j", "2"), env=env, capture_output=True, text=True)
    assert local.returncode == 1, local.stderr  # residual_block fails (custom object); the rest loads

    driver = start_driver(cluster, matrix, models, tmp_path / "ray")
    # the slow cell: its task's worker process (Ray names it after the task), once its probe is loading
    deadline = time.monotonic() + 300
    victim, orphans = None, []
    while time.monotonic() < deadline and victim is None:
        assert driver.poll() is None, driver.communicate()
        for pid in processes("harness cell py3.11-tensorflow2.15.1-HARNESS_TEST_SLEEP=8"):
            orphans = list(processes("/probe.py", root=pid))  # the probe, and the sandbox around it
            if orphans:
                victim = pid
        time.sleep(0.2)
    assert victim is not None, "the slow cell's task never started its probe"
    time.sleep(1)
    os.kill(victim, signal.SIGKILL)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 1, err  # the gate's 1 (residual_block, and slow_lambda under Keras 3), not a crash on the way out
    assert re.search(r"fails: 4 failed results in \d cells", out) and "--fail-on" not in out and "shutdown" not in err

    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local")
    assert markdown_body(tmp_path / "ray") == markdown_body(tmp_path / "local")
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    keys = [(r["model"], r["cell"]) for r in doc["results"]]
    assert len(keys) == len(set(keys)) == 9  # 3 models x 3 cells, each once: nothing lost, nothing twice
    slow = [r for r in doc["results"] if "SLEEP" in r["cell"]]
    assert {r["model"]: r["status"] for r in slow} == {"dense.h5": "loaded", "residual_block.h5": "load-error", "slow_lambda.h5": "loaded"}
    assert all(r["worker"] and not r["worker"].endswith(f"/{victim}") for r in slow)  # the retry ran in another process
    assert len({r["worker"] for r in doc["results"]}) >= 2  # both nodes' workers took cells
    assert (tmp_path / "ray" / "logs" / "py3.11-tensorflow2.15.1.log").exists()  # the worker's files came back
    assert not set(orphans) & set(processes("/probe.py"))  # the killed worker's probe died with it


def test_keras_3_backend_cells_run_on_the_cluster_as_locally(cluster, tmp_path, saved_models):
    """One Keras on tensorflow and on jax, with inference: the cluster's workers set KERAS_BACKEND
    in their cells as the local run does, and the jax cell's outputs are compared with the
    tensorflow cell's in the driver, from the files the workers sent back."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "matrix:\n  python: ['3.11']\n  keras: ['3.15.1']\n  keras-backend: [tensorflow, jax]\n"
        "packages: {tensorflow: tensorflow-cpu}\nload: {inference: true}\n"
    )
    models = [saved_models["dense.h5"], saved_models["dense_keras3.keras"]]
    env = cluster["env"]
    local = subprocess.run(harness_argv(matrix, models, tmp_path / "local"), env=env, capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    driver = start_driver(cluster, matrix, models, tmp_path / "ray")
    _, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err
    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local")
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    on_jax = [r for r in doc["results"] if r["cell"].endswith("-on-jax")]
    assert len(on_jax) == 2 and all(r["worker"] and r["versions"]["keras-backend"] == "jax" for r in on_jax)
    assert all(r["output_diff"]["reference"] == "py3.11-keras3.15.1-on-tensorflow" and r["output_diff"]["max_abs"] < 1e-5 for r in on_jax)


def test_ctrl_c_on_the_driver_cancels_the_cells_on_the_cluster(cluster, tmp_path, saved_models):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX % ("600", "600"))
    models = [saved_models["slow_lambda.h5"]]
    env = cluster["env"]
    # environments and locks ready before entering the namespace (the sleeping cell shares 2.15.1's)
    warm = subprocess.run(
        harness_argv(matrix, models, tmp_path / "warm", "--only", "py3.11-tensorflow2.15.1", "--only", "*2.21.0"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert warm.returncode in (0, 1), warm.stderr
    driver = start_driver(cluster, matrix, models, tmp_path / "ray")
    deadline = time.monotonic() + 300
    probes: list[int] = []
    while time.monotonic() < deadline and not probes:
        assert driver.poll() is None, driver.communicate()
        workers = processes("harness cell py3.11-tensorflow2.15.1-HARNESS_TEST_SLEEP=600")
        probes = [p for worker in workers for p in processes("/probe.py", root=worker)]
        time.sleep(0.2)
    assert probes, "the slow cell never started on the cluster"
    time.sleep(3)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    # Ray's own race between a cancel and the cancelled task's reply (ray-project/ray#54846,
    # PR #54798 fixed its sibling "Tried to retry task that was not pending") ended the
    # driver once in CI with exit 1 after the harness had kept its results: "Check failed:
    # it != submissible_tasks_.end() Tried to complete task that was not pending" (Ray 2.60).
    # A Ctrl-C in ray.wait, where the driver waits, no longer cancels (the driver leaves and
    # Ray ends its tasks); one that lands between two results closes the stream, which still
    # does. Anything else must be the interrupt's 130.
    ray_race = driver.returncode == 1 and "it != submissible_tasks_.end()" in err
    assert driver.returncode == 130 or ray_race, err
    assert "interrupted" in err and "shutdown" not in err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        processes("harness cell py3.11-tensorflow2.15.1-HARNESS_TEST_SLEEP=600") or set(probes) & set(processes("/probe.py"))
    ):
        time.sleep(0.5)
    assert processes("harness cell py3.11-tensorflow2.15.1-HARNESS_TEST_SLEEP=600") == {}  # the task was cancelled
    assert not set(probes) & set(processes("/probe.py"))  # and its probe did not outlive it


def test_without_the_extra_the_error_names_it(tmp_path):
    (tmp_path / "m.yaml").write_text("matrix:\n  tensorflow: ['2.15.1']\n")
    code = "import sys; sys.modules['ray'] = None; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "run", str(tmp_path / "m.yaml"), str(REPO / "examples" / "models" / "dense.h5"), "--executor", "ray"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 4
    assert done.stderr.strip().splitlines() == [
        "harness: error: --executor ray needs Ray, which is not installed: pip install 'harness[ray]' (the ray extra)"
    ]


def test_workers_with_a_docker_daemon_run_cells_in_containers(cluster, tmp_path, saved_models):
    from harness.backends.docker import daemon_answers

    if not daemon_answers():
        if os.environ.get("HARNESS_REQUIRE_DOCKER"):
            pytest.fail("a Docker daemon is required (see .ci/run)")
        pytest.skip("no Docker daemon answers")
    env = cluster["env"]
    subprocess.run([sys.executable, "-m", "harness.cli", "images", "base", "--python", "3.11"], env=env, check=True, capture_output=True)
    matrix = tmp_path / "m.yaml"
    matrix.write_text('matrix:\n  python: ["3.11"]\n  tensorflow: ["2.21.0"]\npackages: {tensorflow: tensorflow-cpu}\n')
    models = [saved_models["dense.h5"], saved_models["residual_block.h5"]]
    docker = ["--backend", "docker", "--base-image", "harness-base:py{python}"]
    local = subprocess.run(harness_argv(matrix, models, tmp_path / "local", *docker), env=env, capture_output=True, text=True)
    assert local.returncode == 1, local.stderr  # builds the image outside the namespace (PyPI), residual_block fails
    since = str(int(time.time()) - 1)
    on_ray = subprocess.run(
        [
            *cluster["inside"],
            *harness_argv(matrix, models, tmp_path / "ray", *docker, "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert on_ray.returncode == 1, on_ray.stderr
    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local")
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert doc["run"]["backend"] == "docker" and all(r["worker"] for r in doc["results"])
    started = subprocess.run(
        [
            *("docker", "events", "--since", since, "--until", str(int(time.time()) + 1), "--format", "{{.Actor.Attributes.image}}"),
            *("--filter", "type=container", "--filter", "event=start", "--filter", "label=harness.session"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert started and all(image.startswith("harness-env:") for image in started)  # the worker ran the cell in a container


def test_a_users_template_travels_by_its_text(tmp_path):
    from harness.backends.docker import local_settings as local_docker_settings

    text = "FROM {{ base_image }}\nRUN echo mine\n"
    settings = local_docker_settings({"template": "/driver/only/mine.j2", "template_text": text, "memory": "2g"}, tmp_path / "t")
    assert settings["memory"] == "2g" and "template_text" not in settings
    assert Path(settings["template"]).read_text() == text and Path(settings["template"]).parent == tmp_path / "t"
    assert local_docker_settings({"template": "default"}, tmp_path / "t") == {"template": "default"}
