"""Static inspection of hostile and damaged model files: the reader runs in a sandboxed child
process (harness/modelread.py via harness/inspection.py), so nothing a file holds can crash,
hang or exhaust the harness, or bring a host file's content into its output.

The crafted files are in tests/crafted.py (links out of the file, zip bombs, JSON past any
stack, types where text belongs); the fuzz tests mutate real files saved by TensorFlow.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from crafted import CANARY, CRAFTED, MODELS, host_secret, remove_deep

from harness import inspection
from harness.errors import UsageError
from harness.inspection import Pending, inspect_files, inspect_model
from harness.modelfile import describe

# What each crafted file must come to: corrupt (a certain finding), unread (not read within the
# limits: the cells still run), doubt (said, the cells run), clean, or a one-line usage error.
EXPECTED = {
    "external links": "doubt",
    "link to a FIFO": "doubt",
    "int array keras_version": "clean",
    "int keras_version": "clean",
    "config 990 deep": "unread",
    "config 100000 deep": "unread",
    "class_name not text": "clean",
    "lone surrogate": "clean",
    "config a list": "clean",
    "training_config not JSON": "corrupt",
    "keras metadata int version": "clean",
    "keras config 990 deep": "unread",
    "overlapping zip members": "corrupt",
    "member declaring 4 GiB": "corrupt",
    "config inflating to 250 MB": "unread",
    "SavedModel 1500 folders deep": "usage",
    "SavedModel of links": "doubt",
}


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return host_secret(tmp_path_factory.mktemp("host"))


def outcome(path: Path) -> tuple[str, str]:
    """(what inspection made of `path`, everything it wrote about it as text)."""
    try:
        [info] = inspect_files([path])
    except UsageError as exc:
        assert "\n" not in str(exc)  # one line
        return "usage", str(exc)
    text = json.dumps(describe(info), ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate left: every writer can write it
    if info.problems:
        return "corrupt", text
    if info.unread:
        assert info.carries_code  # not known what it holds: loaded in a sandbox of its own, refused unsandboxed
        return "unread", text
    return ("doubt" if info.doubts else "clean"), text


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_file_is_a_finding_never_a_crash_a_hang_or_a_leak(name, tmp_path, secret):
    assert set(EXPECTED) == set(CRAFTED)
    path = CRAFTED[name](tmp_path, secret)
    try:
        found, text = outcome(path)
    finally:
        if path.is_dir():
            remove_deep(path)  # pytest's own cleanup recurses once per level: 1,500 levels are too many for it
    assert found == EXPECTED[name], text
    assert CANARY not in text and "root:" not in text


def test_harness_inspect_on_crafted_files_exits_with_a_verdict(tmp_path, secret):
    for i in range(len(CRAFTED)):
        (tmp_path / str(i)).mkdir()
    paths = [CRAFTED[name](tmp_path / str(i), secret) for i, name in enumerate(sorted(CRAFTED)) if EXPECTED[name] != "usage"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", "inspect", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache")},
    )
    for path in paths:
        if path.is_dir():
            remove_deep(path)
    assert done.returncode == 1, done.stderr  # some are corrupt: a verdict, not 70
    assert CANARY not in done.stdout + done.stderr
    assert "\x1b" not in done.stdout  # no escape sequence of a file's reaches the terminal (not a tty: no styles either)


def test_the_harness_process_never_parses_a_model(tmp_path):
    """h5py is imported by the reader only: the harness hashes and reads signatures."""
    code = (
        "import sys; from harness.inspection import inspect_files; "
        f"infos = inspect_files({[str(p) for p in sorted(MODELS.iterdir())]!r}); "
        "assert all(i.classes for i in infos); "
        "print(sorted(m for m in ('h5py', 'numpy', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "HARNESS_CACHE_DIR": str(tmp_path)}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_reader_that_cannot_finish_leaves_only_its_file_unread(tmp_path, monkeypatch):
    """One reader for all; when it dies (here: it blocks on a FIFO and is stopped), the files it
    did not answer are read again one per reader, and only the blocking one stays unread."""
    monkeypatch.setattr(inspection, "READER_TIMEOUT", 1.0)
    monkeypatch.setattr(inspection, "READER_START", 3.0)
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    dense, residual = (inspection._identify(MODELS / n) for n in ("dense.h5", "residual_block.h5"))
    assert isinstance(dense, Pending) and isinstance(residual, Pending)
    blocking = Pending({"path": str(fifo), "name": "fifo.h5", "sha256": "0" * 64, "size": 4096}, "hdf5", fifo)
    answers = inspection.read_models([dense, blocking, residual])
    assert answers[0][0]["classes"] and answers[2][0]["classes"]
    assert answers[1][0]["unread"] == ["inspection did not finish in 1 s (the reader was stopped)"]
    assert [keep for _, keep in answers] == [True, False, True]  # a stopped reader's "unread" is asked again next time


def test_a_reader_out_of_memory_is_unread_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(inspection, "READER_MEMORY", 64 << 20)  # not even numpy imports in that
    info = inspect_model(MODELS / "dense.h5")
    assert info.unread and info.carries_code and not info.problems
    assert "exit code" in info.unread[0] or "signal" in info.unread[0]
    monkeypatch.undo()


# --------------------------------------------------------------------------- fuzz


def _mutants(count: int, seed: int, folder: Path) -> list[Path]:
    """`count` mutated copies of the real example files: bytes flipped, cut, doubled or inserted."""
    rng = random.Random(seed)
    sources = sorted(MODELS.iterdir())
    made = []
    for n in range(count):
        source = sources[n % len(sources)]
        data = bytearray(source.read_bytes())
        for _ in range(rng.choice((1, 1, 2, 4, 16))):
            how = rng.random()
            at = rng.randrange(len(data))
            if how < 0.6:
                data[at] = rng.randrange(256)
            elif how < 0.7:
                data = data[: max(at, 8)]
            elif how < 0.85:
                width = rng.randrange(1, 64)
                data[at:at] = data[at : at + width]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        path = folder / f"{n:04d}{source.suffix}"
        path.write_bytes(bytes(data))
        made.append(path)
    return made


def _fuzz(paths: list[Path]) -> dict[str, int]:
    seen: dict[str, int] = {}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for start in range(0, len(paths), 50):
        batch = paths[start : start + 50]
        good = []
        for path in batch:  # what the harness itself reads (signature, hash) first: no model is a usage error
            try:
                inspection._identify(path)
                good.append(path)
            except UsageError as exc:
                assert "\n" not in str(exc)
                seen["usage"] = seen.get("usage", 0) + 1
        for info in inspect_files(good):
            text = json.dumps(describe(info), ensure_ascii=False)
            text.encode("utf-8")
            kind = "corrupt" if info.problems else "unread" if info.unread else "doubt" if info.doubts else "clean"
            seen[kind] = seen.get(kind, 0) + 1
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 200_000, f"the harness process grew by {grown} KiB reading damaged files"  # the reader's memory is its own
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < inspection.READER_MEMORY >> 10
    return seen


@pytest.fixture
def quick_reader(tmp_path, monkeypatch):
    """A reader stopped after 5 s per file (a mutant can send the HDF5 library into a loop), its own cache."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(inspection, "READER_TIMEOUT", 5.0)


