"""Where the harness keeps things between runs."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import HarnessError, UsageError


def cache_dir() -> Path:
    """Envs, locks and release lists: $HARNESS_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get("HARNESS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "harness"


MAX_NAME_BYTES = 255  # what Linux, macOS and Windows file systems allow for one name


def name_part(text: str, what: str = "name") -> str:
    """`text` as one file or folder name, unchanged, or a one-line error.

    The only way a name the harness did not choose (a model's file name, a cell id read
    from a document) becomes part of a path: it must name exactly one entry of the folder
    it is joined to, so no separator (`/`, and Windows' `\\`, where an artifact may be
    unpacked), no `.` or `..`, no NUL, and no longer than a file system allows.
    """
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        raise UsageError(f"{what} {text!r} cannot be a file name (empty, '.', '..', or it holds a path separator); rename it")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UsageError(f"{what} {text[:40]!r}...: longer than a file name may be ({MAX_NAME_BYTES} bytes); rename it")
    return text


def write_cache(path: Path, text: str) -> None:
    """A cache file written whole: a temporary of this process and thread beside it, then a
    rename, so writers of the same answer at once never leave half a file. OSError is the
    caller's (a cache that cannot be written is, for most, only slower)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a full disk leaves the previous version and a one-line error."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", errors="replace")  # text the harness could not clean is never a crash
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise HarnessError(f"{path}: cannot write it ({exc.strerror}); the previous version is kept: free space or pick another folder with -o") from None


# --------------------------------------------------------------------------- folders read from a model or a shard

MAX_TREE_ENTRIES = 100_000  # files and folders in a SavedModel or a shard folder; real ones hold tens
MAX_TREE_DEPTH = 64


class TreeTooLarge(UsageError):
    pass


@dataclass(frozen=True)
class Tree:
    """What a folder holds, read without following any link: regular files (relative path,
    size) and folders in walk order, and the links and special files that were left alone."""

    files: tuple[tuple[str, int], ...]
    folders: tuple[str, ...]
    links: tuple[str, ...]
    others: tuple[str, ...]  # FIFOs, sockets, devices


def scan_tree(root: Path, limit: int = MAX_TREE_ENTRIES, depth: int = MAX_TREE_DEPTH) -> Tree:
    """Walk `root` (itself not a link), iteratively and bounded; a link is listed, never followed."""
    if root.is_symlink() or not root.is_dir():
        raise UsageError(f"{root}: not a folder (a link to one is not followed)")
    files: list[tuple[str, int]] = []
    folders: list[str] = []
    links: list[str] = []
    others: list[str] = []
    pending = [("", 0)]
    seen = 0
    while pending:
        relative, level = pending.pop()
        try:
            entries = sorted(os.scandir(root / relative), key=lambda e: e.name)
        except OSError as exc:
            raise UsageError(f"{root / relative}: cannot read the folder ({exc.strerror})") from None
        for entry in entries:
            seen += 1
            if seen > limit:
                raise TreeTooLarge(f"{root}: more than {limit} entries; no model folder holds that many")
            path = f"{relative}/{entry.name}" if relative else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                others.append(path)
                continue
            if stat.S_ISLNK(info.st_mode):
                links.append(path)
            elif stat.S_ISDIR(info.st_mode):
                if level + 1 > depth:
                    raise TreeTooLarge(f"{root}: folders nested deeper than {depth}; no model folder is")
                folders.append(path)
                pending.append((path, level + 1))
            elif stat.S_ISREG(info.st_mode):
                files.append((path, info.st_size))
            else:
                others.append(path)
    files.sort(key=lambda file: file[0].split("/"))  # by parts, as pathlib sorts paths
    return Tree(tuple(files), tuple(sorted(folders)), tuple(sorted(links)), tuple(sorted(others)))


def below(root: Path, *parts: str) -> Path | None:
    """`root/part/part...` if each part is one name (name_part) and each step below `root` is a
    real folder, the last a regular file or folder, none of them a link; else None. For reading
    a folder someone else may have filled (a shard's artifact): its links are never followed."""
    path = root
    for part in parts:
        try:
            name_part(part)
        except UsageError:
            return None
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            return None
    return path


def open_regular(path: Path) -> int:
    """A descriptor for reading `path` if it is a regular file reached without a link at its end:
    a FIFO neither blocks nor opens, a device is refused, a link (even one swapped in after a
    check) is not followed. OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def copy_regular(source: Path, target: Path) -> None:
    """Copy one regular file (open_regular's rules) to a new file at `target` (an existing one,
    or a link there, is replaced, never written through)."""
    fd = open_regular(source)
    with os.fdopen(fd, "rb") as reader:
        target.unlink(missing_ok=True)
        with open(target, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


def copy_tree(source: Path, target: Path) -> Tree:
    """`source`'s folders and regular files copied to `target` (made new); links and special
    files are neither followed nor carried. Returns what was found, so a caller can say what
    it left out (tree.links, tree.others)."""
    tree = scan_tree(source)
    if target.is_symlink():
        target.unlink()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for folder in tree.folders:
        (target / folder).mkdir()
    for relative, _ in tree.files:
        copy_regular(source / relative, target / relative)
    return tree
