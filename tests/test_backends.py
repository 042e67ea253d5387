"""The backend registry and the parts of the Protocol every backend answers (no TensorFlow)."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from harness import backends, cli
from harness.backends import BackendConfig, backend_names, create_backend, register
from harness.errors import BackendUnavailable


def test_backends_are_found_by_name_and_a_new_one_is_one_registration(monkeypatch):
    assert backend_names()[:3] == ("auto", "uv", "docker")
    made = []

    class Fake:
        name = "fake"

    def factory(config: BackendConfig) -> Fake:
        made.append(config)
        return Fake()

    monkeypatch.setattr(backends, "BACKENDS", dict(backends.BACKENDS))
    register("fake", factory)
    assert isinstance(create_backend("fake", BackendConfig(sandbox="none")), Fake)
    assert made[0].sandbox == "none" and "fake" in backend_names()
    with pytest.raises(BackendUnavailable, match="unknown backend 'podman' \\(use auto, uv, docker, fake\\)"):
        create_backend("podman")


def test_uv_settings_and_garbage_collection(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    uv = create_backend("uv", BackendConfig(sandbox="none"))
    assert uv.settings_record() == {}  # the run records the sandbox already
    config = pickle.loads(pickle.dumps(uv.portable_config()))  # what a cluster worker gets
    assert config.sandbox == "none" and config.limits == uv.limits
    envs = tmp_path / "envs"
    for name, age_days in (("old", 40), ("new", 1)):
        (envs / name).mkdir(parents=True)
        marker = envs / name / "harness-env.json"
        marker.write_text("{}")
        stamp = time.time() - age_days * 86400
        os.utime(marker, (stamp, stamp))
    (envs / "half-built").mkdir()  # no marker: never finished, removed
    assert uv.collect_garbage(30) == f"removed 2 environment(s) and 0 unused bytecode file(s) from {envs}"
    assert sorted(p.name for p in envs.iterdir()) == ["new"]
    assert cli.main(["gc", "--all"]) == 0 and not list(envs.iterdir())


@pytest.mark.e2e
def test_an_interrupted_uv_build_is_continued_and_a_finished_one_never_rebuilt(tmp_path):
    """A run killed while `uv pip sync` ran leaves .building-<key> with part of the lock
    installed (made here as uv leaves it); the next prepare continues that venv: what was
    installed stays, the rest is added, and a finished environment is reused."""
    import subprocess

    from harness.backends.uv import UvBackend
    from harness.plan import EnvSpec
    from harness.resolve import uv_bin

    backend = UvBackend(root=tmp_path / "envs")
    spec = EnvSpec("3.11", "idna==3.7\nsix==1.16.0\n", "uv", backend.fingerprint)
    partial = tmp_path / "envs" / f".building-{spec.key}"
    subprocess.run([uv_bin(), "venv", "-q", "--relocatable", "--python", "3.11", str(partial)], check=True)
    subprocess.run([uv_bin(), "pip", "install", "-q", "--python", str(partial / "bin" / "python"), "six==1.16.0"], check=True)
    (partial / "left-by-the-killed-run").write_text("")  # a rebuild from zero would not keep it

    prepared = backend.prepare(spec)
    built = tmp_path / "envs" / spec.key
    assert not prepared.reused and Path(prepared.location) == built and not partial.exists()
    assert (built / "left-by-the-killed-run").exists()  # continued, not started over
    assert next(built.glob("lib/python3.11/site-packages/six.py"))
    assert next(built.glob("lib/python3.11/site-packages/idna/__init__.py"))  # and completed
    compiled = next(built.glob("lib/python3.11/site-packages/idna/__pycache__/__init__.*.pyc"))  # at build time
    assert compiled.read_bytes()[4:8] == b"\x01\x00\x00\x00" and compiled.stat().st_nlink == 2  # hash-based, in the store too
    again = backend.prepare(spec)
    assert again.reused and (built / "left-by-the-killed-run").exists()


def test_without_the_docker_extra_the_error_names_it(tmp_path):
    """docker-py is the docker extra: the default backend never imports it; asking for Docker
    without it says what to install, never that no daemon answers."""
    import subprocess
    import sys

    models = Path(__file__).resolve().parent.parent / "examples" / "models"
    (tmp_path / "m.yaml").write_text("matrix:\n  tensorflow: ['2.15.1']\n")
    code = "import sys; sys.modules['docker'] = None; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    expected = (
        "harness: error: --backend docker needs the Docker SDK for Python, which is not installed: "
        "pip install 'harness[docker]' (the docker extra)"
    )
    for argv in (
        ["run", str(tmp_path / "m.yaml"), str(models / "dense.h5"), "--backend", "docker"],
        ["images", "base", "--python", "3.11"],
    ):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert (done.returncode, done.stderr.strip().splitlines()) == (4, [expected]), argv


def test_uvs_own_setting_allows_python_downloads(tmp_path):
    from harness.backends.uv import python_downloads_allowed

    home = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    assert not python_downloads_allowed(home, project)  # uv's default is not the user's word
    assert python_downloads_allowed({**home, "UV_PYTHON_DOWNLOADS": "automatic"}, project)
    assert not python_downloads_allowed({**home, "UV_PYTHON_DOWNLOADS": "never"}, project)
    (tmp_path / "config" / "uv").mkdir(parents=True)
    (tmp_path / "config" / "uv" / "uv.toml").write_text('python-downloads = "manual"\n')
    assert python_downloads_allowed(home, project)
    (tmp_path / "project" / "pyproject.toml").write_text('[tool.uv]\npython-downloads = "never"\n')
    assert not python_downloads_allowed(home, project)  # the project's setting comes first
    assert python_downloads_allowed({**home, "UV_PYTHON_DOWNLOADS": "automatic"}, project)  # and the environment before it


def test_a_found_interpreter_is_remembered_and_looked_for_again_when_gone(tmp_path, monkeypatch):
    """A re-run starts no `uv python find`: the path found is kept (an hour, same PATH and
    folder); a kept path that is gone is looked for again and the new one kept, and a Python
    not found is never kept."""
    import sys

    from harness.backends.uv import UvBackend

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    real = UvBackend._find

    def counted(self, version):
        calls.append(version)
        return real(self, version)

    monkeypatch.setattr(UvBackend, "_find", counted)
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    first = UvBackend(root=tmp_path / "envs").interpreter(mine)
    assert first and calls == [mine]
    assert UvBackend(root=tmp_path / "envs").interpreter(mine) == first and calls == [mine]  # another run: kept
    assert UvBackend(root=tmp_path / "envs").interpreter("3.99") is None
    assert UvBackend(root=tmp_path / "envs").interpreter("3.99") is None and calls == [mine, "3.99", "3.99"]  # a no is asked again

    fake = tmp_path / "python-gone"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(UvBackend, "_find", lambda self, version: str(fake))
    monkeypatch.chdir(tmp_path)  # another folder: another answer is kept
    assert UvBackend(root=tmp_path / "envs").interpreter(mine) == str(fake)
    fake.unlink()
    monkeypatch.setattr(UvBackend, "_find", counted)
    again = UvBackend(root=tmp_path / "envs").interpreter(mine)  # gone: looked for again
    assert again and again != str(fake) and calls[-1] == mine and len(calls) == 4
    assert UvBackend(root=tmp_path / "envs").interpreter(mine) == again and len(calls) == 4  # and the new answer is kept
    # (uv answers per folder: here, outside the repository's .venv, another interpreter than `first`)
