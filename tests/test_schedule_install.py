"""The install line of a generated CI file: the Docker backend's extra comes with it (fast;
the generated workflows themselves run in tests/test_schedule.py)."""

from __future__ import annotations

from pathlib import Path

from harness.schedule import Schedule


def test_the_docker_backend_installs_the_docker_extra():
    git = "harness @ git+https://github.com/your-org/harness@v0.1.0"
    plain = Schedule(Path("m.yaml"), (Path("m.h5"),), install=git)
    assert plain.install_command() == f"python -m pip install '{git}'"
    docker = Schedule(Path("m.yaml"), (Path("m.h5"),), install=git, backend="docker")
    assert docker.install_command() == "python -m pip install 'harness[docker] @ git+https://github.com/your-org/harness@v0.1.0'"
    local = Schedule(Path("m.yaml"), (Path("m.h5"),), install="./vendor/harness", backend="docker")
    assert local.install_command() == "python -m pip install ./vendor/harness 'docker>=7'"
