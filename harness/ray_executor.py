"""Cells on a Ray cluster: Ray schedules, the harness submits cells and collects results.

The driver (`harness run --executor ray`) plans as always, then submits one Ray task per
cell with a resource request (CPUs, memory) so Ray never packs more TensorFlow processes
onto a node than it holds. Each task, on whichever worker Ray picks:

1. materialises the model files from Ray's object store into the worker's cache, by
   content: `<cache>/models/<sha256>/<name>`, checked against the sha256 the driver
   computed (a worker's local path is never trusted, and a file already there is not
   fetched again);
2. builds or reuses the cell's environment locally (uv, or Docker where the worker has
   a daemon), exactly as a local run does (the same EnvSpec key), and runs the probe;
3. returns the results plus the files the cell wrote (logs, saved outputs).

Cells go where their environment already is (`place`): before submitting, the driver
asks every node which of the run's environments it has built, and pins each cell softly
to the node where it would finish first, counting a build where the environment is
missing; cells that share an environment go to one node, so it is built once. A cluster
whose nodes share one environment cache (HARNESS_CACHE_DIR on a shared disk) reports
every environment everywhere, and the cells simply spread.

Results stream back as tasks finish (`ray.wait`), so the driver's store, results.json
and progress bar advance cell by cell. A worker that dies mid-cell costs a retry (Ray's
`max_retries`; the environment build is atomic and the probe has no side effects), and
the driver records each cell once, when its task's final attempt returns. Ctrl-C on the
driver ends every outstanding task: the driver leaves, and Ray ends a departed driver's
tasks (a stream closed by --fail-fast cancels them, `ray.cancel(force=True)`).

Workers need the same harness version as the driver (`pip install 'harness[ray]'` in
the cluster's image); a mismatch is reported per cell as an infra error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import __version__
from .backends import Backend, BackendConfig
from .cell import FILE_NAMES, CellTask
from .diagnose import CellResult
from .errors import BackendUnavailable, UsageError
from .modelfile import ModelInfo, content_hash
from .paths import cache_dir
from .probe import PROBE_VERSION

EXTRA = "pip install 'harness[ray]'"
DEFAULT_MEMORY = "1.5g"  # per cell, as default_jobs assumes for a TensorFlow process


def check_ray() -> None:
    """Ray is importable (without importing it: that takes a third of a second, done while planning)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # sys.modules["ray"] = None (blocked) or a broken install
        found = False
    if not found:
        raise BackendUnavailable(f"--executor ray needs Ray, which is not installed: {EXTRA} (the ray extra)")


def parse_size(text: str) -> int:
    """'1.5g', '512m', '2GiB', '1000000' -> bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not match:
        raise UsageError(f"--ray-memory {text}: expected a size such as 1.5g or 512m")
    number, unit = float(match.group(1)), match.group(2)
    return int(number * 1024 ** "_kmgt".index(unit or "_"))


@dataclass(frozen=True)
class Parcel:
    """A file (or SavedModel folder) sent through Ray's object store, known by its content."""

    name: str
    sha256: str
    ref: Any  # ray.ObjectRef to bytes (a file) or {relative path: bytes} (a folder)


@dataclass(frozen=True)
class Shipment:
    """Everything one cell's task needs on a worker; no driver path in it is used there."""

    cell: Any
    env: Any
    backend: str
    config: BackendConfig  # the driver's backend, as a worker creates it (Backend.portable_config)
    models: tuple[tuple[ModelInfo, Parcel], ...]
    load: Any
    files: Mapping[str, Parcel] = field(default_factory=dict)  # custom_objects, input
    harness_version: str = __version__
    probe_version: int = PROBE_VERSION


