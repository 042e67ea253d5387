"""A repository's defaults for the harness's commands: `[tool.harness]` in pyproject.toml,
or a harness.toml (its top level, or its own `[tool.harness]`).

    [tool.harness]
    matrix = "matrices/keras3.yaml"
    models = ["models/*.h5", "models/ranker.keras"]
    fail-on = "regression"
    store = ".harness/results.sqlite"

Every key is an option by its long name (`fail-on` or `fail_on`), plus the positionals
`matrix` and `models`; each command takes the keys it has (`harness cells` the matrix,
`harness inspect` the models, `harness run` all of them), and a key no command has is an
error. Flags on the command line win. Paths are relative to the file that names them, and
a glob in one (`models/*.h5`) is expanded there, sorted. The nearest file wins: from the
working folder up to the repository's root (the first folder with .git), harness.toml
before pyproject.toml; `--config FILE` names one, `--no-config` reads none.

`trust-models` is refused here: running a model file's code is decided on the command
line, for that run, never by a file in the repository.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

FILES = ("harness.toml", "pyproject.toml")
NEVER = {"trust_models": "--trust-models runs the model files' code: pass it on the command line, for that run"}
NOT_OPTIONS = {"help", "main", "config_file", "config_path", "no_config", "traceback", "version"}


@dataclass(frozen=True)
class Config:
    path: Path
    values: dict[str, Any]


def find(start: Path) -> Config | None:
    """The nearest harness.toml, or pyproject.toml with a [tool.harness] table."""
    for folder in (start, *start.parents):
        for name in FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            table = _table(candidate)
            if table is not None:
                return Config(candidate, table)
        if (folder / ".git").exists():
            return None  # the repository's root: a file above it is another project's
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; a one-line error naming the file when it cannot be read."""
    if sys.version_info >= (3, 11):  # imported here: most runs find no file to read
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return dict(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None


def _table(path: Path) -> dict[str, Any] | None:
    data = read_toml(path)
    tool = data.get("tool", {}).get("harness") if isinstance(data.get("tool"), dict) else None
    if tool is not None:
        if not isinstance(tool, dict):
            raise UsageError(f"{path}: [tool.harness] must be a table of `harness run` options")
        return dict(tool)
    if path.name == "harness.toml":
        return dict(data)
    return None


def apply(parsers: dict[str, argparse.ArgumentParser], config: Config) -> None:
    """The file's values as each command's defaults (the keys that command has), checked and
    converted as its flags are; a key no command has is an error."""
    defaults: dict[str, dict[str, Any]] = {name: {"config_file": str(config.path)} for name in parsers}
    for key, value in config.values.items():
        dest = str(key).replace("-", "_")
        where = f"{config.path}: [tool.harness] {key}"
        if dest in NEVER:
            raise UsageError(f"{where}: not read from a file: {NEVER[dest]}")
        taken = False
        for name, parser in parsers.items():
            action = next((a for a in parser._actions if a.dest == dest and a.dest not in NOT_OPTIONS), None)
            if action is not None:
                defaults[name][dest] = _converted(action, value, config.path.parent, where)
                taken = True
        if not taken:
            raise UsageError(f"{where}: not an option of any harness command (harness run --help lists most)")
    for name, parser in parsers.items():
        parser.set_defaults(**defaults[name])


def load(path: Path) -> Config:
    """The file named by --config: its [tool.harness] table, else (but for a pyproject.toml) its top level."""
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    table = _table(path)
    if table is None and path.name == "pyproject.toml":
        raise UsageError(f"--config {path}: it has no [tool.harness] table")
    return Config(path, table if table is not None else read_toml(path))  # another name: its top level, as harness.toml's


def _converted(action: argparse.Action, value: Any, base: Path, where: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    if many:
        items = value if isinstance(value, list) else [value]
        converted = [_one(action, item, base, where) for item in items]
        if action.type is Path:  # a glob names the files it matches, relative to the file, sorted (as a shell would)
            return [found for item in converted for found in _expanded(item, where)]
        return converted
    if isinstance(value, list):
        raise UsageError(f"{where}: expected one value, got a list")
    return _one(action, value, base, where)


def _one(action: argparse.Action, value: Any, base: Path, where: str) -> Any:
    if isinstance(value, (dict, list)) or value is None:
        raise UsageError(f"{where}: expected a string or a number, got {value!r}")
    kind = action.type
    if kind is Path:
        return base / Path(str(value)).expanduser()
    converted: Any
    if kind is int or kind is float:
        try:
            converted = kind(value)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: expected a number, got {value!r}") from None
    else:
        converted = str(value)
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where}: {converted!r} is not one of {', '.join(map(str, action.choices))}")
    return converted


def _expanded(path: Path, where: str) -> list[Path]:
    text = str(path)
    if not any(c in text for c in "*?["):
        return [path]
    anchor = Path(text[: min(text.index(c) for c in "*?[" if c in text)]).parent
    found = sorted(anchor.glob(str(path.relative_to(anchor)))) if anchor.is_dir() else []
    if not found:
        raise UsageError(f"{where}: '{path}' matches no file")
    return found
