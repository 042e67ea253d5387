"""Hostile model files made byte by byte: what a static reader meets when someone crafts one.

Each builder writes a file (or folder) into a folder the test owns and returns its path.
They start from the real files in examples/models (saved by a real TensorFlow) and change
what an attacker would: links out of the file, zip layouts that inflate without end, JSON
nested past any parser's stack, types where text belongs, and host files to leak.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"
CANARY = "CANARY-d41d8cd98f00b204"  # a name that must never appear in anything the harness writes


def host_secret(folder: Path) -> Path:
    """An HDF5 file of the host's, readable only by its owner, whose names are the canary."""
    secret = folder / "host-secret.h5"
    with h5py.File(secret, "w") as f:
        f.create_group(CANARY)
        f.attrs[CANARY] = CANARY
        f.attrs["model_config"] = json.dumps({"class_name": CANARY, "config": {"layers": [{"class_name": CANARY, "config": {}}]}})
    secret.chmod(0o600)
    return secret


def _copy(name: str, target: Path) -> Path:
    target.write_bytes((MODELS / name).read_bytes())
    return target


def h5_external_links(folder: Path, secret: Path) -> Path:
    """dense.h5 with external links to a host file: at the root, as a layer's weights, as a layer."""
    path = _copy("dense.h5", folder / "external.h5")
    with h5py.File(path, "r+") as f:
        f["leak"] = h5py.ExternalLink(str(secret), "/")
        layer = f["model_weights"]["dense"]
        del layer["dense"]
        layer["dense"] = h5py.ExternalLink(str(secret), "/")
        f["model_weights"]["extra"] = h5py.ExternalLink(str(secret), f"/{CANARY}")
    return path


def h5_link_to_fifo(folder: Path) -> Path:
    """An external link to a FIFO: opening it would block forever."""
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    path = _copy("dense.h5", folder / "fifo-link.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights"]["dense"].attrs["weight_names"] = np.array([b"pipe/kernel:0"])
        f["model_weights"]["dense"]["pipe"] = h5py.ExternalLink(str(fifo), "/")
        f["blocked"] = h5py.ExternalLink(str(fifo), "/")
    return path


def h5_attribute(folder: Path, name: str, key: str, value: object) -> Path:
    """dense.h5 with one root attribute replaced (an int array as keras_version, say)."""
    path = _copy("dense.h5", folder / name)
    with h5py.File(path, "r+") as f:
        del f.attrs[key]
        f.attrs[key] = value
    return path


def h5_config(folder: Path, name: str, config: object | str) -> Path:
    """dense.h5 with its model_config replaced (text as given, or a value dumped to JSON)."""
    text = config if isinstance(config, str) else json.dumps(config)
    return h5_attribute(folder, name, "model_config", text)


def nested(depth: int) -> str:
    return '{"class_name": "Functional", "config": ' * depth + "{}" + "}" * depth


def keras_with(folder: Path, name: str, members: dict[str, bytes | str], compression: int = zipfile.ZIP_STORED) -> Path:
    """A .keras archive holding `members` (the real dense_keras3.keras's where not given)."""
    source = zipfile.ZipFile(MODELS / "dense_keras3.keras")
    path = folder / name
    with zipfile.ZipFile(path, "w", compression) as out:
        for member in ("metadata.json", "config.json", "model.weights.h5"):
            data = members.get(member, source.read(member))
            out.writestr(member, data)
        for member, data in members.items():
            if member not in ("metadata.json", "config.json", "model.weights.h5"):
                out.writestr(member, data)
    return path


def _local(name: bytes, method: int, crc: int, compressed: int, size: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, compressed, size, len(name), 0) + name


def _central(name: bytes, method: int, crc: int, compressed: int, size: int, offset: int) -> bytes:
    return (
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, compressed, size, len(name), 0, 0, 0, 0, 0, offset)
        + name
    )


def zip_bomb_overlapping(folder: Path, entries: int = 60, inflated: int = 256 << 20) -> Path:
    """`entries` central directory entries that all point at one deflated stream of `inflated` zero
    bytes (a 250 KB file declaring 15 GiB): testzip alone reads it `entries` times."""
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    body = b"".join(stream.compress(chunk) for _ in range(inflated >> 20)) + stream.flush()
    crc = 0
    for _ in range(inflated >> 20):
        crc = zlib.crc32(chunk, crc)
    name = b"model.weights.h5"
    local = _local(name, 8, crc, len(body), inflated) + body
    centrals = b""
    for i in range(entries):
        entry = name if i == 0 else f"m{i}.bin".encode()
        centrals += _central(entry, 8, crc, len(body), inflated, 0)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(centrals), len(local), 0)
    path = folder / "overlap.keras"
    path.write_bytes(local + centrals + end)
    return path


