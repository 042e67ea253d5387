"""Backends build an environment for an EnvSpec and run the probe in it.

One Protocol (base.py), one class per backend, found by name in a registry (as nox chooses
venv/uv/conda). Nothing outside this package imports a concrete backend: a new one
(Podman, say) is a module here with a `create(config)` and a line in BACKENDS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable
from .base import (
    MODEL_DIR,
    PROBE_DIR,
    REPRODUCER,
    Backend,
    BackendConfig,
    EnvBuildFailed,
    Prepared,
    Reproducer,
    cell_request,
)

__all__ = [
    "BACKENDS",
    "MODEL_DIR",
    "PROBE_DIR",
    "Backend",
    "BackendConfig",
    "EnvBuildFailed",
    "Prepared",
    "Reproducer",
    "backend_names",
    "cell_request",
    "create_backend",
    "get_backend",
    "register",
    "reproducer",
]


# name -> "module:factory"; each factory takes a BackendConfig and returns an unchecked backend.
BACKENDS: dict[str, str | Callable[[BackendConfig], Backend]] = {
    "uv": "harness.backends.uv:create",
    "docker": "harness.backends.docker:create",
}


def register(name: str, factory: str | Callable[[BackendConfig], Backend]) -> None:
    """Add a backend (tests register a fake one at this seam)."""
    BACKENDS[name] = factory


def backend_names() -> tuple[str, ...]:
    return ("auto", *BACKENDS)


def create_backend(name: str, config: BackendConfig | None = None) -> Backend:
    """The backend called `name`, not yet checked (for commands that only read its cache)."""
    if name == "auto":
        from .docker import daemon_answers

        name = "docker" if daemon_answers() else "uv"
    factory = BACKENDS.get(name)
    if factory is None:
        raise BackendUnavailable(f"unknown backend '{name}' (use {', '.join(backend_names())})")
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory(config or BackendConfig())


def reproducer(settings: Mapping[str, Any] | None = None, check: bool = False) -> Reproducer:
    """The backend that writes reproductions, with a run's recorded settings (settings_record)."""
    backend = create_backend(REPRODUCER, BackendConfig({k: v for k, v in (settings or {}).items() if v is not None}))
    if not isinstance(backend, Reproducer):
        raise BackendUnavailable(f"the {REPRODUCER} backend cannot write reproductions")
    if check:
        backend.check()
    return backend


def get_backend(
    name: str,
    docker: Mapping[str, Any] | None = None,
    matrix_path: Path | None = None,
    sandbox: str = "auto",
    limits: Any = None,
    python_downloads: bool = False,
) -> Backend:
    """The backend called `name` (see BACKENDS, or auto), checked; `docker` is the matrix's docker section."""
    backend = create_backend(name, BackendConfig(dict(docker or {}), matrix_path, sandbox, limits, python_downloads))
    backend.check()
    return backend
