"""Backends build an environment for an EnvSpec and run the probe in it.

One Protocol, one class per backend, chosen by name (as nox chooses venv/uv/conda).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import proc
from ..errors import BackendUnavailable
from ..plan import EnvSpec


class EnvBuildFailed(Exception):
    """The environment could not be built. `infra` means network or disk, not the pins."""

    def __init__(self, message: str, infra: bool):
        super().__init__(message)
        self.infra = infra


@dataclass(frozen=True)
class Prepared:
    env: EnvSpec
    location: str  # a venv folder, an image tag
    reused: bool
    seconds: float
    log: str | None = None  # the build log, when there was a build


class Backend(Protocol):
    name: str

    @property
    def fingerprint(self) -> str:
        """What besides Python and the lock goes into an environment (e.g. a template)."""
        ...

    def check(self) -> None:
        """Raise BackendUnavailable with a one-line reason when this backend cannot run."""

    def python_available(self, version: str) -> bool: ...

    def skip_reason(self, version: str) -> str: ...

    def describe(self, env: EnvSpec) -> str | None:
        """What would be built, for --dry-run (a rendered Dockerfile), if anything."""
        ...

    def prepare(self, env: EnvSpec) -> Prepared: ...

    def run_probe(
        self, prepared: Prepared, request: Mapping[str, Any], workdir: Path, env_vars: Mapping[str, str], timeout: float
    ) -> proc.Completed:
        """Run the probe on `request` (host paths); its JSON result lands in workdir/result.json."""
        ...

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run a user's (trusted) build script as `python SCRIPT OUTDIR` in the environment."""
        ...


def get_backend(name: str, docker: Mapping[str, Any] | None = None, matrix_path: Path | None = None) -> Backend:
    """The backend called `name` (uv, docker, auto), checked; `docker` is the matrix's docker section."""
    from .docker import DockerBackend, DockerSettings, daemon_answers
    from .uv import UvBackend

    if name == "auto":
        name = "docker" if daemon_answers() else "uv"
    if name == "uv":
        uv = UvBackend()
        uv.check()
        return uv
    if name == "docker":
        backend = DockerBackend(DockerSettings.from_matrix(docker or {}, matrix_path))
        backend.check()
        return backend
    raise BackendUnavailable(f"unknown backend '{name}' (use uv, docker or auto)")
