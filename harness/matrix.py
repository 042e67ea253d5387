"""YAML -> Matrix -> combinations -> [Cell]. Pure: no network, no processes.

`include`/`exclude` follow GitHub Actions' rules and match values as written; release
lines and specifiers are expanded afterwards by `expand_versions`, against version
lists that the caller supplies (see `resolve.py`), so this module stays pure.
"""

from __future__ import annotations

import difflib
import itertools
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import UsageError, located

RESERVED = ("python", "env", "api", "resolution", "keras-backend")
# Keras 3's backends: a cell on one imports `keras` with KERAS_BACKEND set, and installs that framework
# (the newest the resolver finds for the cell's Python and Keras) unless the matrix pins it as an axis
KERAS_BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
APIS = ("tf.keras", "keras", "tf_keras")
RESOLUTIONS = ("default", "override")
TOP_KEYS = ("name", "description", "matrix", "packages", "load", "resolution", "docker")
LOAD_KEYS = ("custom_objects", "compile", "inference", "timeout", "fixes", "try_fixes", "input", "reference", "atol", "rtol")
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_PYTHON = re.compile(r"^3\.\d{1,2}$")


# --------------------------------------------------------------------------- YAML


class _LineDict(dict):  # type: ignore[type-arg]
    line = 0
    key_lines: dict[Any, int]


def _key_lines(mapping: Any) -> dict[Any, int]:
    return getattr(mapping, "key_lines", {})


class _LineList(list):  # type: ignore[type-arg]
    line = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers lines and reads unquoted numbers as written.

    `tensorflow: [2.10]` must mean 2.10, not the float 2.1, so floats keep their text.
    """


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result.key_lines:  # YAML says keys are unique; PyYAML would keep the last silently
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {result.key_lines[key]}): keep one", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


MAX_MATRIX_BYTES = 1 << 20  # a matrix file is a page of YAML
MAX_NODES = 100_000  # YAML nodes after aliases are expanded: far above any real matrix


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int = 0) -> int:
    """How many nodes `node` stands for once every alias is expanded (an alias bomb's size)."""
    if id(node) in memo:
        return memo[id(node)]
    if depth > 200:
        raise yaml.composer.ComposerError(None, None, "nested deeper than 200 levels", node.start_mark)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, depth + 1) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    memo[id(node)] = min(size, MAX_NODES + 1)
    return memo[id(node)]


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
_Loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: node.value)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class LoadOptions:
    custom_objects: Path | None = None
    compile: bool = True
    inference: bool = False
    timeout: float = 300.0
    fixes: bool = True  # try the fixes that can be tried inside the cell
    try_fixes: bool = False  # also those that need another environment (as --try-fixes)
    input: Path | None = None  # .npy/.npz fed to the model (default: batches the probe makes from the model's inputs)
    reference: Path | None = None  # expected outputs (.npy/.npz); default: the cell that matches the saved-by Keras
    atol: float = 1e-5
    rtol: float = 1e-4
    trusted: bool = False  # --trust-models: never from the matrix file, a command-line decision
    export: bool = False  # harness migrate: send back the loaded model's architecture and weights
    save_as: str | None = None  # harness migrate: save the models named in `resave` again as "keras" or "h5", and send them back
    resave: tuple[str, ...] = ()
    rescue: tuple[str, ...] = ()  # harness migrate: SavedModels also tried through their serving signature (inference only)
    repairs: bool = True  # the probe may try the config repaired by the harness's rules (harness migrate tries its own candidates)


@dataclass
class Combination:
    """One matrix combination, values as written, with the line each came from."""

    values: dict[str, Any]
    lines: dict[str, int]

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return all(k in self.values and self.values[k] == v for k, v in entry.items())


