"""Static inspection of model files, with the file's bytes parsed in a sandbox.

The harness itself only stats a model path, hashes its bytes and reads its first bytes
for a signature (modelfile.py); everything that parses the file's structure (HDF5 through
h5py and its C library, zip archives, JSON configs, SavedModel protobufs) runs in a child
process (modelread.py): under bubblewrap where it works, with no network and a read-only
view of only the interpreter, h5py, numpy, the reader and the model files at fixed paths,
and always with limits on memory, CPU time, processes, file size and wall time. Its answer
comes back as JSON lines on stdout, read bounded and checked against the schema; an
answer that is missing (the reader crashed, hung or ran out of memory) makes the model
`unread`: not known to be damaged, so its cells still run, in a sandbox of their own.

All the models of one call share one reader (one interpreter start, one h5py import);
when a reader dies, the models it had not answered are read again one per reader, so one
hostile file costs only its own answer. What a reader found is kept (memo.py) by the
file's sha256, so a re-run of an unchanged file starts no reader at all.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import memo, modelfile
from .errors import UsageError
from .escape import visible
from .modelfile import (
    HEAD_BYTES,
    ZIP_SIGNATURE,
    ModelInfo,
    content_hash,
    file_sha256,
    folder_kind,
    hdf5_offset,
    looks_like_text,
    model_info,
    regular_file,
    weights_manifest,
)
from .paths import open_regular, scan_tree

READER_START = 15.0  # seconds for the reader to start (an interpreter and h5py's import on a busy machine)
READER_TIMEOUT = 60.0  # seconds per model: a CRC check of a multi-GB archive fits, a hang does not
READER_MEMORY = 3 << 30
READER_CODE = ("modelfile.py", "modelread.py", "inspection.py", "keras_builtins.txt")
FORMAT_OF = {"hdf5": "h5", "zip": "keras", "keras-dir": "keras-dir", "savedmodel": "savedmodel", "tf-checkpoint": "tf-checkpoint", "orbax": "orbax"}


@dataclass(frozen=True)
class Pending:
    """A model file whose facts the reader must find: what the harness knows of it already."""

    base: dict[str, Any]  # path, name, sha256, size
    kind: str  # hdf5 | zip | keras-dir | savedmodel | tf-checkpoint | orbax
    host: Path
    doubts: tuple[str, ...] = ()  # what the harness saw itself: links in a folder, never followed


def inspect_model(path: str | Path) -> ModelInfo:
    return inspect_files([path])[0]


class _Early(threading.Thread):
    """An inspection begun before it is asked for (start_early); join() then its answer or its error."""

    def __init__(self, paths: tuple[str, ...]):
        super().__init__(name="harness-inspect-early", daemon=True)
        self.paths = paths
        self.answer: list[ModelInfo] | None = None

    def run(self) -> None:
        try:
            self.answer = _inspect_files([Path(p) for p in self.paths])
        except BaseException:  # noqa: BLE001 - done again where it is asked for, and raised there
            self.answer = None


_early: dict[tuple[str, ...], _Early] = {}


def start_early(paths: Sequence[str]) -> None:
    """Begin inspecting `paths` in a thread while the command line is still being read: a cold
    `harness inspect` then starts its reader while the harness imports its commands.
    inspect_files takes the answer; an error is raised there, in order."""
    key = tuple(paths)
    if key and key not in _early:
        _early[key] = _Early(key)
        _early[key].start()


def inspect_files(paths: Iterable[str | Path]) -> list[ModelInfo]:
    """The facts of each model file, in order; a path that is no model is a one-line UsageError."""
    files = [Path(p) for p in paths]
    early = _early.pop(tuple(map(str, files)), None)
    if early is not None:
        early.join()
        if early.answer is not None:
            return early.answer
    return _inspect_files(files)


def _inspect_files(paths: Sequence[Path]) -> list[ModelInfo]:
    answers: dict[int, ModelInfo] = {}
    todo: list[tuple[int, Pending]] = []  # what the reader must read: not kept from an earlier inspection
    for i, item in enumerate(_identify(p) for p in paths):
        if isinstance(item, ModelInfo):
            answers[i] = item
            continue
        kept = memo.recall("inspected", _memo_parts(item), READER_CODE)
        if isinstance(kept, dict):
            answers[i] = _info(item, kept)
        else:
            todo.append((i, item))
    if todo:
        for (i, item), (answer, keep) in zip(todo, read_models([item for _, item in todo]), strict=True):
            answers[i] = _info(item, answer)
            if keep:
                memo.keep("inspected", _memo_parts(item), READER_CODE, answer)
    return [answers[i] for i in range(len(paths))]


def _memo_parts(item: Pending) -> list[str]:
    """What a reader's answer depends on: the bytes (a folder's hash covers its relative paths) and the kind."""
    return [item.base["sha256"], item.kind]


def _info(item: Pending, answer: dict[str, Any]) -> ModelInfo:
    doubts = [*item.doubts, *(answer.get("doubts") or ())]
    return model_info({**answer, **item.base, "format": answer.get("format") or FORMAT_OF[item.kind], "doubts": doubts})


def _identify(path: Path) -> ModelInfo | Pending:
    """What the harness itself can tell of `path` without parsing it: its kind, sha256 and size."""
    if not path.exists():
        raise UsageError(f"{path}: no such model file")
    if path.is_dir():
        root = path.resolve()  # the user's own argument may be a link to the folder; nothing inside is followed
        tree = scan_tree(root)
        entries = [name for name, _ in tree.files] + list(tree.folders)
        top = {name for name in entries if "/" not in name}
        below: dict[str, set[str]] = {}
        for name in entries:
            parts = name.split("/")
            if len(parts) == 2:
                below.setdefault(parts[0], set()).add(parts[1])
        kind = folder_kind(top, below)
        if kind is None:
            raise UsageError(
                f"{path}: is a folder but no model (no saved_model.pb, no config.json of an unzipped .keras); "
                "pass a .h5/.keras file, a SavedModel folder or an unzipped .keras folder"
            )
        sha256, size = content_hash(root)
        doubts = [f"links in the folder, not followed: {', '.join(tree.links[:5])}"] if tree.links else []
        doubts += [f"special files in the folder, not read: {', '.join(tree.others[:5])}"] if tree.others else []
        return Pending({"path": str(root), "name": path.name, "sha256": sha256, "size": size}, kind, root, tuple(doubts))
    size = regular_file(path, "model file", modelfile.MAX_MODEL_BYTES)
    try:
        with open(open_regular(path), "rb", closefd=True) as handle:
            head = handle.read(HEAD_BYTES)
        sha256 = file_sha256(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the model file ({exc.strerror})") from None
    base: dict[str, Any] = {"path": str(path.resolve()), "name": path.name, "sha256": sha256, "size": size}
    if hdf5_offset(head) is not None:
        return Pending(base, "hdf5", path.resolve())
    if head.startswith(ZIP_SIGNATURE):
        return Pending(base, "zip", path.resolve())
    if path.name.endswith(".json") and looks_like_text(head[:4096]) and weights_manifest(head) is not None:
        return ModelInfo(**base, format="weights-json", kind="weights")
    what = "an empty file" if not head else "text" if looks_like_text(head[:4096]) else "unrecognised bytes"
    raise UsageError(f"{path}: not a model file ({what}: no HDF5 signature, not a .keras zip, not a SavedModel folder)")


# --------------------------------------------------------------------------- the reader


def read_models(pending: Sequence[Pending]) -> list[tuple[dict[str, Any], bool]]:
    """(answer, whether to keep it) per model: the reader's facts, checked, or an `unread` answer
    saying why there are none. One reader for all; the ones a dead reader left are read alone."""
    answers, why = _run_reader(pending)
    result: list[tuple[dict[str, Any], bool]] = []
    for i, item in enumerate(pending):
        answer = answers.get(i)
        if answer is None and len(pending) > 1:
            alone, why = _run_reader([item])
            answer = alone.get(0)
        if answer is not None:
            result.append((answer, True))
        else:  # the reader died or stopped before answering: asked again next time
            result.append(({"format": FORMAT_OF[item.kind], "unread": [why]}, False))
    return result


def _run_reader(pending: Sequence[Pending]) -> tuple[dict[int, dict[str, Any]], str]:
    """({index: checked answer} for what one reader process answered, why it answered no more)."""
    timeout = READER_START + READER_TIMEOUT * len(pending)
    models = [{"kind": p.kind, "size": p.base["size"]} for p in pending]
    done = run_child({"op": "read", "models": models, "seconds_per_model": max(1, int(READER_TIMEOUT))}, [p.host for p in pending], timeout)
    answers: dict[int, dict[str, Any]] = {}
    malformed = ""
    for line in done.stdout.splitlines()[: len(pending)]:
        try:
            message = json.loads(line)
            index = message["i"]
            if not isinstance(index, int) or not 0 <= index < len(pending) or index in answers:
                continue
            if isinstance(message.get("unread"), str):
                answers[index] = {"format": FORMAT_OF[pending[index].kind], "unread": [message["unread"][:2000]]}
            else:
                answers[index] = _checked(message.get("info"))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            malformed = f"the reader's answer could not be read ({visible(str(exc))[:200]})"
    return answers, malformed or _why_no_answer(done)


def run_child(request: dict[str, Any], files: Sequence[Path], timeout: float, out: Path | None = None) -> Any:
    """modelread.main(request) in the inspection sandbox: `files` shown read-only (the request's
    models get their inside paths as "path"), `out` (a folder of the harness's) the only place it
    may write, as /out. Returns proc.Completed; its stdout is the child's answer, to be checked."""
    from .sandbox import SCRATCH, Jail, Limits, get_sandbox

    sandbox = get_sandbox("auto")
    limits = Limits(memory=READER_MEMORY, pids=16, file_size=(1 << 20) if out is None else modelfile.MAX_MODEL_BYTES, scratch=16 << 20)
    mounts: dict[str, str] = {}

    def show(host: Path, inside: str) -> str:
        where = sandbox.inside(str(host), inside)
        mounts[where] = str(host)
        return where

    python = Path(sys.executable).resolve()
    home = python.parent.parent
    if not str(home).startswith("/usr"):
        show(home, str(home))
    package = Path(__file__).resolve().parent
    root = show(package, "/opt/harness-reader/harness").rpartition("/")[0]
    sites = [show(site, str(site)) for site in _library_sites()]
    inside = [show(path, f"/models/m{i}{path.suffix if path.is_file() else ''}") for i, path in enumerate(files)]
    writable = {sandbox.inside(str(out), "/out"): str(out)} if out is not None else {}
    request = dict(request, files=inside, out=next(iter(writable), None))
    for model, path in zip(request.get("models") or [], inside, strict=False):
        model["path"] = path
    # Its own limits, whatever the sandbox: the child starts no process, so address space (memory and
    # what h5py maps), CPU seconds and file size bound it, with no cgroup to make.
    request["limits"] = {"address_space": READER_MEMORY, "cpu": int(timeout) + 5, "file_size": limits.file_size}
    boot = "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); from harness.modelread import main; sys.exit(main(sys.stdin.read()))"
    argv = (str(python), "-I", "-S", "-c", boot, json.dumps([root, *sites]))
    env = {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "HOME": SCRATCH,
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "HDF5_USE_FILE_LOCKING": "FALSE",
    }
    return sandbox.run(Jail(argv, mounts, env, "/", cgroup=False, writable=writable, stdin=json.dumps(request)), limits, timeout)


# --------------------------------------------------------------------------- configs and rewritten files (harness migrate)

MAX_CONFIG_ANSWER = 64 << 20


def read_configs(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(model config, training config) of an HDF5 model or a .keras archive, read in the sandbox
    and kept by the file's sha256; ValueError when they cannot be read."""
    item = _identify(path)
    if not isinstance(item, Pending) or item.kind not in ("hdf5", "zip"):
        raise ValueError(f"{path.name}: not an HDF5 model or a .keras archive")
    parts = [item.base["sha256"], item.kind]
    kept = memo.recall("configs", parts, READER_CODE)
    if not isinstance(kept, dict):
        done = run_child({"op": "configs", "models": [{"kind": item.kind, "size": item.base["size"]}]}, [item.host], READER_START + READER_TIMEOUT)
        kept = _answer(done, "the config")
        memo.keep("configs", parts, READER_CODE, kept)
    model_config, training_config = kept.get("model_config"), kept.get("training_config")
    if not isinstance(model_config, dict):
        raise ValueError(f"{path.name}: {kept.get('error') or 'no model config'}")
    return model_config, training_config if isinstance(training_config, dict) else None


def write_repaired(source: Path, target: Path, model_config: Any, training_config: Any) -> None:
    """A copy of `source` at `target` with these configs, the weights unchanged: written by the
    sandboxed child (h5py opens the source there), into a folder of its own, then moved here."""
    _write({"op": "write-repaired", "model_config": model_config, "training_config": training_config}, [source], target)


def assemble(model_config: Any, weights: Path, target: Path) -> None:
    """A model file from an architecture and a weights file a cell exported (harness migrate's
    bridge): HDF5 for a Keras 2 save_weights file (.h5 target), a .keras archive for Keras 3's."""
    _write({"op": "assemble", "model_config": model_config, "format": "h5" if target.suffix == ".h5" else "keras"}, [weights], target)


def _write(request: dict[str, Any], files: Sequence[Path], target: Path) -> None:
    import shutil
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-write-", dir=target.parent) as folder:
        out = Path(folder)
        out.chmod(0o777)  # the sandbox's user writes it (the same user, or root mapped in a user namespace)
        done = run_child(dict(request, name=f"written{target.suffix}"), files, READER_START + READER_TIMEOUT * 4, out)
        _answer(done, "the file")
        written = out / f"written{target.suffix}"
        if written.is_symlink() or not written.is_file():
            raise ValueError("the sandbox wrote no file")
        target.unlink(missing_ok=True)
        shutil.move(str(written), target)


def _answer(done: Any, what: str) -> dict[str, Any]:
    """The child's one JSON answer, bounded and checked to be an object, or ValueError saying why there is none."""
    line = done.stdout.strip().splitlines()[:1]
    if not line or len(line[0]) > MAX_CONFIG_ANSWER:
        raise ValueError(f"{what} could not be read in the sandbox: {_why_no_answer(done)}")
    try:
        answer = json.loads(line[0])
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{what}: the sandbox's answer is no JSON ({visible(str(exc))[:200]})") from None
    if not isinstance(answer, dict):
        raise ValueError(f"{what}: the sandbox's answer is no object")
    if answer.get("error"):
        raise ValueError(visible(str(answer["error"]))[:500])
    return answer


def _why_no_answer(done: Any) -> str:
    if done.timed_out:
        return "inspection did not finish in time (the reader was stopped)"
    if done.returncode in (-signal.SIGALRM, 128 + signal.SIGALRM):  # bubblewrap passes its child's signal on as 128+N
        return f"inspection did not finish in {int(READER_TIMEOUT)} s (the reader was stopped)"
    if done.returncode < 0:
        return f"the reader was killed by signal {-done.returncode} (a crash in the file's parser, or out of memory)"
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return f"the reader ended with exit code {done.returncode}" + (f": {visible(tail[-1])[:300]}" if tail else "")


def _checked(info: Any) -> dict[str, Any]:
    """A reader's answer as the harness keeps it (schema.READER_ANSWER), or ValueError."""
    from .schema import READER_ANSWER

    checked: dict[str, Any] = READER_ANSWER(info, "answer")
    return checked


def _library_sites() -> list[Path]:
    """The folders h5py and numpy are installed in (site-packages), found without importing them."""
    sites = []
    for name in ("h5py", "numpy"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(f"{name} is not installed beside harness (pip install harness brings it); inspection needs it")
        site = Path(next(iter(spec.submodule_search_locations))).resolve().parent
        if site not in sites:
            sites.append(site)
    return sites


