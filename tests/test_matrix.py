"""Matrix loading, GitHub Actions include/exclude rules, version expansion (pure)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from packaging.version import Version

from harness.errors import UsageError
from harness.matrix import HOST_PYTHON, Cell, Combination, Matrix, combinations, expand_versions, parse_matrix, select_versions


def parse(text: str, path: str = "m.yaml"):
    return parse_matrix(textwrap.dedent(text), path)


def combos(text: str) -> list[dict]:
    """The rules alone: GitHub's examples use values that are not versions, so skip parsing."""
    import yaml

    doc = yaml.safe_load(textwrap.dedent(text))["matrix"]
    axes = tuple((k, tuple(str(x) for x in v)) for k, v in doc.items() if k not in ("include", "exclude"))

    def entries(key: str) -> tuple[Combination, ...]:
        return tuple(Combination({k: str(v) for k, v in e.items()}, dict.fromkeys(e, 0)) for e in doc.get(key, []))

    matrix = Matrix(
        path="m.yaml",
        name="m",
        axes=axes,
        axis_lines={k: [0] * len(v) for k, v in axes},
        include=entries("include"),
        exclude=entries("exclude"),
    )
    return [c.values for c in combinations(matrix)]


# --- GitHub Actions' documented examples ("Using a matrix for your jobs") -------------


def test_github_include_example_expanding_and_adding_configurations():
    got = combos(
        """
        matrix:
          fruit: [apple, pear]
          animal: [cat, dog]
          include:
            - color: green
            - color: pink
              animal: cat
            - fruit: apple
              shape: circle
            - fruit: banana
            - fruit: banana
              animal: cat
        """
    )
    assert got == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_github_include_extends_one_matching_combination():
    got = combos(
        """
        matrix:
          os: [windows-latest, ubuntu-latest]
          node: [14, 16]
          include:
            - os: windows-latest
              node: 16
              npm: 6
        """
    )
    assert {"os": "windows-latest", "node": "16", "npm": "6"} in got
    assert sum("npm" in c for c in got) == 1
    assert len(got) == 4


def test_github_exclude_example_partial_match():
    got = combos(
        """
        matrix:
          os: [macos-latest, windows-latest]
          version: [12, 14, 16]
          environment: [staging, production]
          exclude:
            - os: macos-latest
              version: 12
              environment: production
            - os: windows-latest
              version: 16
        """
    )
    assert len(got) == 12 - 1 - 2
    assert {"os": "macos-latest", "version": "12", "environment": "production"} not in got
    assert not any(c["os"] == "windows-latest" and c["version"] == "16" for c in got)


def test_exclude_runs_before_include_and_matches_values_as_written():
    got = combos(
        """
        matrix:
          tensorflow: ["2.15", ">=2.16"]
          tensorflow-addons: [null, "0.23"]
          exclude:
            - {tensorflow: ">=2.16", tensorflow-addons: "0.23"}
          include:
            - {tensorflow: ">=2.16", tensorflow-addons: "0.23"}
        """
    )
    # the include does not contradict the remaining >=2.16 combination's original values?
    # it does (tensorflow-addons null != 0.23), so it becomes a combination of its own
    assert got.count({"tensorflow": ">=2.16", "tensorflow-addons": "0.23"}) == 1
    assert len(got) == 4


# --- our format --------------------------------------------------------------------


def test_unquoted_versions_keep_their_text():
    m = parse(
        """
        matrix:
          python: [3.10]
          tensorflow: [2.10, 2.15]
        """
    )
    assert dict(m.axes)["tensorflow"] == ("2.10", "2.15")
    assert dict(m.axes)["python"] == ("3.10",)


def test_load_options_and_packages(tmp_path):
    (tmp_path / "objs.py").write_text("X = 1\n")
    m = parse_matrix(
        "matrix: {tensorflow: ['2.15']}\npackages: {tensorflow: tensorflow-cpu}\nload: {custom_objects: objs.py, timeout: 60, inference: true}\n",
        tmp_path / "m.yaml",
    )
    assert m.install_name("tensorflow") == "tensorflow-cpu"
    assert m.load.custom_objects == (tmp_path / "objs.py").resolve()
    assert m.load.timeout == 60.0 and m.load.inference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("matrix:\n  tensorflow: ['2.15'\n", "m.yaml:3: not valid YAML"),
        ("matrix:\n  tensorflow: ['2.15']\nmatrx: {}\n", "m.yaml:3: unknown top-level key 'matrx'"),
        ("matrix:\n  tensorflow: ['2.15']\n  api: [torch]\n", "m.yaml:3: 'api': unknown loading API 'torch'"),
        ("matrix:\n  python: ['3.x']\n", "m.yaml:2: 'python': '3.x' is not a Python version"),
        ("matrix:\n  tensorflow:\n    - '2.15'\n    - 'two'\n", "m.yaml:4: 'tensorflow': 'two' is not a version"),
        ("matrix:\n  tensorflow: ['>=2.x']\n", "m.yaml:2: 'tensorflow': '>=2.x' is not a valid version specifier"),
        ("matrix:\n  tensorflow: []\n", "m.yaml:2: 'tensorflow': an axis needs at least one value"),
        (
            "matrix:\n  tensorflow: ['2.15']\n  exclude:\n    - {numpy: '2.0'}\n",
            "m.yaml:4: 'numpy': exclude names a key that is not an axis",
        ),
        ("matrix:\n  tensorflow: ['2.15']\nload: {timeout: -1}\n", "m.yaml:3: 'timeout': must be a positive number"),
        ("matrix:\n  tensorflow: ['2.15']\nload:\n  custom_objects: nope.py\n", "m.yaml:4: 'custom_objects':"),
        ("- just a list\n", "m.yaml: a matrix file is a mapping"),
    ],
)
def test_errors_name_file_line_and_key(text, expected):
    with pytest.raises(UsageError) as err:
        parse_matrix(text, "m.yaml")
    assert str(err.value).startswith(expected), str(err.value)


