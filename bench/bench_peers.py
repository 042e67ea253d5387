"""The harness against its peers on the same work, measured in the same run (issue 14).

    pip install -e '.[bench]'          # nox
    python bench/bench_peers.py        # ~10 min with uv's cache warm

Peers:
  nox       its uv backend, written as a user would: one session per TensorFlow release,
            `session.install("tensorflow-cpu==X")`, one `python load.py MODEL` per model.
            New environments: `.nox` removed first, paired with a harness run on a cache
            folder of its own, --runs pairs; warm: `nox -R` (reuse, no install).
  planning  expansion alone (`harness cells M --no-lock`) of generated 5,000- and
            50,000-cell matrices, and `--dry-run` of a 500-cell matrix with its locks
            made in the run and then answered from the lock cache.

Every figure is the median of the runs named; ratios are peer time / harness time (higher
is better for the harness). Nothing here is asserted; the closing notes quote the output.
PYTHONDONTWRITEBYTECODE is removed from the peers' environment (a user's nox caches
bytecode in its venvs; the harness compiles at build time).
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
MODEL = REPO / "examples" / "models" / "dense.h5"
RELEASES = ["2.15.1", "2.16.2", "2.19.1", "2.21.0"]
LOAD = """
import sys
import tensorflow as tf

for path in sys.argv[1:]:
    tf.keras.models.load_model(path)
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    return run_timed(argv, env, cwd)[0]


