"""Static facts about a model file, read with h5py and zipfile: no TensorFlow, no code run.

The format is told by content, not by name (TF 2.12 wrote HDF5 under a `.keras` name).
A file that is no model at all is a usage error; a model file that is damaged is a fact
(`problems`), reported as `corrupt-file` without building any environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UsageError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
# Serialization helpers that look like objects in a config but are no classes of the model.
_INTERNAL = (
    "__keras_tensor__",
    "__tensor__",
    "__numpy__",
    "__tuple__",
    "__typespec__",
    "__bytes__",
    "__ellipsis__",
    "__slice__",
    "__lambda__",
    "TensorShape",
    "DTypePolicy",
    "FloatDTypePolicy",
    "function",
)


@lru_cache(maxsize=1)
def keras_builtins() -> frozenset[str]:
    text = resources.files("harness").joinpath("keras_builtins.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


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
        return self.code > 0 or any(c.kind == "lambda" for c in self.classes)

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
MAX_JSON_BYTES = 256 << 20  # a config.json or metadata.json inside a .keras archive
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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inspect_model(path: str | Path) -> ModelInfo:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such model file")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _inspect_savedmodel(path)
        if (path / "config.json").is_file():  # Keras >= 3.4, model.save(folder, zipped=False)
            return _inspect_keras_dir(path)
        partial = _partial_folder(path)
        if partial is not None:
            return partial
        raise UsageError(
            f"{path}: is a folder but no model (no saved_model.pb, no config.json of an unzipped .keras); "
            "pass a .h5/.keras file, a SavedModel folder or an unzipped .keras folder"
        )
    size = regular_file(path, "model file", MAX_MODEL_BYTES)
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEAD_BYTES)
        sha256 = _file_sha256(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the model file ({exc.strerror})") from None
    base: dict[str, Any] = {"path": str(path.resolve()), "name": path.name, "sha256": sha256, "size": size}
    if _hdf5_offset(data) is not None:
        return _remembered(base, lambda: _inspect_hdf5(path, data, base))
    if data.startswith(ZIP_SIGNATURE):
        return _remembered(base, lambda: _inspect_zip(path, base))
    if path.name.endswith(".json") and _looks_like_text(data[:4096]):
        manifest = _weights_manifest(data)
        if manifest is not None:
            return ModelInfo(**base, format="weights-json", kind="weights", keras_version=None, classes=())
    what = "an empty file" if not data else "text" if _looks_like_text(data[:4096]) else "unrecognised bytes"
    raise UsageError(f"{path}: not a model file ({what}: no HDF5 signature, not a .keras zip, not a SavedModel folder)")


def _remembered(base: dict[str, Any], inspect: Callable[[], ModelInfo]) -> ModelInfo:
    """What an inspection of these bytes under this path found, kept (memo.py) by the file's
    sha256, hashed just now, and the inspector's own source: a re-run of an unchanged file
    skips h5py's import and the config walk."""
    from .memo import remember

    return remember("inspected", (base["sha256"], base["path"]), ("modelfile.py", "keras_builtins.txt"), inspect, asdict, model_info)


def model_info(data: dict[str, Any]) -> ModelInfo:
    """A ModelInfo from its asdict form."""
    fields = {k: v for k, v in data.items() if k in ModelInfo.__dataclass_fields__}
    fields["classes"] = tuple(ClassRef(**c) for c in fields.get("classes") or ())
    for key in ("problems", "risks", "doubts"):
        fields[key] = tuple(fields.get(key) or ())
    return ModelInfo(**fields)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _hdf5_offset(data: bytes) -> int | None:
    """HDF5 puts its signature at 0, 512, 1024, 2048 ... (after an optional user block)."""
    offset = 0
    while offset + 8 <= len(data) and offset <= 1 << 20:
        if data[offset : offset + 8] == HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def _hdf5_stored_eof(data: bytes, offset: int) -> int | None:
    """The end-of-file address the superblock records (versions 0-3)."""
    try:
        version = data[offset + 8]
        if version in (0, 1):
            size_of_offsets = data[offset + 13]
            start = offset + 24 + (4 if version == 1 else 0) + 2 * size_of_offsets
        elif version in (2, 3):
            size_of_offsets = data[offset + 9]
            start = offset + 12 + 2 * size_of_offsets
        else:
            return None
        fmt = {4: "<I", 8: "<Q"}.get(size_of_offsets)
        return struct.unpack_from(fmt, data, start)[0] + offset if fmt else None
    except (IndexError, struct.error):
        return None