class RayExecutor:
    def __init__(
        self,
        address: str | None = None,
        cpus: float = 1.0,
        memory: str = DEFAULT_MEMORY,
        max_retries: int = 3,
    ):
        check_ray()
        self.ray: Any = None
        self.address = address
        self.cpus = cpus
        self.memory = parse_size(memory)
        self.backend = "uv"
        self.config = BackendConfig()
        self.max_retries = max_retries
        self._connecting: threading.Thread | None = None
        self._shutdown: threading.Thread | None = None
        self._error: BaseException | None = None

    def use_backend(self, backend: Backend) -> None:
        """Workers create the driver's backend from its portable config (Docker settings, a
        user's template by its text, the uv sandbox and limits)."""
        self.backend = backend.name
        self.config = backend.portable_config()

    def connect(self) -> None:
        """Start connecting in the background: the driver plans (index, locks) meanwhile."""
        if self._connecting is None:
            self._connecting = threading.Thread(target=self._connect, name="ray-connect", daemon=True)
            self._connecting.start()

    def connected(self) -> None:
        """Wait for the connection; a cluster that cannot be reached is a one-line error."""
        self.connect()
        assert self._connecting is not None
        self._connecting.join()
        if self._error is not None:
            raise self._error

    def _connect(self) -> None:
        import ray

        self.ray = ray
        address = self.address or os.environ.get("RAY_ADDRESS") or "auto"
        try:
            if not ray.is_initialized():
                # Ray's Python notices (no SIGTERM handler from this thread) are noise on the harness's
                # terminal; its errors still show.
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._error = BackendUnavailable(
                f"cannot reach a Ray cluster at {address}: {first}; start one (`ray start --head`) or pass --ray-address HOST:6379"
            )

    def run_all(self, tasks: Sequence[Any], on_stage: Callable[[str, str], None] | None = None) -> Iterator[list[CellResult]]:
        """`tasks` are the runner's CellTasks (plain data); other callables cannot travel."""
        if not tasks:
            return
        if not all(isinstance(t, CellTask) for t in tasks):
            raise UsageError("the Ray executor runs harness cells only (this command needs --executor local)")
        self.connected()
        ray = self.ray
        pending = self._submit(tasks)
        interrupted = False
        try:
            while pending:
                try:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    task = pending.pop(done[0])
                    try:
                        answer = ray.get(done[0])
                    except ray.exceptions.RayError as exc:
                        answer = {"error": f"Ray: {type(exc).__name__}: {_first_line(exc)}"}
                except KeyboardInterrupt:
                    # Re-raised below as a fresh one: this one's traceback holds Ray's frames, and in them
                    # object references, which must go before the disconnect (see the finally clause).
                    interrupted = True
                    break
                if not pending:  # the last one: disconnect while the driver records it and writes the reports
                    done = []
                    self._disconnect()
                yield receive(answer, task)
        finally:
            if not interrupted:  # a closed stream (--fail-fast): the driver goes on, its tasks must stop now
                for ref in pending:
                    ray.cancel(ref, force=True)
            # After Ctrl-C the driver leaves at once (cli.entry), and Ray ends the tasks of a job whose
            # driver is gone, killing their workers as a forced cancel does. Cancelling first raced
            # the cancelled tasks' replies inside Ray's core worker (ray-project/ray#54846: "Tried to
            # complete task that was not pending"), which ended the driver with exit 1 instead of 130.
            # Drop every object reference while connected: a reference that outlives the shutdown
            # (a traceback keeps this frame alive after Ctrl-C) makes Ray end the process with
            # exit code 1 when it is collected.
            pending.clear()
            done = []
            self._disconnect()
        if interrupted:
            raise KeyboardInterrupt

    def _disconnect(self) -> None:
        """Disconnect beside the driver's own work: Ray's exit-time teardown took about a second here,
        an explicit shutdown 0.3 s. The interpreter waits for this thread at exit."""
        if self._shutdown is None:
            self._shutdown = threading.Thread(target=self.ray.shutdown, name="ray-shutdown")
            self._shutdown.start()

    def _submit(self, tasks: Sequence[CellTask]) -> dict[Any, CellTask]:
        """One task per cell; each model file goes into the object store once. Returns {ObjectRef: task}.

        Its own frame, so that no object reference but the returned ones outlives it.
        """
        ray = self.ray
        parcels: dict[str, Parcel] = {}

        def parcel(path: Path, name: str, sha256: str | None = None) -> Parcel:
            key = str(path)
            if key not in parcels:
                digest = sha256 or content_hash(path)[0]
                parcels[key] = Parcel(name, digest, ray.put(_pack(path)))
            return parcels[key]

        remote = ray.remote(num_cpus=self.cpus, memory=self.memory, max_retries=self.max_retries, retry_exceptions=False)(run_shipment)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        placed = self._placement(tasks)
        pending: dict[Any, CellTask] = {}
        for n, task in enumerate(tasks):
            files = {
                key: parcel(Path(value), Path(value).name)
                for key in ("custom_objects", "input")
                if (value := getattr(task.load, key)) is not None
            }
            models = tuple((info, parcel(Path(info.path), info.name, info.sha256)) for info in task.infos)
            shipment = Shipment(task.cell, task.env, self.backend, self.config, models, task.load, files)
            options: dict[str, Any] = {"name": f"harness cell {task.cell.id}"}
            if n in placed:
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(placed[n], soft=True)  # elsewhere if the node is gone
            pending[remote.options(**options).remote(shipment)] = task
        return pending

    def _placement(self, tasks: Sequence[CellTask]) -> dict[int, str]:
        """Node id per task index (see `place`); {} when the nodes cannot be asked (Ray spreads)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        alive = [n for n in ray.nodes() if n.get("Alive")]
        if len(alive) < 2:
            return {}
        envs = list({t.env.key: t.env for t in tasks}.values())
        ask = ray.remote(num_cpus=0)(built_here)
        refs = [
            ask.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(self.backend, self.config, envs)
            for n in alive
        ]
        # Ray starts a job's workers when its driver connects (one per CPU; measured with Ray 2.60:
        # born 0.01 s after ray.init, ready 0.4 s later), and the question is the first task each
        # node gets: it waits for that start, which the cells would wait for anyway, and then leaves
        # the worker to them. A node whose workers are all busy (another job) starts one more for
        # it (0.9 s measured), so the wait is bounded: 2 s, more for a large run.
        budget = min(60.0, max(2.0, 0.05 * len(tasks)))
        try:
            answers = ray.get(refs, timeout=budget)
        except Exception:  # noqa: BLE001 - a node that cannot answer in time: no placement, Ray spreads as before
            return {}
        finally:
            refs = []
        nodes = {
            n["NodeID"]: NodeView(max(1, int(n.get("Resources", {}).get("CPU", 0) // max(self.cpus, 0.01))), frozenset(have))
            for n, have in zip(alive, answers, strict=True)
        }
        return place([t.env.key for t in tasks], nodes)


def receive(answer: Mapping[str, Any], task: CellTask) -> list[CellResult]:
    """Write the files a worker's cell produced under OUTDIR; point results at them."""
    if answer.get("error"):
        return task.failed(answer["error"])
    outdir = task.logs.parent
    for relative, data in answer.get("files", {}).items():
        target = (outdir / relative).resolve()
        if outdir.resolve() not in target.parents:
            continue  # only OUTDIR/logs and OUTDIR/outputs are expected; nothing else is written
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    results = []
    for record in answer["results"]:
        if record.get("outputs"):
            record = {**record, "outputs": str(outdir / "outputs" / record["model"] / f"{record['cell']}.npz")}
        if isinstance(record.get("files"), dict):  # written above under OUTDIR/files, by the names cell.FILE_NAMES gives
            record = {
                **record,
                "files": {
                    r: str(outdir / "files" / record["model"] / record["cell"] / FILE_NAMES[r]) for r in record["files"] if r in FILE_NAMES
                },
            }
        results.append(replace(CellResult.from_dict(record), worker=f"{answer['host']}/{answer['pid']}"))
    return results


