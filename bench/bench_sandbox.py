"""What the uv backend's sandbox costs per warm cell, against the unsandboxed probe.

    python bench/bench_sandbox.py [--rounds 7] [--tensorflow 2.15.1]

Both sides run the same probe on the same model in the same pre-built environment,
through the same UvBackend.run_probe, alternating round by round so drift on a busy
machine hits both: `--sandbox bwrap` (namespaces, read-only view, tmpfs, cgroup) against
`--sandbox none`. A plain `python -c load_model` loop in the same venv is printed as the
peer (the floor a user's own script would see). Ratios are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.backends.uv import UvBackend  # noqa: E402
from harness.inspection import inspect_model  # noqa: E402
from harness.matrix import Cell, LoadOptions  # noqa: E402
from harness.plan import EnvSpec  # noqa: E402
from harness.request import probe_request  # noqa: E402
from harness.resolve import Lock, Resolver  # noqa: E402
from harness.sandbox import BwrapSandbox, NoSandbox, find_bwrap  # noqa: E402

MODEL = REPO / "examples" / "models" / "dense.h5"
LOAD = "import tensorflow as tf, sys; tf.keras.models.load_model(sys.argv[1])"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tensorflow", default="2.15.1")
    args = parser.parse_args()
    bwrap = find_bwrap()
    if bwrap is None:
        raise SystemExit("bubblewrap is not installed: nothing to compare")
    cell = Cell(python=f"{sys.version_info.major}.{sys.version_info.minor}", pins=(("tensorflow", args.tensorflow),))
    lock = Resolver({"tensorflow": "tensorflow-cpu"}).resolve(cell)
    assert isinstance(lock, Lock), lock
    boxes = {"bwrap": UvBackend(sandbox=BwrapSandbox(bwrap)), "none": UvBackend(sandbox=NoSandbox())}
    prepared = boxes["none"].prepare(EnvSpec(cell.python, lock.text))
    print(f"environment: {prepared.location} (tensorflow-cpu {args.tensorflow}), model {MODEL.name}, {args.rounds} rounds")
    request = probe_request([inspect_model(MODEL)], LoadOptions(fixes=False), "tf.keras")
    python = str(Path(prepared.location) / "bin" / "python")
    times: dict[str, list[float]] = {"bwrap": [], "none": [], "python -c": []}
    for backend in boxes.values():  # one warm-up each: page cache, uv's lazy files
        backend.run_probe(prepared, request, {}, 300)
    for _ in range(args.rounds):
        for name, backend in boxes.items():
            start = time.monotonic()
            done = backend.run_probe(prepared, request, {}, 300)
            times[name].append(time.monotonic() - start)
            if '"kind": "done"' not in done.stdout:
                raise SystemExit(f"{name}: the probe did not finish:\n{done.stderr[-2000:]}")
        start = time.monotonic()
        subprocess.run([python, "-c", LOAD, str(MODEL)], check=True, capture_output=True, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
        times["python -c"].append(time.monotonic() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:<10} median {value:.3f} s per cell  (all: {', '.join(f'{v:.2f}' for v in times[name])})")
    print(f"sandbox cost: bwrap / none = {medians['bwrap'] / medians['none']:.3f}x (target <= 1.05)")
    print(f"against the floor: bwrap / python -c load_model = {medians['bwrap'] / medians['python -c']:.3f}x")


if __name__ == "__main__":
    main()