def _inspect_hdf5(path: Path, data: bytes, base: dict[str, Any]) -> ModelInfo:
    import h5py  # reads metadata only; no Keras code runs

    problems = []
    offset = _hdf5_offset(data) or 0
    stored = _hdf5_stored_eof(data, offset)
    if stored is not None and stored > base["size"]:
        problems.append(f"truncated HDF5 file: {base['size']} bytes on disk, the superblock records {stored}")
    attrs: dict[str, Any] = {}
    weights: dict[str, list[str]] | None = None
    weights_only = False
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _text(v) for k, v in f.attrs.items()}
            # save_weights: Keras 2 writes layer_names at the root, Keras 3 (.weights.h5) a layers/ or vars/ group
            weights_only = "layer_names" in f.attrs or (
                not attrs and any(g in f for g in ("layers", "vars", "_layer_checkpoint_dependencies"))
            )
            if "model_weights" not in f and "model_config" in attrs:
                problems.append("no model_weights group: the file holds a config but no weights")
            elif "model_weights" in f:
                weights, missing = _h5_weights(f["model_weights"])
                problems += [f"layer '{layer}' lists weight '{name}' that the file does not hold" for layer, name in missing]
    except OSError as exc:
        if not problems:
            problems.append(f"HDF5 library cannot open the file: {exc}")
    info = dict(base, format="h5", keras_version=attrs.get("keras_version"), backend=attrs.get("backend"))
    if not problems and "model_config" not in attrs and weights_only:
        return ModelInfo(**info, kind="weights")
    if not attrs and not problems:
        problems.append("HDF5 file without Keras attributes (no model_config): not a saved Keras model")
    config = _json(attrs.get("model_config"), "model_config", problems)
    doubts = _weights_match_config(list(weights), top_level_layers(config)) if weights is not None and isinstance(config, dict) else []
    training = _json(attrs.get("training_config"), "training_config", problems)
    return _with_config(info, config, training, problems, doubts=doubts)


def _inspect_zip(path: Path, base: dict[str, Any]) -> ModelInfo:
    problems: list[str] = []
    try:
        with zipfile.ZipFile(path) as z:
            declared = sum(i.file_size for i in z.infolist())
            if declared > MAX_MODEL_BYTES:
                raise UsageError(f"{path}: the archive declares {declared} bytes uncompressed, more than any model ({MAX_MODEL_BYTES})")
            too_big = [i.filename for i in z.infolist() if i.filename in ("metadata.json", "config.json") and i.file_size > MAX_JSON_BYTES]
            if too_big:
                raise UsageError(f"{path}: {too_big[0]} declares more than {MAX_JSON_BYTES} bytes; no Keras config is that large")
            bad = z.testzip()
            if bad:
                problems.append(f"bad CRC in zip member {bad}")
            return _inspect_keras_v3(
                dict(base, format="keras"),
                ".keras archive",
                set(z.namelist()),
                lambda name: _json(z.read(name).decode("utf-8", "replace"), name, problems),
                lambda: z.read("model.weights.h5"),
                problems,
                readable=not bad,
            )
    except zipfile.BadZipFile as exc:
        problems.append(f"damaged zip archive: {exc}")
    return _with_config(dict(base, format="keras", keras_version=None, backend=None), None, None, problems)


def _inspect_keras_dir(path: Path) -> ModelInfo:
    """An unzipped .keras folder (Keras >= 3.4, save(folder, zipped=False)): the archive's members as files."""
    problems: list[str] = []
    sha256, size = content_hash(path)

    def read(name: str) -> Any:
        regular_file(path / name, "JSON file", MAX_JSON_BYTES)
        return _json((path / name).read_text("utf-8", "replace"), name, problems)

    base = dict(path=str(path.resolve()), name=path.name, sha256=sha256, size=size, format="keras-dir")
    names = {p.name for p in path.iterdir() if p.is_file()}
    return _inspect_keras_v3(base, "unzipped .keras folder", names, read, lambda: str(path / "model.weights.h5"), problems)


