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
    cli.configure(parser)
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
        ("colour = true", "colour: not an option of `harness run`"),
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
        cli.configure(cli.build_parser())
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_broken_config_stops_run_only(tmp_path, monkeypatch, capsys):
    (tmp_path / "harness.toml").write_text("colour = true\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 2 and "colour" in capsys.readouterr().err
    assert cli.main(["history", "--store", str(tmp_path / "none.sqlite")]) == 2  # its own error, not the config's
    assert "colour" not in capsys.readouterr().err


def test_run_without_matrix_or_models_says_where_to_put_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    assert cli.main(["run"]) == 2
    assert "[tool.harness]" in capsys.readouterr().err