@dataclass(frozen=True)
class NodeView:
    slots: int  # cells at once
    built: frozenset[str]  # environment keys already there


CELL_SECONDS = 6.0  # a probe with TensorFlow's import, bytecode compiled (measured here: 2.6-6 s)
BUILD_SECONDS = 20.0  # an environment from a warm uv cache, bytecode compiled (measured: 5-25 s)


def place(keys: Sequence[str], nodes: Mapping[str, NodeView]) -> dict[int, str]:
    """Node per cell (index into `keys`, the cells' environment keys): cells sharing an
    environment stay together; each group, largest first, goes to the node where it would
    finish first, a node that lacks the environment paying a build. Greedy, no Ray in it."""
    groups: dict[str, list[int]] = {}
    for n, key in enumerate(keys):
        groups.setdefault(key, []).append(n)
    load = dict.fromkeys(nodes, 0.0)  # seconds of work assigned per node, per slot
    placed: dict[int, str] = {}
    for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):

        def finish(node: str, key: str = key, members: list[int] = members) -> tuple[float, str]:
            view = nodes[node]
            work = len(members) * CELL_SECONDS / view.slots + (0.0 if key in view.built else BUILD_SECONDS)
            return load[node] + work, node

        end, best = min(finish(node) for node in nodes)
        load[best] = end
        for n in members:
            placed[n] = best
    return placed


