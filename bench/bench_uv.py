"""Benchmark the uv backend against its floor, measured in the same run on the same environments.

    pip install -e '.[bench]'        # nox, for the second baseline
    python bench/bench_uv.py         # ~5 min warm; the first run also downloads 6 TensorFlow releases

What it prints (ratios, never asserted anywhere):
  warm per cell   harness -j 1 against a plain loop of `python -c "load_model(...)"` in the
                  same pre-built venvs (the floor), and against nox (uv backend, reused venvs)
  -j 2            speed-up of `harness run -j 2` over `-j 1` on the 6-cell matrix
  memory          peak RSS per cell, as the probe records it and as the floor sees it
  cold            building one cell's env with the harness against a bare `uv venv` +
                  `uv pip sync` of the same lock (uv cache warm for both)
  shared import   10 models in one environment against 1 model
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import print_figures, run_timed  # bench/, the script's own folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.backends.uv import UvBackend  # noqa: E402
from harness.matrix import combinations, expand_versions, load_matrix  # noqa: E402
from harness.plan import EnvSpec  # noqa: E402
from harness.resolve import Lock, PackageIndex, Resolver, uv_bin  # noqa: E402

VERSIONS = ["2.15.1", "2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.21.0"]
MODEL = REPO / "examples" / "models" / "dense.h5"
LOAD = "import tensorflow as tf, resource, sys; tf.keras.models.load_model(sys.argv[1]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


timed = run_timed  # (seconds, stdout)


def harness(*args: str, env: dict[str, str], store: Path | None = None) -> float:
    """Wall time of one `harness run`; with no store unless one is given (no cached results)."""
    where = ["--store", str(store)] if store else ["--no-store"]
    return timed([sys.executable, "-m", "harness.cli", "run", *args, *where], env=env)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-bench", help="kept between runs (envs, nox venvs)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(work / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    os.environ["HARNESS_CACHE_DIR"] = env["HARNESS_CACHE_DIR"]
    matrix_path = work / "bench.yaml"
    matrix_path.write_text(
        f"name: bench\nmatrix:\n  tensorflow: {json.dumps(VERSIONS)}\npackages: {{tensorflow: tensorflow-cpu}}\nload: {{fixes: false}}\n"
    )
    out = work / "out"
    figures: dict[str, float] = {}

    print("preparing: building the 6 environments once (uv cache makes this fast after the first time)")
    harness(str(matrix_path), str(MODEL), "-o", str(out), "-j", "2", env=env)

    matrix = load_matrix(matrix_path)
    cells = expand_versions(matrix, combinations(matrix), PackageIndex().versions)
    resolver = Resolver(matrix.packages)
    backend = UvBackend()
    envs = []
    for cell in cells:
        lock = resolver.resolve(cell)
        assert isinstance(lock, Lock)
        envs.append(EnvSpec(cell.python, lock.text))
    pythons = [Path(backend.location(e)) / "bin" / "python" for e in envs]

    # -- the floor: a plain loop, one fresh python per cell (twice; the median per cell) ----
    floor, floor_rss = [], []
    for python in pythons:
        runs = [timed([str(python), "-c", LOAD, str(MODEL)], env=env) for _ in range(2)]
        floor.append(statistics.median(seconds for seconds, _ in runs))
        floor_rss.append(max(int(stdout.strip().splitlines()[-1]) for _, stdout in runs) / 1024)
    floor_total = sum(floor)

    # -- harness, warm ---------------------------------------------------------------------
    j1 = statistics.median(harness(str(matrix_path), str(MODEL), "-o", str(out), "-j", "1", env=env) for _ in range(2))
    j2 = statistics.median(harness(str(matrix_path), str(MODEL), "-o", str(out), "-j", "2", env=env) for _ in range(2))
    doc = json.loads((out / "results.json").read_text())
    probe_rss = [r["peak_rss_mb"] for r in doc["results"] if r.get("peak_rss_mb")]

    # -- nox with its uv backend: cold once (installs), then warm (-R: reuse venvs, no install) --
    nox_cold = nox_seconds = None
    if _has_module("nox"):
        noxfile = work / "noxfile.py"
        noxfile.write_text(
            textwrap.dedent(f"""
            import nox

            @nox.session(venv_backend="uv", python="{matrix_python()}")
            @nox.parametrize("tf", {VERSIONS!r})
            def load(session, tf):
                session.install("tensorflow-cpu==" + tf)
                session.run("python", "-c", {LOAD!r}, "{MODEL}")
        """)
        )
        nox_cold, _ = timed([sys.executable, "-m", "nox", "-f", str(noxfile), "--no-color"], env=env, cwd=work)
        nox_seconds = statistics.median(
            timed([sys.executable, "-m", "nox", "-f", str(noxfile), "--no-color", "-R"], env=env, cwd=work)[0] for _ in range(2)
        )
    else:
        print("nox is not installed (pip install -e '.[bench]'): skipping the nox baseline")

    # -- cold: one env built by the harness vs a bare uv venv + pip sync of its lock ------
    # Alternated three times, medians compared: single runs vary by +-50% here (file system).
    spec = envs[0]
    bare = work / "bare-venv"
    (work / "lock.txt").write_text(spec.lock)
    harness_runs, bare_runs = [], []
    for _ in range(3):
        shutil.rmtree(backend.location(spec), ignore_errors=True)
        start = time.monotonic()
        backend.prepare(spec)
        harness_runs.append(time.monotonic() - start)
        shutil.rmtree(bare, ignore_errors=True)
        start = time.monotonic()
        subprocess.run([uv_bin(), "venv", "-q", "--python", spec.python, str(bare)], check=True)
        subprocess.run([uv_bin(), "pip", "sync", "-q", "--python", str(bare / "bin" / "python"), str(work / "lock.txt")], check=True)
        bare_runs.append(time.monotonic() - start)
    cold_harness, cold_bare = statistics.median(harness_runs), statistics.median(bare_runs)

    # -- shared import: 10 models in one env vs 1 ------------------------------------------
    many = work / "ten"
    many.mkdir(exist_ok=True)
    copies = []
    for i in range(10):
        copy = many / f"model{i}.h5"
        shutil.copy(MODEL, copy)
        copies.append(str(copy))
    only = ["--only", f"*tensorflow{VERSIONS[0]}"]
    one = statistics.median(harness(str(matrix_path), copies[0], "-o", str(work / "o1"), *only, env=env) for _ in range(2))
    ten = statistics.median(harness(str(matrix_path), *copies, "-o", str(work / "o10"), *only, env=env) for _ in range(2))

    # -- a scheduled rerun with nothing changed: every result from the store --------------
    store = work / "store.sqlite"
    store.unlink(missing_ok=True)
    harness(str(matrix_path), str(MODEL), "-o", str(work / "cached"), env=env, store=store)
    cached = statistics.median(harness(str(matrix_path), str(MODEL), "-o", str(work / "cached"), env=env, store=store) for _ in range(3))

    n = len(VERSIONS)
    figures = {
        "cached_rerun_s": cached,
        "cells": n,
        "floor_per_cell_s": floor_total / n,
        "harness_j1_per_cell_s": j1 / n,
        "harness_j1_over_floor": (j1 / n) / (floor_total / n),
        "harness_j2_per_cell_s": j2 / n,
        "j2_speedup": j1 / j2,
        "nox_cold_per_cell_s": nox_cold / n if nox_cold else None,
        "nox_per_cell_s": nox_seconds / n if nox_seconds else None,
        "harness_j1_over_nox": j1 / nox_seconds if nox_seconds else None,
        "peak_rss_mb_probe_max": max(probe_rss) if probe_rss else None,
        "peak_rss_mb_floor_max": max(floor_rss),
        "cold_env_harness_s": cold_harness,
        "cold_env_bare_uv_s": cold_bare,
        "cold_ratio": cold_harness / cold_bare,
        "one_model_s": one,
        "ten_models_s": ten,
        "ten_over_one": ten / one,
    }
    print()
    print_figures(figures)
    print()
    print(f"warm: harness -j1 costs {figures['harness_j1_over_floor']:.2f}x the floor per cell (target <= 1.15)")
    print(f"-j 2 is {figures['j2_speedup']:.2f}x faster than -j 1 on {n} cells (target >= 1.6)")
    print(f"cold: building an env costs {figures['cold_ratio']:.2f}x a bare uv venv + pip sync (target <= 1.2)")
    print(f"10 models in one env cost {figures['ten_over_one']:.2f}x one model (target <= 2)")
    print(f"a rerun with every result in the store takes {cached:.2f} s for {n} cells")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def matrix_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    main()
