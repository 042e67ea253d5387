"""[tool.harness] in pyproject.toml or harness.toml: found, checked, and applied as the
defaults of `harness run` (the whole run on them: tests/test_pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.config import find
from harness.errors import UsageError


def parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str):
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    cli.configure(parser, ["run", *argv])
    return parser.parse_args(["run", *argv])


def test_the_nearest_file_up_to_the_repository_root(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.harness]\nmatrix = "m.yaml"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.harness]: not a harness config
    assert find(deep).path == tmp_path / "pyproject.toml"
    (tmp_path / "a" / "harness.toml").write_text('matrix = "other.yaml"\n')  # harness.toml: its top level
    assert find(deep).path == tmp_path / "a" / "harness.toml" and find(deep).values == {"matrix": "other.yaml"}
    (tmp_path / "a" / "harness.toml").unlink()
    outside = tmp_path / "repo"
    (outside / ".git").mkdir(parents=True)
    assert find(outside) is None  # the file above a repository's root is another project's


def test_values_become_defaults_and_flags_win(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.harness]\n"
        'matrix = "matrices/m.yaml"\nmodels = ["models/a.h5", "models/b.keras"]\n'
        'fail-on = "regression"\njobs = 3\ntry-fixes = true\nonly = "py3.11-*"\noutdir = "out"\n'
    )
    args = parsed(tmp_path, monkeypatch)
    assert args.matrix == tmp_path / "matrices" / "m.yaml" and args.models == [tmp_path / "models" / "a.h5", tmp_path / "models" / "b.keras"]
    assert (args.fail_on, args.jobs, args.try_fixes, args.only, args.outdir) == ("regression", 3, True, ["py3.11-*"], tmp_path / "out")
    assert args.config_file == str(tmp_path / "pyproject.toml")
    flags = parsed(tmp_path, monkeypatch, "x.yaml", "m.h5", "--fail-on", "any", "-j", "1")
    assert (flags.matrix, flags.models, flags.fail_on, flags.jobs) == (Path("x.yaml"), [Path("m.h5")], "any", 1)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("colour = true", "colour: not an option of any harness command"),
        ("trust-models = true", "trust-models: not read from a file"),
        ('fail-on = "sometimes"', "'sometimes' is not one of"),
        ('jobs = "many"', "expected a number"),
        ('fresh = "yes"', "expected true or false"),
        ("matrix = [1, 2]", "expected one value"),
        ("matrix = ", "not valid TOML"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_file_and_key(tmp_path, monkeypatch, line, said):
    (tmp_path / "harness.toml").write_text(line + "\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"harness\.toml") as caught:
        cli.configure(cli.build_parser(), [])
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_broken_config_stops_every_command_and_no_config_reads_none(tmp_path, monkeypatch, capsys):
    (tmp_path / "harness.toml").write_text("colour = true\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 2 and "--no-config reads none" in capsys.readouterr().err
    assert cli.main(["history", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "colour" in capsys.readouterr().err
    assert cli.main(["history", "--store", str(tmp_path / "none.sqlite"), "--no-config"]) == 2  # its own error, not the config's
    assert "colour" not in capsys.readouterr().err


def test_every_command_takes_the_keys_it_has_with_globs_expanded(tmp_path, monkeypatch, capsys):
    """`models` with a glob, relative to the file; `harness inspect` reads the models, `harness
    schedule` the matrix and models; `--config FILE` names another file."""
    models = tmp_path / "models"
    models.mkdir()
    examples = Path(__file__).resolve().parent.parent / "examples" / "models"
    for name, source in (("b.h5", "dense.h5"), ("a.h5", "custom_loss.h5"), ("c.keras", "dense_keras3.keras")):
        (models / name).write_bytes((examples / source).read_bytes())
    (tmp_path / "m.yaml").write_text("matrix:\n  tensorflow: ['2.15.1']\n")
    (tmp_path / "pyproject.toml").write_text('[tool.harness]\nmatrix = "m.yaml"\nmodels = ["models/*.h5", "models/c.keras"]\nfail-on = "any"\n')
    args = parsed(tmp_path, monkeypatch)
    assert args.models == [models / "a.h5", models / "b.h5", models / "c.keras"]
    assert cli.main(["inspect", "--json"]) == 0
    said = capsys.readouterr().out
    assert all(name in said for name in ("a.h5", "b.h5", "c.keras"))
    assert cli.main(["schedule", "--install", "harness @ git+https://example.org/h", "-o", "-"]) == 0
    written = capsys.readouterr().out
    assert "harness run m.yaml models/a.h5 models/b.h5 models/c.keras" in written.replace(str(tmp_path) + "/", "")
    other = tmp_path / "ci.toml"
    other.write_text('models = ["models/none-*.h5"]\n')
    assert cli.main(["inspect", "--config", str(other)]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert cli.main(["inspect", "--no-config"]) == 2 and "no MODEL" in capsys.readouterr().err


def test_an_unknown_argument_prints_the_commands_usage(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["inspect", "m.h5", "--frobnicate"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: harness inspect") and "unrecognized arguments: --frobnicate" in err


def test_color_never_prints_no_escape_sequence_and_always_does(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Path(__file__).resolve().parent.parent / "examples" / "models" / "dense.h5"
    cli.main(["inspect", str(model), "--color", "always"])
    assert "\x1b[" in capsys.readouterr().out
    cli.main(["inspect", str(model), "--color", "never"])
    assert "\x1b[" not in capsys.readouterr().out


def test_run_without_matrix_or_models_says_where_to_put_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    assert cli.main(["run"]) == 2
    assert "[tool.harness]" in capsys.readouterr().err
