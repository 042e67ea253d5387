"""Benchmark the Ray executor against the local executor at the same parallelism.

    pip install -e '.[ray]'
    sudo python bench/bench_ray.py       # root: the cluster runs in a loopback-only network namespace

A 6-cell matrix (tensorflow-cpu 2.15.1 ... 2.21.0, dense.h5) runs with the local executor
at -j 2, then through a Ray cluster of two nodes with one CPU each (`ray start --head` +
`ray start --address`, both on this machine, inside a network namespace with only `lo`
up: Ray binds 127.0.0.1 there and nothing leaves the machine). Environments are built
once beforehand (the namespace has no route to PyPI); every timed run uses --no-store, so
each one loads every model for real. The cluster is started before the timings: the
figure is what a team with a running cluster pays per run (driver connect, task
submission, model shipping, worker start-up, result streaming). Prints medians and the
ratio ray/local (target <= 1.10); asserts nothing.

Ray's own floor, measured in the same run: an empty job (start Python, `import ray`,
connect, one no-op task per node, disconnect), what any driver pays before its first
result. The bench prints (local + empty job) / local beside the ratio: no Ray executor
can do better than that on this cluster.

Scale-out: a 24-cell matrix (the 6 releases x 4 environment-variable variants, which share
the 6 environments) through the two-node cluster against the local executor at -j 1 (one
node's one CPU): the speed-up two nodes give (target >= 1.7x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import run_timed  # bench/, the script's own folder

REPO = Path(__file__).resolve().parent.parent
VERSIONS = ["2.15.1", "2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.21.0"]
MODEL = REPO / "examples" / "models" / "dense.h5"
RAY = Path(sys.executable).with_name("ray")
PORT = 6391


def timed(argv: list[str], env: dict[str, str]) -> float:
    return run_timed(argv, env)[0]


EMPTY_JOB = """
import logging, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="127.0.0.1:%d", log_to_driver=False, logging_level=logging.ERROR)
noop = ray.remote(num_cpus=1)(lambda: None)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
ray.get([noop.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote() for n in nodes])
ray.shutdown()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-bench", help="kept between runs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the cluster gets a network namespace with only loopback (ip netns)")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(work / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0"}
    matrix = work / "bench-ray.yaml"
    matrix.write_text(
        f"name: bench-ray\nmatrix:\n  tensorflow: {json.dumps(VERSIONS)}\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{fixes: false}}\n"
    )
    run = [sys.executable, "-m", "harness.cli", "run", str(matrix), str(MODEL), "--no-store", "-o"]
    wide = work / "bench-ray-24.yaml"
    variants = [{"HARNESS_BENCH_VARIANT": str(n)} for n in range(4)]
    wide.write_text(
        f"name: bench-ray-24\nmatrix:\n  tensorflow: {json.dumps(VERSIONS)}\n  env: {json.dumps(variants)}\n"
        "packages: {tensorflow: tensorflow-cpu}\nload: {fixes: false}\n"
    )
    run24 = [sys.executable, "-m", "harness.cli", "run", str(wide), str(MODEL), "--no-store", "-o"]
    print("preparing: the 6 environments (outside the namespace, which has no route to PyPI)")
    timed([*run, str(work / "prep"), "-j", "2"], env)

    ns = f"harness-bench-{os.getpid()}"
    inside = ["ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    local: list[float] = []
    ray: list[float] = []
    one: list[float] = []
    two_nodes: list[float] = []
    empty: list[float] = []
    try:
        start = time.monotonic()
        subprocess.run(
            [*inside, str(RAY), "start", "--head", "--port", str(PORT), "--include-dashboard=false", *common],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*inside, str(RAY), "start", "--address", f"127.0.0.1:{PORT}", *common], env=env, check=True, capture_output=True)
        print(f"cluster of 2 nodes x 1 CPU started in {time.monotonic() - start:.1f} s (not counted below)")
        # one untimed pass each: page cache and the workers' model cache as a second run finds them
        timed([*inside, *run, str(work / "ray"), "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"], env)
        for i in range(args.repeat):
            local.append(timed([*inside, *run, str(work / "local"), "-j", "2"], env))
            ray.append(timed([*inside, *run, str(work / "ray"), "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"], env))
            empty.append(timed([*inside, sys.executable, "-c", EMPTY_JOB % PORT], env))
            print(f"  round {i + 1}: local -j 2 {local[-1]:.2f} s, ray (2 x 1 CPU) {ray[-1]:.2f} s, an empty Ray job {empty[-1]:.2f} s")
        for i in range(max(1, args.repeat - 1)):
            one.append(timed([*inside, *run24, str(work / "local24"), "-j", "1"], env))
            two_nodes.append(timed([*inside, *run24, str(work / "ray24"), "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}"], env))
            print(f"  24 cells, round {i + 1}: local -j 1 {one[-1]:.2f} s, ray (2 x 1 CPU) {two_nodes[-1]:.2f} s")
    finally:
        subprocess.run([*inside, str(RAY), "stop", "--force"], env=env, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    figures = {"local_j2_s": statistics.median(local), "ray_s": statistics.median(ray)}
    figures["ray_over_local"] = figures["ray_s"] / figures["local_j2_s"]
    figures["empty_ray_job_s"] = statistics.median(empty)
    figures["floor_over_local"] = (figures["local_j2_s"] + figures["empty_ray_job_s"]) / figures["local_j2_s"]
    figures["local_j1_24_s"] = statistics.median(one)
    figures["ray_24_s"] = statistics.median(two_nodes)
    figures["scale_out_24"] = figures["local_j1_24_s"] / figures["ray_24_s"]
    print(
        f"6 cells, medians of {args.repeat}: local -j 2 {figures['local_j2_s']:.2f} s, ray {figures['ray_s']:.2f} s, "
        f"ray/local = {figures['ray_over_local']:.2f}x (target <= 1.10)"
    )
    print(
        f"Ray's floor: an empty job takes {figures['empty_ray_job_s']:.2f} s, so (local + empty job)/local = "
        f"{figures['floor_over_local']:.2f}x before any harness work"
    )
    print(
        f"24 cells: local -j 1 {figures['local_j1_24_s']:.2f} s, two nodes {figures['ray_24_s']:.2f} s, "
        f"{figures['scale_out_24']:.2f}x faster (target >= 1.7)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
