"""Backends build an environment for an EnvSpec and run the probe in it.

One Protocol, one class per backend, chosen by name (as nox chooses venv/uv/conda).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

    @property
    def sandbox(self) -> str:
        """What contains a cell's code here: bwrap, docker, none."""
        ...

    def run_probe(self, prepared: Prepared, request: Mapping[str, Any], env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run the probe on `request` (host paths) in a sandbox; its result channel is the stdout."""
        ...

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run a user's (trusted) build script as `python SCRIPT OUTDIR` in the environment."""
        ...


PROBE_DIR = "/harness"  # inside a cell: the probe, its request, the user's custom objects and input
MODEL_DIR = "/models"


def cell_request(request: Mapping[str, Any], place: Callable[[str, str], str], workdir: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The probe request with the paths the cell sees, and the read-only mounts (inside -> host).

    `place(host, wanted)` says which path the cell uses: `wanted` in a sandbox that
    remaps (bwrap, Docker), the host path without one. Each file gets a fixed name, so
    nothing of the host's layout (a user name, a project path) reaches the cell.
    """
    inner = dict(request, workdir=workdir)
    inner.pop("out", None)
    mounts: dict[str, str] = {}

    def show(host: str, wanted: str) -> str:
        path = place(host, wanted)
        mounts[path] = host
        return path

    inner["models"] = [dict(m, path=show(m["path"], f"{MODEL_DIR}/{m['key']}{Path(m['path']).suffix}")) for m in request["models"]]
    if request.get("custom_objects"):
        inner["custom_objects"] = show(request["custom_objects"], f"{PROBE_DIR}/custom_objects.py")
    if request.get("input"):
        inner["input"] = show(request["input"], f"{PROBE_DIR}/input{Path(request['input']).suffix}")
    return inner, mounts


def get_backend(
    name: str, docker: Mapping[str, Any] | None = None, matrix_path: Path | None = None, sandbox: str = "auto", limits: Any = None
) -> Backend:
    """The backend called `name` (uv, docker, auto), checked; `docker` is the matrix's docker section."""
    from .docker import DockerBackend, DockerSettings, daemon_answers
    from .uv import UvBackend

    if name == "auto":
        name = "docker" if daemon_answers() else "uv"
    if name == "uv":
        from ..sandbox import get_sandbox

        uv = UvBackend(sandbox=get_sandbox(sandbox), limits=limits)
        uv.check()
        return uv
    if name == "docker":
        backend = DockerBackend(DockerSettings.from_matrix(docker or {}, matrix_path))
        backend.check()
        return backend
    raise BackendUnavailable(f"unknown backend '{name}' (use uv, docker or auto)")