def zip_member_declaring(folder: Path, declared: int, member: str = "model.weights.h5") -> Path:
    """A .keras archive whose `member` is a small deflate stream declaring `declared` bytes
    (its local header and its central directory entry both say so)."""
    path = keras_with(folder, "declares.keras", {member: b"\0" * 1000}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + length]) == member.encode():
            struct.pack_into("<I", data, at + 24, declared)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def config_inflating_to(folder: Path, size: int) -> Path:
    """A .keras archive whose config.json is `size` bytes of `[{},{},...]`, deflated (~1000x smaller)."""
    items = ("{}," * (size // 3))[:-1]
    return keras_with(folder, "inflating.keras", {"config.json": "[" + items + "]"}, zipfile.ZIP_DEFLATED)


def savedmodel_deep(folder: Path, depth: int) -> Path:
    """A SavedModel folder with `depth` nested folders in its variables/."""
    root = folder / "deep_savedmodel"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"\x08\x01")
    here = root / "variables"
    for _ in range(depth):
        here = here / "d"
        here.mkdir()
    return root


def remove_deep(root: Path) -> None:
    """Remove a folder tree of any depth without recursion (shutil.rmtree recurses once per level)."""
    stack = [(root, False)]
    while stack:
        folder, emptied = stack.pop()
        if emptied:
            folder.rmdir()
            continue
        stack.append((folder, True))
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                stack.append((entry, False))
            else:
                entry.unlink()


def savedmodel_with_links(folder: Path, secret: Path) -> Path:
    """A SavedModel folder whose files are links to host files (/etc/shadow, a secret)."""
    root = folder / "linked_savedmodel"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"\x08\x01")
    (root / "variables" / "variables.index").symlink_to("/etc/shadow")
    (root / "keras_metadata.pb").symlink_to(secret)
    (root / "assets").symlink_to(secret.parent)
    return root


# name -> builder(folder, secret) for the crafted files every reader must survive
CRAFTED: dict[str, Callable[[Path, Path], Path]] = {
    "external links": lambda d, s: h5_external_links(d, s),
    "link to a FIFO": lambda d, s: h5_link_to_fifo(d),
    "int array keras_version": lambda d, s: h5_attribute(d, "intver.h5", "keras_version", np.array([2, 15])),
    "int keras_version": lambda d, s: h5_attribute(d, "int.h5", "keras_version", 3),
    "config 990 deep": lambda d, s: h5_config(d, "deep.h5", nested(990)),
    "config 100000 deep": lambda d, s: h5_config(d, "deeper.h5", nested(100_000)),
    "class_name not text": lambda d, s: h5_config(d, "types.h5", {"class_name": 7, "config": {"layers": [{"class_name": ["x"], "module": 3, "config": {}}]}}),
    "lone surrogate": lambda d, s: h5_config(d, "surrogate.h5", '{"class_name": "Functional", "config": {"layers": [{"class_name": "\\ud800X", "config": {}}]}}'),
    "config a list": lambda d, s: h5_config(d, "list.h5", [1, 2, 3]),
    "training_config not JSON": lambda d, s: h5_attribute(d, "training.h5", "training_config", np.array([1.5])),
    "keras metadata int version": lambda d, s: keras_with(d, "meta.keras", {"metadata.json": '{"keras_version": 3, "backend": [1]}'}),
    "keras config 990 deep": lambda d, s: keras_with(d, "deep.keras", {"config.json": nested(990)}),
    "overlapping zip members": lambda d, s: zip_bomb_overlapping(d),
    "member declaring 4 GiB": lambda d, s: zip_member_declaring(d, (4 << 30) - 1),
    "config inflating to 250 MB": lambda d, s: config_inflating_to(d, 250 << 20),
    "SavedModel 1500 folders deep": lambda d, s: savedmodel_deep(d, 1500),
    "SavedModel of links": lambda d, s: savedmodel_with_links(d, s),
}
