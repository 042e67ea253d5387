"""What inspecting model files in a sandbox costs: `harness inspect` against reading the same
files with h5py in one plain Python process (what a user's script does, and what the harness
did before its reader moved into a sandboxed child).

    python bench/bench_inspect.py [--runs 15] [--harness PATH]

Cold: the reader's answers are not kept yet (the cache folder's memo/ removed before each
run; the machine facts, bubblewrap works here, are kept as they are for a day). Warm: kept,
so no reader starts. The peer opens each file with h5py and reads its Keras attributes
(model_config, training_config, keras_version); for a .keras archive, config.json and
metadata.json, and the weights file through h5py. Medians of --runs, interleaved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import print_figures, run_timed

REPO = Path(__file__).resolve().parent.parent
MODELS = sorted(str(p) for p in (REPO / "examples" / "models").iterdir())
PEER = """
import json, sys, zipfile, h5py
for path in sys.argv[1:]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            config, meta = json.loads(z.read("config.json")), json.loads(z.read("metadata.json"))
            with z.open("model.weights.h5") as w, h5py.File(w, "r") as f:
                len(f.keys())
    else:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            f.attrs.get("training_config"), f.attrs.get("keras_version")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--harness", default=str(Path(sys.executable).with_name("harness")), help="the harness command to time")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    run_timed([args.harness, "inspect", *MODELS], env)  # the machine facts, once
    cold, warm, peer = [], [], []
    for _ in range(args.runs):
        shutil.rmtree(cache / "memo", ignore_errors=True)
        cold.append(run_timed([args.harness, "inspect", *MODELS], env, Path("/"))[0])
        warm.append(run_timed([args.harness, "inspect", *MODELS], env, Path("/"))[0])
        peer.append(run_timed([sys.executable, "-c", PEER, *MODELS], env, Path("/"))[0])
    shutil.rmtree(cache, ignore_errors=True)
    figures = {
        "files": len(MODELS),
        "harness inspect, cold (s)": statistics.median(cold),
        "harness inspect, warm (s)": statistics.median(warm),
        "plain h5py read, one process (s)": statistics.median(peer),
        "cold / plain h5py": statistics.median(cold) / statistics.median(peer),
        "warm / plain h5py": statistics.median(warm) / statistics.median(peer),
    }
    print_figures(figures)


if __name__ == "__main__":
    main()