def _inspect_keras_v3(
    base: dict[str, Any],
    holder: str,
    names: set[str],
    read: Callable[[str], Any],
    weights: Callable[[], bytes | str],
    problems: list[str],
    readable: bool = True,
) -> ModelInfo:
    """A Keras v3 layout, zipped or not: its members checked, its metadata and config read."""
    for needed in ("metadata.json", "config.json"):
        if needed not in names:
            problems.append(f"{holder} has no {needed}")
    if not names & {"model.weights.h5", "model.weights.npz"}:
        problems.append(f"{holder} has no model.weights.h5")
    metadata = read("metadata.json") if "metadata.json" in names and readable else None
    config = read("config.json") if "config.json" in names and readable else None
    doubts: list[str] = []
    if "model.weights.h5" in names and readable and isinstance(config, dict):
        doubts = _keras3_weights_match_config(weights(), top_level_layers(config), config.get("class_name") == "Sequential")
    about = metadata if isinstance(metadata, dict) else {}
    info = dict(base, keras_version=about.get("keras_version"), backend=about.get("backend"))
    training = config.get("compile_config") if isinstance(config, dict) else None
    return _with_config(info, config, training, problems, doubts=doubts)


def _weights_manifest(head: bytes) -> dict[str, Any] | None:
    """A sharded-weights manifest (Keras 3 save_weights(..., max_shard_size=...) writes *.weights.json)."""
    try:
        data = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("weight_map"), dict) else None


ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "manifest.ocdbt", "_METADATA", "_sharding")


def _partial_folder(path: Path) -> ModelInfo | None:
    """A folder of weights or training state, not a model: a TF checkpoint or an Orbax checkpoint."""
    entries = {p.name for p in path.iterdir()}
    kind = fmt = None
    if any(n.endswith(".index") for n in entries) and ("checkpoint" in entries or any(".data-" in n for n in entries)):
        kind, fmt = "weights", "tf-checkpoint"
    else:
        children = [path, *(p for p in path.iterdir() if p.is_dir())]
        if any((child / marker).exists() for child in children[:64] for marker in ORBAX_MARKERS):
            kind, fmt = "checkpoint", "orbax"
    if kind is None:
        return None
    sha256, size = content_hash(path)
    return ModelInfo(path=str(path.resolve()), name=path.name, sha256=sha256, size=size, format=fmt, kind=kind)  # type: ignore[arg-type]


def top_level_layers(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, class) of a Functional/Sequential model's own layers, as its config lists them."""
    layers = (config.get("config") or {}).get("layers") if isinstance(config.get("config"), dict) else None
    found = []
    for layer in layers or []:
        if isinstance(layer, dict):
            name = layer.get("name") or (layer.get("config") or {}).get("name")
            if name:
                found.append((str(name), str(layer.get("class_name"))))
    return found


def _h5_weights(group: Any) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """{layer: weight names} of a legacy H5's model_weights, and the listed weights that are absent."""
    layers = {}
    missing = []
    for layer in (_text(n) for n in group.attrs.get("layer_names", [])):
        names = [_text(w) for w in group[layer].attrs.get("weight_names", [])] if layer in group else []
        layers[layer] = names
        for name in names:
            if layer not in group or name not in group[layer]:
                missing.append((layer, name))
    return layers, missing


def _weights_match_config(weight_layers: list[str], config_layers: list[tuple[str, str]]) -> list[str]:
    if not config_layers:
        return []  # a subclassed model: no layer list to compare with
    names = [name for name, _ in config_layers]
    extra = [name for name in weight_layers if name not in names]
    # A Sequential's config lists its InputLayer, which has no weight entry (seen: TF 2.15, 2.21).
    absent = [name for name, kind in config_layers if name not in weight_layers and kind != "InputLayer"]
    problems = [f"weights for layer '{name}', which the config does not have" for name in extra]
    problems += [f"config layer '{name}' has no entry in model_weights" for name in absent]
    return problems


def _keras3_weights_match_config(source: bytes | str, config_layers: list[tuple[str, str]], sequential: bool) -> list[str]:
    """Keras 3 names weight groups by object path, not layer name: compare the counts."""
    import io

    import h5py

    try:
        with h5py.File(io.BytesIO(source) if isinstance(source, bytes) else source, "r") as f:
            # Keras 3 writes layers/; Keras 2.13-2.15's .keras writes _layer_checkpoint_dependencies/ (seen: TF 2.13.1)
            group = next((f[g] for g in ("layers", "_layer_checkpoint_dependencies") if g in f), None)
            held = len(group) if group is not None else 0
    except OSError as exc:
        return [f"model.weights.h5 cannot be opened: {exc}"]
    # Functional models keep a group for each InputLayer, Sequential ones do not (seen: Keras 3.15).
    expected = len([kind for _, kind in config_layers if kind != "InputLayer"]) if sequential else len(config_layers)
    if config_layers and held != expected:
        return [f"model.weights.h5 holds {held} layers, the config lists {expected}"]
    return []