@pytest.mark.usefixtures("quick_reader")
def test_fuzz_mutated_real_files_a_few(tmp_path):
    seen = _fuzz(_mutants(40, 7, tmp_path))
    assert sum(seen.values()) == 40
    assert seen.get("corrupt", 0) > 0 and seen.get("clean", 0) + seen.get("doubt", 0) > 0  # the mutations did something


@pytest.mark.fuzz
@pytest.mark.usefixtures("quick_reader")
def test_fuzz_mutated_real_files(tmp_path):
    """500 mutants of the seven example files (HDF5 and .keras): every one a finding or a usage error."""
    seen = _fuzz(_mutants(500, 2024, tmp_path))
    assert sum(seen.values()) == 500
    print(f"fuzz: {seen}")


def _savedmodel(folder: Path, blob: bytes, pb: bytes = b"\x08\x01") -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(pb)
    (folder / "keras_metadata.pb").write_bytes(blob)
    return folder


@pytest.mark.fuzz
@pytest.mark.usefixtures("quick_reader")
def test_fuzz_savedmodel_metadata(tmp_path):
    """keras_metadata.pb and saved_model.pb bytes mutated: the protobuf reader never fails the harness."""
    from test_modelfile import _field, _varint

    nodes = [("root", {"class_name": "Functional", "keras_version": "2.15.0"}), ("root.layer-1", {"class_name": "Dense"})]
    blob = b"".join(
        _field(1, _varint(2 << 3) + _varint(i) + _field(3, p.encode()) + _field(5, json.dumps(m).encode())) for i, (p, m) in enumerate(nodes)
    )
    rng = random.Random(7)
    folders = []
    for n in range(120):
        data = bytearray(blob)
        for _ in range(rng.choice((1, 3, 8))):
            data[rng.randrange(len(data))] = rng.randrange(256)
        pb = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) + b'\x0a\x10{"class_name": "X"}'
        folders.append(_savedmodel(tmp_path / f"sm{n}", bytes(data[: rng.randrange(1, len(data) + 1)]), pb))
    for info in inspect_files(folders):
        json.dumps(describe(info), ensure_ascii=False).encode("utf-8")


def test_a_keras_archive_is_read_in_place_not_inflated_into_memory(tmp_path):
    """Keras stores model.weights.h5 uncompressed: h5py reads it from the archive where it is."""
    info = inspect_model(MODELS / "residual_block_keras3.keras")
    assert zipfile.ZipFile(MODELS / "residual_block_keras3.keras").getinfo("model.weights.h5").compress_type == zipfile.ZIP_STORED
    assert info.names("custom") == ["ResidualBlock"] and not info.doubts


def test_tensorflow_only_content_is_flagged_before_any_cell_runs():
    """A TFOpLambda (tf.* calls Keras 2 recorded as layers) or a TFSMLayer loads on the tensorflow
    backend at most: said by the static reader, with the Lambda risk kept beside it."""
    from harness.modelread import class_ref, risks

    classes = [class_ref("TFOpLambda", "builtin", "tf.math.add"), class_ref("Dense", "builtin", "dense")]
    [said] = risks(classes)
    assert said.startswith("TensorFlow-only content: TFOpLambda") and "never Keras 3" in said
    both = risks([*classes, class_ref("lambda", "lambda", "lambda_1"), class_ref("TFSMLayer", "builtin", "tfsm")])
    assert len(both) == 3 and "Lambda layer" in both[0] and "TFSMLayer" in both[2]
    assert risks([class_ref("Dense", "builtin", "dense")]) == ()