# --------------------------------------------------------------------------- on the worker


def built_here(backend_name: str, config: BackendConfig, envs: Sequence[Any]) -> list[str]:
    """A Ray task pinned to one node: which of these environments that node has built."""
    from .backends import create_backend

    try:
        backend = create_backend(backend_name, config)
    except Exception:  # noqa: BLE001 - no such backend there (no Docker daemon): nothing built
        return []
    return [env.key for env in envs if backend.built(env)]


def run_shipment(shipment: Shipment) -> dict[str, Any]:
    """A Ray task: one cell on this worker. Returns results and the files written."""
    if (shipment.harness_version, shipment.probe_version) != (__version__, PROBE_VERSION):
        return {
            "error": f"worker {socket.gethostname()} runs harness {__version__} (probe {PROBE_VERSION}), the driver "
            f"{shipment.harness_version} (probe {shipment.probe_version}); install one version on every node"
        }
    import ray

    from .backends import create_backend

    store = cache_dir() / "models"
    backend = create_backend(shipment.backend, shipment.config)
    backend.check()
    infos = tuple(replace(info, path=str(materialize(p, store, ray.get))) for info, p in shipment.models)
    local = {key: materialize(p, store, ray.get) for key, p in shipment.files.items()}
    load = replace(shipment.load, **local)
    with tempfile.TemporaryDirectory(prefix="harness-ray-") as tmp:
        work = Path(tmp)
        results = CellTask(shipment.cell, shipment.env, backend, infos, load, work / "logs")()
        files = {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}
    return {"results": [r.to_dict() for r in results], "files": files, "host": socket.gethostname(), "pid": os.getpid()}


def materialize(parcel: Parcel, store: Path, get: Any) -> Path:
    """The parcel's content at store/<sha256>/<name>, fetched once per worker machine and checked."""
    folder = store / parcel.sha256
    target = folder / parcel.name
    if (folder / ".verified").exists() and target.exists():
        return target
    data = get(parcel.ref)
    staging = Path(tempfile.mkdtemp(prefix=f".{parcel.sha256[:12]}-", dir=_mkdir(store)))
    try:
        _unpack(data, staging / parcel.name)
        seen = content_hash(staging / parcel.name)[0]
        if seen != parcel.sha256:
            raise RuntimeError(f"{parcel.name}: content sha256 {seen[:16]} is not the driver's {parcel.sha256[:16]}")
        (staging / ".verified").write_text(parcel.sha256)
        if folder.exists() and not (folder / ".verified").exists():
            shutil.rmtree(folder, ignore_errors=True)  # left half-written by a worker that died
        try:
            os.rename(staging, folder)
        except OSError:  # another task on this machine put it there first
            if not (folder / ".verified").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pack(path: Path) -> bytes | dict[str, bytes]:
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes()


def _unpack(data: bytes | dict[str, bytes], target: Path) -> None:
    if isinstance(data, bytes):
        target.write_bytes(data)
        return
    for relative, content in data.items():
        file = (target / relative).resolve()
        if target.resolve() not in file.parents:
            raise RuntimeError(f"{relative}: a path outside the model folder")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