def peak_kib(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and the command's own peak RSS (KiB), measured by a parent of its own."""
    measure = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    measure += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", measure, *argv], env=env, check=True, capture_output=True, text=True)
    return time.monotonic() - start, int(done.stdout.split()[-1])


HARNESS = [sys.executable, "-m", "harness"]  # main() points it at the `harness` command of a venv, as users install it


def harness(*args: str) -> list[str]:
    return [*HARNESS, *args]


def install_harness(venv: Path) -> None:
    """`pip install .` into a venv of its own: the harness measured as users run it. A
    development install (pip install -e) adds its import hook, ~40 ms, to every start."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)], check=True)
    # the console script, not `python -m harness`: -m puts the working folder first on sys.path,
    # and from the repository's root that imports the source tree instead of the install
    HARNESS[:] = [str(venv / "bin" / "harness")]


def matrix_file(path: Path, axes: dict[str, list[str]]) -> Path:
    lines = ["name: bench", "matrix:"] + [f"  {k}: {json.dumps(v)}" for k, v in axes.items()]
    path.write_text("\n".join(lines) + "\npackages: {tensorflow: tensorflow-cpu}\n")
    return path


def noxfile(path: Path, models: list[Path]) -> Path:
    path.write_text(
        textwrap.dedent(f"""
        import nox

        @nox.session(venv_backend="uv", python="{sys.version_info.major}.{sys.version_info.minor}")
        @nox.parametrize("tf", {RELEASES!r})
        def load(session, tf):
            session.install("tensorflow-cpu==" + tf)
            for model in {[str(m) for m in models]!r}:
                session.run("python", "load.py", model)
        """)
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-bench-peers")
    parser.add_argument("--runs", type=int, default=2, help="runs per figure (median), new environments in pairs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-planning", action="store_true")
    parser.add_argument("--only-planning", action="store_true", help="expansion and locking only, no environments")
    args = parser.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    figures: dict[str, float | int | None] = {}
    install_harness(work / "harness-venv")

    if not args.skip_planning:
        plan_env = {**env, "HARNESS_CACHE_DIR": str(work / "plan-cache")}
        axes = {
            "tensorflow": ["2.12", "2.13", "2.14", "2.15", "2.16", "2.17", "2.18", "2.19", "2.20", "2.21"],
            "numpy": ["1.23", "1.24", "1.25", "1.26", "2.0", "2.1", "2.2", "2.3", "2.4", "1.26.0"],
            "protobuf": ["3.20", "4.21", "4.22", "4.23", "4.24", "4.25", "5.26", "5.27", "5.28", "5.29"],
            "h5py": ["3.8", "3.9", "3.10", "3.11", "3.12"],
        }
        five = matrix_file(work / "5k.yaml", axes)  # 10 x 10 x 10 x 5
        ml_dtypes = ["0.2.0", "0.3.1", "0.3.2", "0.4.0", "0.4.1", "0.5.0", "0.5.1", "0.5.3", "0.5.4", "0.3.0"]
        fifty = matrix_file(work / "50k.yaml", {**axes, "ml-dtypes": ml_dtypes})  # and 10 ml-dtypes releases
        timed(harness("cells", str(five), "--no-lock"), plan_env)  # the release lists fetched once
        for name, path in (("5k", five), ("50k", fifty)):
            seconds, rss = peak_kib(harness("cells", str(path), "--no-lock", "--json"), plan_env)
            out = subprocess.run(harness("cells", str(path), "--no-lock", "--json"), env=plan_env, capture_output=True)
            figures[f"expand_{name}_cells"] = len(json.loads(out.stdout))
            figures[f"expand_{name}_s"] = seconds
            figures[f"expand_{name}_peak_mib"] = rss // 1024
        five_hundred = matrix_file(
            work / "500.yaml",
            {
                "tensorflow": ["2.12", "2.13", "2.14", "2.15", "2.16", "2.17", "2.18", "2.19", "2.20", "2.21"],
                "numpy": ["1.23", "1.24", "1.25", "1.26", "2.0"],
                "protobuf": ["3.20", "4.21", "4.22", "4.23", "4.24", "4.25", "5.26", "5.27", "5.28", "5.29"],
            },
        )
        dry = harness("run", str(five_hundred), str(MODEL), "--dry-run")
        figures["lock_500_new_cells_s"] = timed(dry, plan_env)
        figures["dry_run_500_locked_s"] = statistics.median(timed(dry, plan_env) for _ in range(args.runs))

    if args.only_planning:
        print_figures(figures)
        return

    # -- 4 cells x 1 model: new environments, then warm, then nothing changed ----------------
    four = matrix_file(work / "four.yaml", {"tensorflow": RELEASES})
    (work / "load.py").write_text(LOAD)
    run = harness("run", str(four), str(MODEL), "-o", str(work / "out"), "--no-store")
    nox_one = noxfile(work / "noxfile.py", [MODEL])
    nox = [sys.executable, "-m", "nox", "-f", str(nox_one), "--no-color"]
    # New environments, in pairs (the harness with a cache folder of its own, nox with .nox
    # removed), one pair after another: both are CPU-bound here and drift with the machine.
    harness_new, nox_new = [], []
    for n in range(args.runs):
        new_env = {**env, "HARNESS_CACHE_DIR": str(work / f"cache{n}")}
        harness_new.append(timed(run, new_env))
        shutil.rmtree(work / ".nox", ignore_errors=True)
        nox_new.append(timed(nox, env, cwd=work))
        print(f"  new environments, pair {n + 1}: harness {harness_new[-1]:.1f} s, nox {nox_new[-1]:.1f} s", flush=True)
    figures["harness_4_new_s"] = statistics.median(harness_new)
    figures["nox_4_new_s"] = statistics.median(nox_new)
    figures["harness_4_warm_s"] = statistics.median(timed(run, new_env) for _ in range(args.runs))
    stored = harness("run", str(four), str(MODEL), "-o", str(work / "stored"), "--store", str(work / "store.sqlite"))
    timed(stored, new_env)
    # 0.2 s each: enough runs that one slow start on a shared machine does not make the median
    figures["harness_rerun_s"] = statistics.median(timed(stored, new_env) for _ in range(max(15, args.runs)))

    figures["nox_4_warm_s"] = statistics.median(timed([*nox, "-R"], env, cwd=work) for _ in range(args.runs))

    # -- 16 models x 4 environments (warm) --------------------------------------------------
    models_dir = work / "models"
    models_dir.mkdir()
    models = []
    for i in range(16):
        copy = models_dir / f"model{i:02d}.h5"
        shutil.copyfile(MODEL, copy)
        models.append(copy)
    many = harness("run", str(four), *map(str, models), "-o", str(work / "out16"), "--no-store")
    figures["harness_16x4_s"] = statistics.median(timed(many, new_env) for _ in range(args.runs))
    nox_many = noxfile(work / "noxfile16.py", models)
    figures["nox_16x4_s"] = timed([sys.executable, "-m", "nox", "-f", str(nox_many), "--no-color", "-R"], env, cwd=work)

    ratios = {
        "nox_new_over_harness_new": figures["nox_4_new_s"] / figures["harness_4_new_s"],  # type: ignore[operator]
        "nox_warm_over_harness_warm": figures["nox_4_warm_s"] / figures["harness_4_warm_s"],  # type: ignore[operator]
        "nox_warm_over_harness_rerun": figures["nox_4_warm_s"] / figures["harness_rerun_s"],  # type: ignore[operator]
        "nox_over_harness_16x4": figures["nox_16x4_s"] / figures["harness_16x4_s"],  # type: ignore[operator]
    }
    print_figures({**figures, **ratios})
    print()
    print(f"4 cells, new environments: {ratios['nox_new_over_harness_new']:.2f}x faster than nox (target >= 2.2)")
    print(f"4 cells, warm:              {ratios['nox_warm_over_harness_warm']:.2f}x faster than nox -R (target >= 2.5)")
    print(f"16 models x 4 cells:        {ratios['nox_over_harness_16x4']:.2f}x faster than nox -R (target >= 10)")
    print(
        f"unchanged re-run:           {figures['harness_rerun_s']:.2f} s, {ratios['nox_warm_over_harness_rerun']:.0f}x faster than nox -R (target <= 0.5 s, >= 50x)"
    )
    if not args.skip_planning:
        print(
            f"planning: {figures['expand_5k_cells']} cells expand in {figures['expand_5k_s']:.2f} s (target <= 5), "
            f"{figures['expand_50k_cells']} in {figures['expand_50k_s']:.2f} s (target <= 60); "
            f"500 new cells lock in {figures['lock_500_new_cells_s']:.0f} s (target <= 120), "
            f"--dry-run of them locked {figures['dry_run_500_locked_s']:.2f} s"
        )
    if args.json:
        args.json.write_text(json.dumps({**figures, **ratios}, indent=1))


if __name__ == "__main__":
    main()