# --- version expansion ---------------------------------------------------------------

RELEASES = [Version(v) for v in ["2.12.0", "2.12.1", "2.13.0", "2.13.1", "2.15.0", "2.15.1", "2.16.0rc0", "2.16.1", "2.16.2", "2.17.0"]]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2.15.0", ["2.15.0"]),
        ("2.15", ["2.15.1"]),
        ("2", ["2.17.0"]),
        ("latest", ["2.17.0"]),
        (">=2.15", ["2.15.1", "2.16.2", "2.17.0"]),
        (">=2.12,<2.14", ["2.12.1", "2.13.1"]),
        ("2.14", []),
    ],
)
def test_select_versions(written, expected):
    assert [str(v) for v in select_versions(written, RELEASES)] == expected


def test_expand_versions_builds_cells_with_readable_ids():
    m = parse(
        """
        matrix:
          python: ["3.11"]
          tensorflow: ["2.15", ">=2.16"]
          tensorflow-addons: [null]
          include:
            - {tensorflow: "2.16", tf-keras: "2.16", env: {TF_USE_LEGACY_KERAS: 1}}
        packages: {tensorflow: tensorflow-cpu}
        """
    )
    lists = {"tensorflow-cpu": RELEASES, "tf-keras": [Version("2.16.0"), Version("2.17.0")]}
    seen = []

    def lister(name: str, python: str):
        seen.append((name, python))
        return lists[name]

    cells = expand_versions(m, combinations(m), lister)
    assert [c.id for c in cells] == [
        "py3.11-tensorflow2.15.1",
        "py3.11-tensorflow2.16.2",
        "py3.11-tensorflow2.17.0",
        "py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy",
    ]
    assert ("tensorflow-cpu", "3.11") in seen
    assert cells[0].requirements(m.packages) == ["tensorflow-cpu==2.15.1"]
    assert cells[-1].env == (("TF_USE_LEGACY_KERAS", "1"),)


def test_a_release_named_twice_is_one_cell():
    m = parse("matrix:\n  tensorflow: ['2.16', '>=2.16']\n")
    cells = expand_versions(m, combinations(m), lambda n, p: RELEASES)
    assert [c.version_of("tensorflow") for c in cells] == ["2.16.2", "2.17.0"]


def test_version_that_matches_no_release_names_the_newest():
    m = parse("matrix:\n  tensorflow:\n    - '2.15'\n    - '2.99'\n")
    with pytest.raises(
        UsageError, match=r"m.yaml:4: 'tensorflow': '2.99' matches no release of tensorflow for Python \d\.\d+ \(newest is 2.17.0\)"
    ):
        expand_versions(m, combinations(m), lambda n, p: RELEASES)


def test_override_is_per_matrix_or_per_include():
    m = parse(
        """
        matrix:
          tensorflow: ["2.15"]
          include:
            - {tensorflow: "2.15.1", numpy: "2.1", resolution: override}
        """
    )
    cells = expand_versions(m, combinations(m), lambda n, p: RELEASES if n == "tensorflow" else [Version("2.1.3")])
    assert [c.override for c in cells] == [False, True]
    assert cells[1].id.endswith("-override")


def test_cell_id_is_stable_and_distinct():
    a = Cell(python="3.11", pins=(("tensorflow", "2.16.2"), ("tensorflow-addons", None)), api="keras")
    assert a.id == "py3.11-tensorflow2.16.2-api-keras"


def test_duplicate_keys_are_an_error_with_both_lines():
    text = 'name: a\nmatrix:\n  tensorflow: ["2.15"]\n  tensorflow: ["2.16"]\n'
    with pytest.raises(UsageError, match=r"m\.yaml:4: .*duplicate key 'tensorflow' \(first at line 3\)"):
        parse_matrix(text, "m.yaml")


