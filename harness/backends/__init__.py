"""Backends build an environment for an EnvSpec and run the probe in it.

One Protocol, one class per backend, chosen by name (as nox chooses venv/uv/conda).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .. import proc
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


class Backend(Protocol):
    name: str

    def check(self) -> None:
        """Raise BackendUnavailable with a one-line reason when this backend cannot run."""

    def python_available(self, version: str) -> bool: ...

    def prepare(self, env: EnvSpec) -> Prepared: ...

    def run_probe(self, prepared: Prepared, request: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed: ...


def get_backend(name: str) -> Backend:
    from .uv import UvBackend

    backends: dict[str, type] = {"uv": UvBackend}
    if name == "auto":
        name = "uv"  # the Docker backend arrives with its own issue; auto falls back to uv
    if name not in backends:
        from ..errors import BackendUnavailable

        raise BackendUnavailable(f"backend '{name}' is not available in this version; use --backend uv")
    backend: Backend = backends[name]()
    backend.check()
    return backend
