"""The package's import graph: no circle between modules, and the concrete backends stay
behind the registry (harness.backends)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "harness"
CONCRETE = {"harness.backends.uv", "harness.backends.docker"}
CONCRETE_ALLOWED: set[str] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports() -> dict[str, set[str]]:
    """Every module each module imports, at any depth of its code (lazy imports count)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module or ""
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    graph[name].add(target if target in mods else base)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names)
        graph[name] &= set(mods)
        graph[name].discard(name)
    return graph


def test_no_import_circle_between_modules():
    graph = imports()

    def own_package(a: str, b: str) -> bool:  # a package and its own submodule import each other by design
        return a.startswith(b + ".") or b.startswith(a + ".")

    circles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for target in graph[node]:
                if target == start and not (len(path) == 2 and own_package(*path)):
                    circles.append(" -> ".join([*path, start]))
                elif target > start and target not in path:
                    stack.append((target, [*path, target]))
    assert circles == []


def test_no_concrete_backend_is_imported_outside_the_backends():
    graph = imports()
    outside = {m for m, targets in graph.items() if targets & CONCRETE and not m.startswith("harness.backends")}
    assert outside <= CONCRETE_ALLOWED, outside - CONCRETE_ALLOWED


def test_every_subpackage_is_installed():
    """pyproject.toml lists the packages (a wheel holds only those): a new folder must be in it."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, found - listed