def content_hash(path: Path) -> tuple[str, int]:
    """(sha256, size) of a model: of a file's bytes, or of a folder's relative paths and contents in order."""
    digest = hashlib.sha256()
    if not path.is_dir():
        return _file_sha256(path), path.stat().st_size
    size = 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:  # streamed: a SavedModel's variables can be large
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return digest.hexdigest(), size


def _inspect_savedmodel(path: Path) -> ModelInfo:
    pb = path / "saved_model.pb"
    sha256, size = content_hash(path)
    problems = [] if pb.stat().st_size else ["saved_model.pb is empty"]
    if not (path / "variables").is_dir():
        problems.append("SavedModel has no variables/ folder")
    info: dict[str, Any] = dict(path=str(path.resolve()), name=path.name, sha256=sha256, size=size, format="savedmodel")
    meta = path / "keras_metadata.pb"
    classes: list[ClassRef] = []
    training = None
    keras_version = None
    if meta.is_file():
        try:
            nodes = saved_metadata_nodes(meta.read_bytes())
        except ValueError as exc:
            return ModelInfo(**info, problems=(*problems, f"keras_metadata.pb cannot be read: {exc}"))
    else:
        # Before TF 2.5 the Keras metadata lived only inside saved_model.pb (one JSON string per
        # object); a plain tf.saved_model.save has none: then there are no Keras objects to list.
        nodes = pb_metadata_nodes(pb)
        if not nodes:
            return ModelInfo(**info, problems=tuple(problems))
    for node_path, metadata in nodes:
        # One node per object: each layer, nested ones included, is its own node with its config.
        kind = _classify(str(metadata.get("class_name")), None) if metadata.get("class_name") else None
        if kind and not str(metadata["class_name"]).startswith("__"):
            classes.append(ClassRef(str(metadata["class_name"]), kind, node_path))
        if node_path == "root":
            training = metadata.get("training_config")
            keras_version = metadata.get("keras_version")
    return _with_config(dict(info, keras_version=keras_version), None, training, problems, classes)


