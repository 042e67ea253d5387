"""bytecode.py: each source compiled once per Python, shared between environments by its hash.

Run as the uv backend runs it (`python -I -S bytecode.py STORE ENV`) on environments laid
out as venvs are; the real TensorFlow environments go through it in every e2e test, and
test_e2e_uv checks their sharing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from harness.backends.uv import BYTECODE, BYTECODE_STORE, UvBackend

SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def make_env(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / SITE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def compile_env(store: Path, env: Path, jobs: int = 1) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(BYTECODE), str(store), str(env), "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        check=True,
    )
    total = {"compiled": 0, "shared": 0, "failed": 0, "skipped": 0}
    for line in done.stdout.splitlines():
        for key, value in json.loads(line).items():
            total[key] += value
    return total


def pyc(env: Path, rel: str) -> Path:
    return Path(importlib.util.cache_from_source(str(env / SITE / rel)))


def run_in(env: Path, code: str) -> str:
    """`code` with only the environment's site-packages added, writing no bytecode of its own."""
    env_vars = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(env / SITE)}
    return subprocess.run([sys.executable, "-c", code], env=env_vars, capture_output=True, text=True, check=True).stdout


def test_a_source_in_two_environments_is_compiled_once_and_each_names_its_own_file(tmp_path):
    same = "def where():\n    return where.__code__.co_filename\n"
    a = make_env(tmp_path / "a", {"pkg/__init__.py": "", "pkg/same.py": same, "pkg/own.py": "X = 'a'\n"})
    b = make_env(tmp_path / "b", {"pkg/__init__.py": "", "pkg/same.py": same, "pkg/own.py": "X = 'b'\n"})
    store = tmp_path / "store"

    assert compile_env(store, a) == {"compiled": 3, "shared": 0, "failed": 0, "skipped": 0}
    assert compile_env(store, b) == {"compiled": 1, "shared": 2, "failed": 0, "skipped": 0}  # own.py differs

    assert pyc(a, "pkg/same.py").stat().st_ino == pyc(b, "pkg/same.py").stat().st_ino
    assert pyc(a, "pkg/own.py").stat().st_ino != pyc(b, "pkg/own.py").stat().st_ino
    data = pyc(b, "pkg/same.py").read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER and data[4:8] == b"\x01\x00\x00\x00"  # hash-based, unchecked
    assert data[8:16] == importlib.util.source_hash(same.encode())
    # Python renames the shared code for the module it loads: tracebacks name b's own file.
    assert run_in(b, "import pkg.same; print(pkg.same.where())").strip() == str(b / SITE / "pkg" / "same.py")
    assert run_in(b, "import pkg.own; print(pkg.own.X)").strip() == "b"
    # The bytecode is what runs (unchecked: an environment is never changed once built; this
    # edit stands in for nothing real, it only shows the import did not compile the source).
    (b / SITE / "pkg" / "own.py").write_text("X = 'edited'\n")
    assert run_in(b, "import pkg.own; print(pkg.own.X)").strip() == "b"


def test_tests_are_left_out_and_a_source_that_does_not_compile_gets_no_bytecode(tmp_path):
    env = make_env(
        tmp_path / "env",
        {
            "pkg/__init__.py": "",
            "pkg/tests/test_x.py": "assert True\n",
            "pkg/ops_test.py": "assert True\n",
            "pkg/conftest.py": "",
            "pkg/test_util.py": "Y = 1\n",  # TensorFlow imports its test_util: compiled
            "pkg/broken.py": "def f(:\n",
        },
    )
    counts = compile_env(tmp_path / "store", env)
    assert counts == {"compiled": 2, "shared": 0, "failed": 1, "skipped": 3}
    assert pyc(env, "pkg/test_util.py").exists() and pyc(env, "pkg/__init__.py").exists()
    for rel in ("pkg/tests/test_x.py", "pkg/ops_test.py", "pkg/conftest.py", "pkg/broken.py"):
        assert not pyc(env, rel).exists(), rel
    broken = subprocess.run(
        [sys.executable, "-c", "import pkg.broken"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(env / SITE)},
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 1 and "SyntaxError" in broken.stderr  # what the import always said


def test_workers_split_the_files_and_only_the_environments_own_site_packages_is_touched(tmp_path):
    outside = make_env(tmp_path / "base", {"elsewhere.py": "Z = 1\n"})
    files = {f"pkg/m{i:03d}.py": f"V = {i}\n" for i in range(450)}
    env = make_env(tmp_path / "env", {"pkg/__init__.py": "", **files})
    (env / "lib64").symlink_to(outside / "lib")  # a link that leads out of the environment is not followed

    counts = compile_env(tmp_path / "store", env, jobs=3)
    assert counts == {"compiled": 451, "shared": 0, "failed": 0, "skipped": 0}
    assert all(pyc(env, rel).exists() for rel in files)
    assert not pyc(outside, "elsewhere.py").exists()
    again = compile_env(tmp_path / "store", env, jobs=3)  # a continued build: linked again, nothing compiled
    assert again == {"compiled": 0, "shared": 451, "failed": 0, "skipped": 0}


def test_gc_drops_the_bytecode_no_environment_links(tmp_path):
    backend = UvBackend(root=tmp_path / "envs")
    store = backend.root / BYTECODE_STORE
    keep = make_env(backend.root / "keep", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n"})
    gone = make_env(backend.root / "gone", {"pkg/__init__.py": "", "pkg/b.py": "B = 1\n"})
    for env in (keep, gone):
        compile_env(store, env)
        (env / "harness-env.json").write_text("{}")
    stale = next(store.glob("*/*/*.pyc")).with_suffix(".pyc.1.tmp")
    stale.write_bytes(b"left by a killed build")
    os.utime(stale, (0, 0))

    message = backend.collect_garbage(None)  # every environment
    assert message.startswith("removed 2 environment(s) and 4 unused bytecode file(s)")  # a.py, b.py, the stale write
    assert not list(store.glob("*/*/*"))
    # Shared files stay while one environment links them.
    keep = make_env(backend.root / "keep", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n"})
    compile_env(store, keep)
    (keep / "harness-env.json").write_text("{}")
    assert backend.collect_garbage(30).endswith("and 0 unused bytecode file(s) from " + str(backend.root))
    assert len(list(store.glob("*/*/*.pyc"))) == 2
