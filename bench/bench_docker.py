"""Benchmark the Docker backend, measured in one run on the same images and envs.

    python bench/bench_docker.py      # needs a Docker daemon; builds harness-base:py3.11 if missing

What it prints:
  warm per cell   harness --backend docker -j 1 against a plain `docker run` of the same
                  image loading the model (the floor) and against the uv backend
  cold per cell   building a cell's image against creating its uv env (uv cache warm)
  images          bytes per image, and the layers every cell shares (base, Python, venv)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import print_figures  # bench/, the script's own folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_uv import MODEL, VERSIONS, harness, timed  # noqa: E402

from harness.backends.docker import DockerBackend, DockerSettings  # noqa: E402
from harness.images import build_base_image  # noqa: E402
from harness.matrix import combinations, expand_versions, load_matrix  # noqa: E402
from harness.plan import EnvSpec  # noqa: E402
from harness.resolve import Lock, PackageIndex, Resolver  # noqa: E402

BASE = "harness-base:py{python}"
LOAD = "import tensorflow as tf, sys; tf.keras.models.load_model(sys.argv[1])"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-bench-docker")
    parser.add_argument("--cold", action="store_true", help="also remove and rebuild every image (minutes, GBs)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(work / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    os.environ["HARNESS_CACHE_DIR"] = env["HARNESS_CACHE_DIR"]
    build_base_image("3.11")
    matrix_path = work / "bench.yaml"
    matrix_path.write_text(
        f"name: bench\nmatrix:\n  python: ['3.11']\n  tensorflow: {json.dumps(VERSIONS)}\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{fixes: false}}\n"
    )
    docker_args = ["--backend", "docker", "--base-image", BASE]
    out = work / "out"

    matrix = load_matrix(matrix_path)
    cells = expand_versions(matrix, combinations(matrix), PackageIndex().versions)
    resolver = Resolver(matrix.packages)
    backend = DockerBackend(DockerSettings(base_image=BASE))
    backend.check()
    specs = []
    for cell in cells:
        lock = resolver.resolve(cell)
        assert isinstance(lock, Lock)
        specs.append(EnvSpec(cell.python, lock.text, "docker", backend.fingerprint))
    tags = [backend.image_tag(s) for s in specs]

    cold_docker = cold_uv = None
    if args.cold:
        for tag in tags:
            timed(["docker", "rmi", "-f", tag])
        start = time.monotonic()
        for spec in specs:
            backend.prepare(spec)
        cold_docker = (time.monotonic() - start) / len(specs)
        from harness.backends.uv import UvBackend

        uv = UvBackend()
        import shutil

        start = time.monotonic()
        for spec in specs:
            shutil.rmtree(uv.location(EnvSpec(spec.python, spec.lock)), ignore_errors=True)
            uv.prepare(EnvSpec(spec.python, spec.lock))
        cold_uv = (time.monotonic() - start) / len(specs)

    print("preparing: images and uv envs (built once)")
    harness(str(matrix_path), str(MODEL), "-o", str(out), "-j", "2", *docker_args, env=env)
    harness(str(matrix_path), str(MODEL), "-o", str(work / "uv"), "-j", "2", env=env)

    # the floor: a plain docker run of the same image, same sandbox flags, one model load
    floor = []
    for tag in tags:
        argv = [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            "10001:10001",
            "-e",
            "TF_CPP_MIN_LOG_LEVEL=2",
            "-v",
            f"{MODEL}:/models/m0.h5:ro",
            tag,
            "python",
            "-c",
            LOAD,
            "/models/m0.h5",
        ]
        floor.append(statistics.median(timed(argv, env=env)[0] for _ in range(2)))
    n = len(tags)
    docker_j1 = statistics.median(harness(str(matrix_path), str(MODEL), "-o", str(out), "-j", "1", *docker_args, env=env) for _ in range(2))
    uv_j1 = statistics.median(harness(str(matrix_path), str(MODEL), "-o", str(work / "uv"), "-j", "1", env=env) for _ in range(2))

    # image bytes, and the layers all cells share
    client = backend.client
    layers = [client.images.get(tag).attrs["RootFS"]["Layers"] for tag in tags]
    sizes = [client.images.get(tag).attrs["Size"] for tag in tags]
    shared = set(layers[0]).intersection(*map(set, layers[1:]))
    # the daemon's own accounting (docker system df -v): bytes each image shares with others
    ids = {client.images.get(tag).id for tag in tags}
    df = [i for i in client.df()["Images"] if i["Id"] in ids]
    shared_bytes = min(i["SharedSize"] for i in df)

    figures = {
        "cells": n,
        "floor_docker_run_per_cell_s": sum(floor) / n,
        "harness_docker_j1_per_cell_s": docker_j1 / n,
        "docker_over_floor": (docker_j1 / n) / (sum(floor) / n),
        "harness_uv_j1_per_cell_s": uv_j1 / n,
        "docker_over_uv": docker_j1 / uv_j1,
        "cold_image_per_cell_s": cold_docker,
        "cold_uv_env_per_cell_s": cold_uv,
        "image_bytes_mean": sum(sizes) / n,
        "layers_per_image": len(layers[0]),
        "layers_shared_by_all": len(shared),
        "shared_bytes": shared_bytes,
        "unique_bytes_total": sum(i["Size"] - i["SharedSize"] for i in df) + shared_bytes,
        "naive_bytes_total": sum(sizes),
    }
    print_figures(figures)
    print(f"\nwarm: harness docker -j1 costs {figures['docker_over_floor']:.2f}x a plain docker run per cell (target <= 1.2)")
    print(
        f"layers: {len(shared)} of {len(layers[0])} layers ({shared_bytes / 1e6:.0f} MB) are shared by all {n} images (base, user, CA, venv)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