def saved_metadata_nodes(blob: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(node_path, metadata JSON) of each node of a keras_metadata.pb (SavedMetadata proto).

    A minimal protobuf reader: the message holds repeated nodes, each with a path string
    ("root", "root.layer-1") and a JSON metadata string; fields are told apart by content,
    so no field numbering is assumed.
    """
    nodes = []
    for _, node in _fields(blob):
        if not isinstance(node, bytes):
            continue
        node_path, metadata = None, None
        for _, value in _fields(node):
            if not isinstance(value, bytes):
                continue
            text = value.decode("utf-8", "replace")
            if text.startswith("{"):
                try:
                    metadata = json.loads(text)
                except json.JSONDecodeError:
                    metadata = None
            elif text == "root" or text.startswith("root."):
                node_path = text
        if node_path is not None and isinstance(metadata, dict):
            nodes.append((node_path, metadata))
    return nodes


MAX_PB_SCAN = 512 << 20  # saved_model.pb read for Keras metadata; graphs with huge constants are cut here
_METADATA_START = b'{"class_name": "'


def pb_metadata_nodes(pb: Path) -> list[tuple[str, dict[str, Any]]]:
    """(node path, metadata) of the Keras objects in a saved_model.pb written before TF 2.5.

    Each object's metadata is a protobuf string field holding JSON. Rather than decode the
    whole graph, find each JSON start and check that the bytes before it are the varint
    length of a string that parses: a match that is not a whole field is skipped. The node
    holding keras_version and model_config (or the first with keras_version) is the root.
    """
    with open(pb, "rb") as handle:
        blob = handle.read(MAX_PB_SCAN)
    found: list[dict[str, Any]] = []
    start = blob.find(_METADATA_START)
    while start != -1 and len(found) < 100_000:
        for width in range(1, 6):
            if start - width < 0:
                break
            try:
                length, end = _varint(blob, start - width)
            except ValueError:
                continue
            if end != start or start + length > len(blob):
                continue
            try:
                data = json.loads(blob[start : start + length].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(data, dict):
                found.append(data)
            break
        start = blob.find(_METADATA_START, start + 1)
    root = next((d for d in found if "keras_version" in d and "model_config" in d), None) or next(
        (d for d in found if "keras_version" in d), None
    )
    return [("root" if d is root else f"root.object-{i}", d) for i, d in enumerate(found)]


def _fields(blob: bytes) -> Iterator[tuple[int, int | bytes]]:
    i = 0
    while i < len(blob):
        key, i = _varint(blob, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(blob, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(blob, i)
            if i + length > len(blob):
                raise ValueError("a field runs past the end (truncated file?)")
            yield number, blob[i : i + length]
            i += length
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"unexpected wire type {wire}")


def _varint(blob: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(blob):
            raise ValueError("truncated varint")
        byte = blob[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _json(text: Any, what: str, problems: list[str]) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{what} is not valid JSON ({exc.msg} at char {exc.pos})")
        return None


def _with_config(
    info: dict[str, Any],
    config: Any,
    training: Any,
    problems: list[str],
    classes: list[ClassRef] | None = None,
    doubts: list[str] | None = None,
) -> ModelInfo:
    classes = list(classes or []) + (list(walk_classes(config)) if config is not None else [])
    loss = metrics = optimizer = None
    if isinstance(training, dict):
        loss, metrics = training.get("loss"), training.get("metrics")
        opt = training.get("optimizer_config") or training.get("optimizer")
        optimizer = opt.get("class_name") if isinstance(opt, dict) else opt
        for where, value in (("loss", loss), ("metrics", metrics)):
            for name in _function_names(value):
                classes.append(ClassRef(name, _classify(name, None), where))
    code = count_code(config) + count_code(training)
    return ModelInfo(
        **info,
        classes=tuple(classes),
        loss=loss,
        metrics=metrics,
        optimizer=optimizer,
        problems=tuple(problems),
        risks=_risks(classes, code),
        code=code,
        doubts=tuple(doubts or ()),
    )


def count_code(node: Any, depth: int = 0) -> int:
    """Functions stored by value in a config: Keras 2 marshals a lambda's bytecode
    (`function_type: lambda`, also for `output_shape`), Keras 3 writes `__lambda__`."""
    if depth > 200:
        return 0
    found = 0
    if isinstance(node, dict):
        if node.get("class_name") == "__lambda__":
            found += 1
        found += sum(1 for key in ("function_type", "output_shape_type") if node.get(key) == "lambda")
        found += sum(count_code(v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
    elif isinstance(node, list):
        found += sum(count_code(v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return found


def walk_classes(node: Any, where: str = "model") -> Iterator[ClassRef]:
    """Every serialized object in a config, nested models and wrappers included."""
    if isinstance(node, dict):
        name = node.get("class_name")
        if isinstance(name, str) and "config" in node and not name.startswith("__") and name not in _INTERNAL:
            yield ClassRef(name, _classify(name, node.get("module")), where, node.get("module"))
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from walk_classes(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_classes(value, f"{where}[{i}]")


def _function_names(value: Any) -> Iterator[str]:
    """Loss and metric names given as strings (a custom function is saved by name)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _function_names(item)
    elif isinstance(value, dict):
        if "class_name" in value:
            inner = value.get("config")
            if value["class_name"] == "function" and isinstance(inner, str):
                yield inner
            else:
                yield value["class_name"]
        else:
            for item in value.values():
                yield from _function_names(item)


def _classify(name: str, module: str | None) -> str:
    package, _, short = name.rpartition(">")
    if package == "Addons":
        return "addons"
    if short == "Lambda":
        return "lambda"
    if module and module.split(".")[0] in ("keras", "tf_keras", "tensorflow"):
        return "builtin"
    return "builtin" if short in keras_builtins() and package in ("", "Custom", "keras") else "custom"


def _risks(classes: list[ClassRef], code: int = 0) -> tuple[str, ...]:
    lambdas = [c.where for c in classes if c.kind == "lambda"]
    if lambdas:
        return (
            f"{len(lambdas)} Lambda layer(s) ({', '.join(lambdas[:3])}): Python code stored in the file runs when it is loaded; load it only in a sandbox",
        )
    if code:
        return (f"{code} function(s) stored as Python code: it runs when the file is loaded; load it only in a sandbox",)
    return ()


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
