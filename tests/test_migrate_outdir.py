"""harness migrate never harms the user's files: not the model it migrates, not a file it did not write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import cli
from harness.errors import UsageError
from harness.migrate import MARKER, claim_outdir

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "dense.h5"
    shutil.copyfile(MODELS / "dense.h5", path)
    return path


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_the_model_s_own_folder_is_refused_when_a_migrated_file_could_replace_it(model):
    before = snapshot(model.parent)
    with pytest.raises(UsageError, match="would replace the model"):
        claim_outdir(model, model.parent)
    assert snapshot(model.parent) == before  # nothing written, not even the scratch folder


def test_a_model_inside_the_scratch_folder_or_dir_inside_a_savedmodel_is_refused(tmp_path):
    inside = tmp_path / "out" / "work" / "m.h5"
    inside.parent.mkdir(parents=True)
    shutil.copyfile(MODELS / "dense.h5", inside)
    with pytest.raises(UsageError, match="would replace the model"):
        claim_outdir(inside, tmp_path / "out")
    assert inside.is_file()
    savedmodel = tmp_path / "sm"
    savedmodel.mkdir()
    (savedmodel / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(UsageError, match="inside the model"):
        claim_outdir(savedmodel, savedmodel / "migrated")
    assert not (savedmodel / "migrated").exists()


def test_a_file_harness_migrate_did_not_write_is_never_replaced(model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "migration.md").write_text("the user's own notes")
    (out / "keep.txt").write_text("unrelated")
    with pytest.raises(UsageError, match=r"migration\.md is there and harness migrate did not write it"):
        claim_outdir(model, out, force=True)  # --force covers only what the harness wrote
    assert (out / "migration.md").read_text() == "the user's own notes" and not (out / MARKER).exists()
    link = tmp_path / "linked"
    link.mkdir()
    (link / "work").symlink_to(model.parent)  # a link named like the scratch folder: never followed, never removed
    with pytest.raises(UsageError, match="work is there"):
        claim_outdir(model, link)
    assert model.is_file()


def test_an_earlier_migration_is_replaced_only_with_force_and_other_files_stay(model, tmp_path):
    out = tmp_path / "out"
    work = claim_outdir(model, out)
    assert work == (out / "work").resolve() and work.is_dir()
    (out / "migration.json").write_text("{}")
    (out / "dense.keras").write_text("earlier migrated file")
    (out / "notes.txt").write_text("the user's")
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "harness migrate" and "dense.keras" in marker["files"]
    with pytest.raises(UsageError, match=r"holds an earlier migration .*pass --force"):
        claim_outdir(model, out)
    assert (out / "dense.keras").read_text() == "earlier migrated file"
    claim_outdir(model, out, force=True)
    assert not (out / "dense.keras").exists() and not (out / "migration.json").exists()
    assert (out / "notes.txt").read_text() == "the user's" and (out / "work").is_dir()


def test_the_cli_refuses_the_model_s_folder_in_one_line_before_resolving_anything(model, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    code = cli.main(["migrate", str(model), "--to", "2.21", "-o", str(model.parent)])
    err = capsys.readouterr().err
    assert code == 2 and "would replace the model" in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == (MODELS / "dense.h5").read_bytes() and not (model.parent / "work").exists()


def test_a_serving_export_from_a_cell_is_unpacked_only_as_plain_files(tmp_path, monkeypatch):
    import stat
    import zipfile

    from harness import migrate as module
    from harness.migrate import unpack_serving

    def archive(name: str, members: dict[str, bytes], link: str | None = None) -> Path:
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as z:
            for member, data in members.items():
                z.writestr(member, data)
            if link:
                info = zipfile.ZipInfo(link)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, "/etc/passwd")
        return path

    good = archive("good", {"saved_model.pb": b"pb", "variables/variables.index": b"i", "fingerprint.pb": b"f"})
    done = unpack_serving(good, tmp_path / "out-good")
    assert (done / "variables" / "variables.index").read_bytes() == b"i"
    for name, members, link, why in [
        ("up", {"saved_model.pb": b"", "../escape": b"x"}, None, "not a plain relative file name"),
        ("absolute", {"/tmp/abs": b"x"}, None, "not a plain relative file name"),
        ("link", {"saved_model.pb": b""}, "variables", "not a plain relative file name"),
        ("none", {"other.pb": b""}, None, "no saved_model.pb"),
    ]:
        with pytest.raises(ValueError, match=why):
            unpack_serving(archive(name, members, link), tmp_path / f"out-{name}")
    assert not (tmp_path / "escape").exists() and not Path("/tmp/abs").exists()
    monkeypatch.setattr(module, "MAX_SERVING_BYTES", 10)
    with pytest.raises(ValueError, match="more than 10 bytes"):
        unpack_serving(archive("big", {"saved_model.pb": b"x" * 11}), tmp_path / "out-big")


@pytest.mark.parametrize("target", ["tensorflow==2.21", ["tensorflow==2.21"], None, {"spec": 7}])
def test_verify_refuses_a_migration_record_whose_target_is_not_an_object(target, tmp_path, capsys):
    """migration.json is untrusted: a target written as a string, a list or nothing is a one-line usage error, not a crash."""
    out = tmp_path / "migrated"
    out.mkdir()
    shutil.copyfile(MODELS / "dense.h5", out / "dense.h5")
    record = {"schema": "harness-migration", "proven": True, "proof": {}, "migrated": "dense.h5", "target": target}
    (out / "migration.json").write_text(json.dumps(record))
    code = cli.main(["migrate", "--verify", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "its target is not recorded as harness migrate writes it" in err and len(err.strip().splitlines()) == 1
