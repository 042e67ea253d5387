"""Folders and names the harness did not make (a model's SavedModel folder, a shard's artifact, a
model's file name): read bounded, never through a link, and joined to paths only as one name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.paths import TreeTooLarge, below, copy_regular, copy_tree, name_part, open_regular, scan_tree


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x.h5", "/abs/x.h5", "a\\b.h5", "a\0b", "x" * 256])
def test_a_name_that_could_name_another_place_is_refused(name):
    with pytest.raises(UsageError):
        name_part(name, "model name")


def test_a_plain_name_is_kept_as_it_is():
    assert name_part("dense.h5@py3.11-tensorflow2.15.1") == "dense.h5@py3.11-tensorflow2.15.1"
    assert name_part("m [x] \x1b.h5") == "m [x] \x1b.h5"  # odd, but one name: escaped where it is shown


def _folder_with_links(root: Path, secret: Path) -> Path:
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"pb")
    (root / "variables" / "variables.index").write_bytes(b"index")
    (root / "variables" / "leak").symlink_to(secret)
    (root / "assets").symlink_to(secret.parent)
    os.mkfifo(root / "pipe")
    return root


def test_a_tree_is_read_without_following_a_link(tmp_path):
    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("secret")
    tree = scan_tree(_folder_with_links(tmp_path / "sm", secret))
    assert tree.files == (("saved_model.pb", 2), ("variables/variables.index", 5))
    assert tree.links == ("assets", "variables/leak") and tree.others == ("pipe",) and tree.folders == ("variables",)


def test_a_copy_carries_no_link_and_no_special_file(tmp_path):
    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("secret")
    source = _folder_with_links(tmp_path / "sm", secret)
    target = tmp_path / "copy"
    target.mkdir()
    (target / "old").write_text("replaced")
    copy_tree(source, target)
    found = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
    assert found == ["saved_model.pb", "variables", "variables/variables.index"]
    assert not any(p.is_symlink() for p in target.rglob("*"))


def test_a_tree_too_large_or_too_deep_is_a_one_line_error(tmp_path):
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(30):
        (wide / str(i)).write_text("")
    with pytest.raises(TreeTooLarge, match="more than 20 entries"):
        scan_tree(wide, limit=20)
    deep = tmp_path / "deep"
    (deep / "a" / "b" / "c").mkdir(parents=True)
    with pytest.raises(TreeTooLarge, match="deeper than 2"):
        scan_tree(deep, depth=2)


def test_below_walks_only_real_folders(tmp_path):
    (tmp_path / "shard" / "outputs" / "m.h5").mkdir(parents=True)
    (tmp_path / "shard" / "outputs" / "m.h5" / "cell.npz").write_bytes(b"npz")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "cell.npz").write_bytes(b"secret")
    (tmp_path / "shard" / "outputs" / "linked.h5").symlink_to(tmp_path / "elsewhere")
    shard = tmp_path / "shard"
    assert below(shard, "outputs", "m.h5", "cell.npz") == shard / "outputs" / "m.h5" / "cell.npz"
    assert below(shard, "outputs", "linked.h5", "cell.npz") is None  # a link on the way
    assert below(shard, "outputs", "..", "elsewhere") is None and below(shard, "outputs", "a/b") is None


def test_open_regular_opens_no_fifo_device_or_link(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    (tmp_path / "real").write_text("x")
    for path in (fifo, Path("/dev/zero"), link):
        with pytest.raises(OSError):
            os.close(open_regular(path))  # a FIFO does not block either
    target = tmp_path / "target"
    target.symlink_to(tmp_path / "victim")
    copy_regular(tmp_path / "real", target)  # the link at the target is replaced, not written through
    assert target.read_text() == "x" and not target.is_symlink() and not (tmp_path / "victim").exists()


def test_a_migrated_savedmodel_is_copied_without_its_links(tmp_path):
    from harness.migrate import _write_migrated
    from harness.modelfile import ModelInfo

    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("secret")
    source = _folder_with_links(tmp_path / "exported", secret)
    info = ModelInfo(path=str(source), name="exported", sha256="0" * 64, size=7, format="savedmodel")
    (tmp_path / "out").mkdir()
    written = _write_migrated(info, source, tmp_path / "out")
    assert written == tmp_path / "out" / "exported"
    assert not any(p.is_symlink() for p in written.rglob("*")) and "secret" not in "".join(
        p.read_text(errors="replace") for p in written.rglob("*") if p.is_file()
    )
