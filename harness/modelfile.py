"""Static facts about a model file: what a ModelInfo holds, and what the harness itself
reads of a file's bytes to tell its format (its signature) and identity (its sha256).

The file's structure (HDF5, .keras zips, SavedModel protobufs, configs) is read by
modelread.py in the inspection sandbox, never here (inspection.py starts it): the harness
only stats, hashes and looks at the first bytes. The format is told by content, not by
name (TF 2.12 wrote HDF5 under a `.keras` name). A file that is no model at all is a
usage error; a model file that is damaged is a fact (`problems`), reported as
`corrupt-file` without building any environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

# Defined beside the reader, which needs them in the sandbox without this module.
from .modelread import HDF5_SIGNATURE as HDF5_SIGNATURE
from .modelread import hdf5_offset as hdf5_offset
from .modelread import keras_builtins as keras_builtins

ZIP_SIGNATURE = b"PK\x03\x04"


@dataclass(frozen=True)
class ClassRef:
    name: str  # as written in the file: "ResidualBlock", "Addons>GroupNormalization"
    kind: str  # builtin | custom | addons | lambda
    where: str  # config path: "layers[1]", "loss", "layers[2].layer"
    module: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    sha256: str
    size: int
    format: str  # h5 | keras | keras-dir | savedmodel | weights-json | tf-checkpoint | orbax
    keras_version: str | None = None
    backend: str | None = None
    classes: tuple[ClassRef, ...] = ()
    loss: Any = None
    metrics: Any = None
    optimizer: str | None = None
    problems: tuple[str, ...] = ()  # integrity, certain (truncation, CRC, missing members): the file is corrupt
    risks: tuple[str, ...] = ()
    # Layouts that look damaged by a rule that does not hold for every release (TF 2.13's
    # .keras keeps weights under _layer_checkpoint_dependencies/): said, and the cells still run.
    doubts: tuple[str, ...] = ()
    code: int = 0  # places where the file stores Python code that runs when it loads
    # What inspection could not read within its limits (a reader that crashed or ran out of time
    # or memory, a config nested too deep): the file is not known to be damaged, and since what
    # it holds is not known, it is treated as carrying code (a sandbox of its own, the trust check).
    unread: tuple[str, ...] = ()
    # model: load_model can read it. weights: save_weights output (no architecture); checkpoint:
    # training state (Orbax). Neither is a model in any release: said statically, no cell built.
    kind: str = "model"

    @property
    def partial(self) -> bool:
        return self.kind != "model"

    @property
    def settled(self) -> bool:
        """Its outcome is the same in every environment and known without one."""
        return self.corrupt or self.partial

    @property
    def graph_only(self) -> bool:
        """A SavedModel with no Keras object in it (tf.saved_model.save, Keras 3's model.export):
        no load_model rebuilds a Keras model from it; its serving signature runs it."""
        return self.format == "savedmodel" and not self.classes and not self.keras_version and not self.problems

    @property
    def carries_code(self) -> bool:
        """Loading it runs code of the file's author (a Lambda, a function saved by value)."""
        return self.code > 0 or any(c.kind == "lambda" for c in self.classes) or bool(self.unread)

    @property
    def corrupt(self) -> bool:
        return bool(self.problems)

    def names(self, kind: str) -> list[str]:
        return sorted({c.name for c in self.classes if c.kind == kind})

    @property
    def keras_major(self) -> int | None:
        return int(self.keras_version.split(".")[0]) if self.keras_version and self.keras_version[0].isdigit() else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["custom"] = self.names("custom")
        data["addons"] = self.names("addons")
        data["lambdas"] = len([c for c in self.classes if c.kind == "lambda"])
        data["carries_code"] = self.carries_code
        return data


MAX_MODEL_BYTES = int(os.environ.get("HARNESS_MAX_MODEL_BYTES", 64 << 30))  # larger than any Keras model file
HEAD_BYTES = (1 << 20) + 4096  # where HDF5 signatures and superblocks can be


def regular_file(path: Path, what: str, limit: int) -> int:
    """The size of `path` if it is a regular file no larger than `limit`; else a one-line error.

    Checked with stat before anything opens it: a FIFO would block the open, a device
    such as /dev/zero never ends.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        raise UsageError(f"{path}: is {kind}, not a {what}; pass a file")
    if st.st_size > limit:
        raise UsageError(f"{path}: {st.st_size} bytes, larger than any {what} the harness accepts ({limit} bytes)")
    return st.st_size


def file_sha256(path: Path) -> str:
    """The sha256 of a regular file's bytes (paths.open_regular: no link, FIFO or device opened)."""
    from .paths import open_regular

    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_hash(path: Path) -> tuple[str, int]:
    """(sha256, size) of a model: of a file's bytes, or of a folder's relative paths and contents in
    order. A folder is walked bounded and without following links (paths.scan_tree): a link in it
    is hashed as its target text, never read through."""
    from .paths import scan_tree

    if not path.is_dir():
        return file_sha256(path), path.stat().st_size
    digest = hashlib.sha256()
    tree = scan_tree(path)
    size = 0
    for relative, _ in tree.files:
        digest.update(relative.encode("utf-8", "surrogateescape"))
        from .paths import open_regular

        with os.fdopen(open_regular(path / relative), "rb") as handle:  # streamed: a SavedModel's variables can be large
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    for link in tree.links:
        digest.update(b"\0link\0" + link.encode("utf-8", "surrogateescape") + b"\0" + os.readlink(path / link).encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), size


def looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def weights_manifest(head: bytes) -> dict[str, Any] | None:
    """A sharded-weights manifest (Keras 3 save_weights(..., max_shard_size=...) writes *.weights.json)."""
    try:
        data = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("weight_map"), dict) else None


ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "manifest.ocdbt", "_METADATA", "_sharding")