@dataclass(frozen=True)
class Cell:
    """A concrete environment to load the model in: exact pins, no specifiers left."""

    python: str
    pins: tuple[tuple[str, str | None], ...]  # axis name -> exact version; None: not installed
    env: tuple[tuple[str, str], ...] = ()
    api: str = "tf.keras"
    override: bool = False
    requested: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    frameworks: tuple[str, ...] = ()  # installed unpinned (a Keras backend's framework the matrix does not pin)

    @property
    def id(self) -> str:
        """Readable and stable: `py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy`."""
        parts = [f"py{self.python}"]
        parts += [f"{name}{version}" for name, version in self.pins if version is not None]
        for key, value in self.env:
            if key == "TF_USE_LEGACY_KERAS" and value == "1":
                parts.append("legacy")
            elif key == "KERAS_BACKEND" and value in KERAS_BACKENDS:
                parts.append(f"on-{value}")
            else:
                parts.append(re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{key}={value}"))
        if self.api != "tf.keras" and not self.backend:
            parts.append(f"api-{self.api.replace('.', '-')}")
        if self.override:
            parts.append("override")
        return "-".join(parts)

    def version_of(self, name: str) -> str | None:
        return dict(self.pins).get(name)

    @property
    def backend(self) -> str | None:
        """The Keras 3 backend the cell names (keras-backend axis), or None."""
        return dict(self.env).get("KERAS_BACKEND") if self.api == "keras" else None

    def requirements(self, packages: Mapping[str, str]) -> list[str]:
        pinned = [f"{packages.get(n, n)}=={v}" for n, v in self.pins if v is not None]
        return pinned + [packages.get(n, n) for n in self.frameworks]


@dataclass(frozen=True)
class Matrix:
    path: Path
    name: str
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    axis_lines: Mapping[str, Sequence[int]]
    include: tuple[Combination, ...] = ()
    exclude: tuple[Combination, ...] = ()
    packages: Mapping[str, str] = field(default_factory=dict)
    load: LoadOptions = LoadOptions()
    resolution: str = "default"
    docker: Mapping[str, Any] = field(default_factory=dict)

    def install_name(self, axis: str) -> str:
        return self.packages.get(axis, axis)

    def package_axes(self) -> list[str]:
        """Package keys in the order they first appear (axes, then include entries)."""
        seen = [k for k, _ in self.axes if k not in RESERVED]
        for inc in self.include:
            seen += [k for k in inc.values if k not in RESERVED and k not in seen]
        return seen

    def where(self, key: str) -> str:
        return located(self.path, self.axis_lines.get(key, [0])[0], f"'{key}'")


# --------------------------------------------------------------------------- loading


def load_matrix(path: str | Path) -> Matrix:
    from .modelfile import regular_file

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a matrix file")
    regular_file(path, "matrix file", MAX_MATRIX_BYTES)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such matrix file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the matrix file ({exc})") from None
    return parse_matrix(text, path)


def parse_matrix(text: str, path: str | Path = "<matrix>") -> Matrix:
    path = Path(path)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_NODES:
                raise UsageError(located(path, None, f"more than {MAX_NODES} YAML nodes once aliases are expanded: not a matrix"))
            doc = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise UsageError(located(path, line, f"not valid YAML: {exc.problem}")) from None
    if not isinstance(doc, dict):
        raise UsageError(located(path, None, "a matrix file is a mapping with a 'matrix' key (see matrices/)"))
    _check_keys(path, doc, TOP_KEYS, "top-level key")
    axes_doc = doc.get("matrix")
    if not isinstance(axes_doc, dict) or not axes_doc:
        raise UsageError(located(path, getattr(doc, "line", None), "'matrix' must be a mapping of axes to lists of versions"))

    def fail(key: str, line: int | None, message: str) -> UsageError:
        return UsageError(located(path, line, f"'{key}': {message}"))

    axes: list[tuple[str, tuple[Any, ...]]] = []
    axis_lines: dict[str, list[int]] = {}
    include: list[Combination] = []
    exclude: list[Combination] = []
    for key, raw in axes_doc.items():
        line = _key_lines(axes_doc)[key]
        if key in ("include", "exclude"):
            if not isinstance(raw, list):
                raise fail(key, line, "must be a list of mappings")
            entries = [_combination(path, item, getattr(raw, "item_lines", [line] * len(raw))[i], fail) for i, item in enumerate(raw)]
            (include if key == "include" else exclude).extend(entries)
            continue
        values = raw if isinstance(raw, list) else [raw]
        lines = raw.item_lines if isinstance(raw, _LineList) else [line]
        if not values:
            raise fail(key, line, "an axis needs at least one value")
        _check_axis_name(key, line, fail)
        axes.append((key, tuple(_value(key, v, lines[i], fail) for i, v in enumerate(values))))
        axis_lines[key] = list(lines)
    axis_keys = {k for k, _ in axes}
    for entry in exclude:
        for key in entry.values:
            if key not in axis_keys:
                raise fail(key, entry.lines[key], f"exclude names a key that is not an axis (axes: {', '.join(sorted(axis_keys))})")

    packages = doc.get("packages") or {}
    if not isinstance(packages, dict) or not all(isinstance(v, str) for v in packages.values()):
        raise UsageError(
            located(
                path,
                getattr(packages, "line", None),
                "'packages' maps an axis to the PyPI name to install, e.g. {tensorflow: tensorflow-cpu}",
            )
        )
    resolution = doc.get("resolution", "default")
    if resolution not in RESOLUTIONS:
        raise fail("resolution", _key_lines(doc).get("resolution"), f"must be one of {', '.join(RESOLUTIONS)}")
    name = str(doc.get("name") or path.stem)
    return Matrix(
        path=path,
        name=name,
        axes=tuple(axes),
        axis_lines=axis_lines,
        include=tuple(include),
        exclude=tuple(exclude),
        packages=dict(packages),
        load=_load_options(path, doc.get("load"), fail),
        resolution=resolution,
        docker=dict(doc.get("docker") or {}),
    )


def _check_keys(path: Path, mapping: Any, allowed: Sequence[str], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise UsageError(located(path, _key_lines(mapping).get(key), f"unknown {what} '{key}' (expected one of: {', '.join(allowed)})"))


def _check_axis_name(key: Any, line: int, fail: Callable[..., UsageError]) -> None:
    if not isinstance(key, str) or not _NAME.match(key):
        raise fail(str(key), line, "an axis is a PyPI distribution name or one of python, env, api")


def _value(key: str, value: Any, line: int, fail: Callable[..., UsageError]) -> Any:
    """Validate one value as written; it stays as written (matching uses it)."""
    if key == "env":
        if not isinstance(value, dict):
            raise fail(key, line, "an env value is a mapping of variable names to strings, e.g. {TF_USE_LEGACY_KERAS: '1'}")
        return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    if key == "keras-backend":
        if value not in KERAS_BACKENDS:
            raise fail(key, line, f"unknown Keras backend '{value}' (use one of: {', '.join(KERAS_BACKENDS)})")
        return value
    if key == "api":
        if value not in APIS:
            raise fail(key, line, f"unknown loading API '{value}' (use one of: {', '.join(APIS)})")
        return value
    if key == "resolution":
        if value not in RESOLUTIONS:
            raise fail(key, line, f"must be one of {', '.join(RESOLUTIONS)}")
        return value
    if key == "python":
        text = str(value)
        if not _PYTHON.match(text):
            raise fail(key, line, f"'{text}' is not a Python version like \"3.11\" (quote it in YAML)")
        return text
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise fail(
            key,
            line,
            f'{value!r} is not a version; use an exact version, a release line like "2.15", a specifier like ">=2.16", latest or null',
        )
    text = str(value).strip()
    kind = version_kind(text)
    if kind == "specifier":
        try:
            SpecifierSet(text)
        except InvalidSpecifier:
            raise fail(key, line, f"'{text}' is not a valid version specifier (PEP 440), e.g. \">=2.16,<2.19\"") from None
    elif kind != "latest":
        try:
            Version(text)
        except InvalidVersion:
            raise fail(
                key,
                line,
                f'\'{text}\' is not a version; use an exact version, a release line like "2.15", a specifier like ">=2.16", latest or null',
            ) from None
    return text


def _combination(path: Path, item: Any, line: int, fail: Callable[..., UsageError]) -> Combination:
    if not isinstance(item, dict) or not item:
        raise UsageError(located(path, line, "an include/exclude entry is a mapping of axis keys to values"))
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key, value in item.items():
        key_line = _key_lines(item)[key]
        _check_axis_name(key, key_line, fail)
        values[key] = _value(key, value, key_line, fail)
        lines[key] = key_line
    return Combination(values, lines)


def _load_options(path: Path, doc: Any, fail: Callable[..., UsageError]) -> LoadOptions:
    if doc is None:
        return LoadOptions()
    if not isinstance(doc, dict):
        raise UsageError(located(path, None, "'load' must be a mapping (custom_objects, compile, inference, timeout)"))
    _check_keys(path, doc, LOAD_KEYS, "load option")
    paths: dict[str, Path | None] = {}
    for key, what in (
        ("custom_objects", "a Python file defining the custom classes"),
        ("input", "a .npy/.npz input"),
        ("reference", "a .npy/.npz of expected outputs"),
    ):
        paths[key] = None
        if doc.get(key) is not None:
            paths[key] = (path.parent / str(doc[key])).resolve()
            if not paths[key].is_file():  # type: ignore[union-attr]
                raise fail(key, _key_lines(doc)[key], f"{paths[key]} does not exist ({what}, relative to the matrix)")
    tolerances = {}
    for key in ("atol", "rtol"):
        try:
            tolerances[key] = float(doc.get(key, getattr(LoadOptions, key)))
        except (TypeError, ValueError):
            raise fail(key, _key_lines(doc).get(key), "must be a number, e.g. 1e-5") from None
    for flag in ("compile", "inference", "fixes", "try_fixes"):
        if flag in doc and not isinstance(doc[flag], bool):
            raise fail(flag, _key_lines(doc)[flag], "must be true or false")
    timeout = doc.get("timeout", 300)
    try:
        timeout = float(timeout)
        if timeout <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise fail("timeout", _key_lines(doc).get("timeout"), "must be a positive number of seconds") from None
    return LoadOptions(
        custom_objects=paths["custom_objects"],
        input=paths["input"],
        reference=paths["reference"],
        atol=tolerances["atol"],
        rtol=tolerances["rtol"],
        compile=doc.get("compile", True),
        inference=doc.get("inference", False),
        timeout=timeout,
        fixes=doc.get("fixes", True),
        try_fixes=doc.get("try_fixes", False),
    )


# --------------------------------------------------------------------------- expansion


def combinations(matrix: Matrix) -> list[Combination]:
    """The matrix's combinations under GitHub Actions' rules, values as written.

    Exclude first (an entry matches on a subset of keys); then each include extends
    every combination whose original axis values it does not contradict (values that
    an earlier include added may be overwritten), and one that extends none is added
    as a combination of its own.
    """
    keys = [k for k, _ in matrix.axes]
    product = []
    # No axes: no base combination for the includes to extend, so each include entry is a
    # combination of its own (GitHub Actions: "a matrix of only include" runs each entry).
    for choice in itertools.product(*(range(len(vs)) for _, vs in matrix.axes)) if keys else ():
        values = {k: matrix.axes[i][1][j] for i, (k, j) in enumerate(zip(keys, choice, strict=True))}
        lines = {k: matrix.axis_lines[k][j] for k, j in zip(keys, choice, strict=True)}
        product.append(Combination(values, lines))
    kept = [c for c in product if not any(c.matches(e.values) for e in matrix.exclude)]
    added: list[Combination] = []
    for inc in matrix.include:
        extended = False
        for combo in kept:
            if all(k not in keys or combo.values[k] == v for k, v in inc.values.items()):
                combo.values.update(inc.values)
                combo.lines.update(inc.lines)
                extended = True
        if not extended:
            added.append(Combination(dict(inc.values), dict(inc.lines)))
    if not kept + added:
        raise UsageError(located(matrix.path, None, "every combination is excluded: nothing to run (check the exclude entries)"))
    return kept + added


def version_kind(text: str) -> str:
    """exact | line | specifier | latest."""
    if text == "latest":
        return "latest"
    if text[:1] in "<>=!~":
        return "specifier"
    return "line" if text.count(".") <= 1 else "exact"


def select_versions(text: str, available: Sequence[Version]) -> list[Version]:
    """The releases a value stands for: newest of a line, newest per minor line of a specifier."""
    finals = sorted((v for v in available if not v.is_prerelease and not v.is_devrelease), reverse=True)
    kind = version_kind(text)
    if kind == "latest":
        return finals[:1]
    if kind == "exact":
        wanted = Version(text)
        return [v for v in available if v == wanted][:1]
    if kind == "line":
        prefix = Version(text).release
        return [v for v in finals if v.release[: len(prefix)] == prefix][:1]
    spec = SpecifierSet(text)
    newest_per_line: dict[tuple[int, ...], Version] = {}
    for v in finals:
        if v in spec:
            newest_per_line.setdefault(v.release[:2], v)
    return sorted(newest_per_line.values())


VersionLister = Callable[[str, str], Sequence[Version]]  # (install name, python) -> releases


def expand_versions(matrix: Matrix, combos: Iterable[Combination], list_versions: VersionLister) -> list[Cell]:
    """Concrete cells: every written value replaced by the releases it stands for."""
    package_order = matrix.package_axes()
    cells: dict[Cell, None] = {}
    # a value names the same releases in every combination: selected once per (package, python, value)
    selected: dict[tuple[str, str, str], list[Version]] = {}
    for combo in combos:
        python = combo.values.get("python") or HOST_PYTHON
        choices: list[list[tuple[str, str | None]]] = []
        for key in package_order:
            if key not in combo.values:
                continue
            written = combo.values[key]
            if written is None:
                choices.append([(key, None)])
                continue
            memo = (matrix.install_name(key), python, written)
            if memo not in selected:
                selected[memo] = select_versions(written, list_versions(memo[0], python))
            picked = selected[memo]
            if not picked:
                available = list_versions(matrix.install_name(key), python)
                raise UsageError(
                    located(
                        matrix.path, combo.lines.get(key), f"'{key}': '{written}' {_no_match(matrix.install_name(key), python, available)}"
                    )
                )
            choices.append([(key, str(v)) for v in picked])
        resolution = combo.values.get("resolution", matrix.resolution)
        requested = tuple((k, "null" if combo.values[k] is None else str(combo.values[k])) for k in package_order if k in combo.values)
        env = dict(combo.values.get("env") or {})
        api = combo.values.get("api", "tf.keras")
        frameworks: tuple[str, ...] = ()
        backend = combo.values.get("keras-backend")
        if backend:
            if api not in ("tf.keras", "keras") or env.get("KERAS_BACKEND", backend) != backend:
                line = combo.lines.get("keras-backend")
                raise UsageError(located(matrix.path, line, f"'keras-backend': {backend} cells load with Keras 3's own API and set KERAS_BACKEND themselves: drop the api or env that says otherwise"))
            env["KERAS_BACKEND"], api = backend, "keras"
            framework = KERAS_BACKENDS[backend]
            frameworks = () if framework in combo.values else (framework,)
        for pins in itertools.product(*choices):
            cell = Cell(
                python=python,
                pins=tuple(pins),
                env=tuple(sorted(env.items())),
                api=api,
                override=resolution == "override",
                requested=requested,
                frameworks=frameworks,
            )
            cells.setdefault(cell, None)  # a release named twice (e.g. "2.16" and ">=2.16") is one cell
    return list(cells)


# The axes users write; a name the index does not know that is close to one of these is a typo.
KNOWN_AXES = (
    "tensorflow", "tensorflow-cpu", "keras", "tf-keras", "tensorflow-addons", "tensorflow-hub",
    "tensorflow-probability", "h5py", "numpy", "protobuf", "ml-dtypes", "python", "env", "api",
    "keras-backend", "jax", "jaxlib", "torch",
)  # fmt: skip


def _no_match(install_name: str, python: str, available: Sequence[Version]) -> str:
    finals = [v for v in available if not v.is_prerelease]
    if not available:
        close = [c for c in difflib.get_close_matches(install_name.lower(), KNOWN_AXES, n=2, cutoff=0.75) if c != install_name.lower()]
        if close:
            return f"matches no release: this index has no '{install_name}' for Python {python}; did you mean '{close[0]}'?"
    if not finals:
        return f"matches no release: {install_name} has no release for Python {python} on this index"
    return f"matches no release of {install_name} for Python {python} (newest is {max(finals)})"