def test_an_alias_bomb_is_refused_before_it_expands():
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for name in "bcdefghi":
        prev = chr(ord(name) - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    lines += ["name: bomb", "matrix: {tensorflow: *i}"]
    with pytest.raises(UsageError, match="YAML nodes once aliases are expanded"):
        parse_matrix("\n".join(lines), "bomb.yaml")


def test_a_few_aliases_are_fine():
    text = "name: a\nbase: &pins {tensorflow: '2.15'}\nmatrix:\n  python: ['3.11']\n  include:\n    - *pins\n"
    with pytest.raises(UsageError, match="top-level key"):  # 'base' is not a key of ours; the alias itself is fine
        parse_matrix(text, "m.yaml")


@pytest.mark.parametrize("kind", ["fifo", "device", "large", "folder"])
def test_matrix_files_that_are_no_files_or_too_large(tmp_path, kind):
    import os

    from harness.matrix import load_matrix

    if kind == "fifo":
        path = tmp_path / "m.yaml"
        os.mkfifo(path)
        expected = "is a FIFO"
    elif kind == "device":
        path, expected = Path("/dev/zero"), "is a device"
    elif kind == "large":
        path = tmp_path / "m.yaml"
        with open(path, "wb") as handle:
            handle.truncate(2 << 20)
        expected = "larger than any matrix file"
    else:
        path, expected = tmp_path, "is a folder"
    with pytest.raises(UsageError, match=expected):
        load_matrix(path)


def test_a_matrix_of_only_include_entries_runs_each_entry():
    # GitHub Actions: with no axes, every include entry is a job of its own (they do not merge).
    got = combos(
        """
        matrix:
          include:
            - tensorflow: "2.15"
            - tensorflow: "2.16"
              tf-keras: "2.16"
            - tensorflow: "2.17"
            - tensorflow: "2.18"
        """
    )
    assert got == [{"tensorflow": "2.15"}, {"tensorflow": "2.16", "tf-keras": "2.16"}, {"tensorflow": "2.17"}, {"tensorflow": "2.18"}]


def test_a_typo_in_an_axis_name_gets_a_did_you_mean():
    m = parse(
        """
        matrix:
          tensorflwo: ["2.15"]
        """
    )
    with pytest.raises(UsageError) as err:
        expand_versions(m, combinations(m), lambda n, p: [])  # the index knows no such package
    assert "m.yaml:3" in str(err.value)
    assert "did you mean 'tensorflow'?" in str(err.value)
    with pytest.raises(UsageError) as err:  # a real name without releases for this Python: no guess
        expand_versions(parse("matrix:\n  tensorflow-addons: ['0.23']\n"), combinations(parse("matrix:\n  tensorflow-addons: ['0.23']\n")), lambda n, p: [])
    assert "did you mean" not in str(err.value)


def test_a_keras_backend_axis_makes_keras_3_cells_on_each_framework():
    """keras-backend: [tensorflow, jax, torch] sets KERAS_BACKEND, loads with Keras 3's own API and
    installs the framework unless the matrix pins it; exclude and include name it like any axis."""
    m = parse(
        """
        matrix:
          keras: ["3.15.1"]
          keras-backend: [tensorflow, jax, torch]
          exclude:
            - {keras-backend: torch}
          include:
            - {keras-backend: jax, jax: "0.7.2"}
        packages: {tensorflow: tensorflow-cpu}
        """
    )
    cells = expand_versions(m, combinations(m), lambda n, p: [Version("3.15.1"), Version("0.7.2")])
    by_id = {c.id: c for c in cells}
    py = f"py{HOST_PYTHON}"
    assert sorted(by_id) == [f"{py}-keras3.15.1-jax0.7.2-on-jax", f"{py}-keras3.15.1-on-tensorflow"]
    on_tf = next(c for c in cells if c.backend == "tensorflow")
    on_jax = next(c for c in cells if c.backend == "jax")
    assert on_tf.api == "keras" and dict(on_tf.env) == {"KERAS_BACKEND": "tensorflow"}
    assert on_tf.requirements({"tensorflow": "tensorflow-cpu"}) == ["keras==3.15.1", "tensorflow-cpu"]
    assert on_jax.requirements({}) == ["keras==3.15.1", "jax==0.7.2"]  # pinned by the include: not added again
    assert not any(c.backend == "torch" for c in cells)  # excluded
    with pytest.raises(UsageError, match="unknown Keras backend 'mxnet'"):
        parse("matrix:\n  keras: ['3.15.1']\n  keras-backend: [mxnet]\n")
    clash = parse("matrix:\n  keras: ['3.15.1']\n  keras-backend: [jax]\n  api: [tf_keras]\n")
    with pytest.raises(UsageError, match="load with Keras 3's own API"):
        expand_versions(clash, combinations(clash), lambda n, p: [Version("3.15.1")])