def folder_kind(names: set[str], subfolders: dict[str, set[str]]) -> str | None:
    """What a folder holds, by the names at its top (`names`: regular files and folders, no
    links) and in its first folders: savedmodel, keras-dir, tf-checkpoint, orbax, or None."""
    if "saved_model.pb" in names:
        return "savedmodel"
    if "config.json" in names:  # Keras >= 3.4, model.save(folder, zipped=False)
        return "keras-dir"
    if any(n.endswith(".index") for n in names) and ("checkpoint" in names or any(".data-" in n for n in names)):
        return "tf-checkpoint"
    held = [names, *list(subfolders.values())[:64]]
    if any(marker in entries for entries in held for marker in ORBAX_MARKERS):
        return "orbax"
    return None


def model_info(data: dict[str, Any]) -> ModelInfo:
    """A ModelInfo from its asdict form."""
    fields = {k: v for k, v in data.items() if k in ModelInfo.__dataclass_fields__}
    fields["classes"] = tuple(ClassRef(**c) for c in fields.get("classes") or ())
    for key in ("problems", "risks", "doubts", "unread"):
        fields[key] = tuple(fields.get(key) or ())
    return ModelInfo(**fields)


def partial_note(info: ModelInfo) -> str:
    """What a file that is not a whole model holds, and how to load it instead: one line."""
    if info.format == "weights-json":
        what = "a sharded-weights manifest (Keras 3 save_weights with max_shard_size)"
    elif info.format == "tf-checkpoint":
        what = "a TensorFlow checkpoint (save_weights in the TF format)"
    elif info.format == "orbax":
        return "an Orbax checkpoint (training state, no architecture): build the model in code and restore it with orbax-checkpoint; load_model cannot read it"
    else:
        what = "weights only (save_weights)"
    return f"{what}, no architecture: build the model in code, then model.load_weights() on this file; load_model cannot read it"


def readable(value: Any) -> str:
    """A compiled loss or metrics setting as a person reads it: names, per output where named."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "class_name" in value:  # a serialized object (Keras 3): its name, else its class
            config = value.get("config")
            name = config.get("name") if isinstance(config, dict) else config if isinstance(config, str) else None
            return str(name or value["class_name"])
        return ", ".join(f"{k}: {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value) or "—"
    return str(value)


def describe(info: ModelInfo) -> dict[str, Any]:
    """`harness inspect` output: the facts, without the per-object list's noise."""
    data = info.to_dict()
    data["classes"] = sorted({(c.name, c.kind) for c in info.classes})
    return data
