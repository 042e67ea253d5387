"""The backend seam's Protocols and the types they share: what a backend is (Backend, and
Reproducer for `harness repro`), what it is given (BackendConfig, a ProbeRequest through
cell_request) and what it returns (Prepared, EnvBuildFailed).

Concrete backends (uv.py, docker.py) import only this module; the registry that finds
them by name is the package's __init__, which imports them lazily, so no module imports
the package that imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .. import proc
from ..plan import EnvSpec
from ..request import ProbeRequest


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
    limits: Any  # sandbox.Limits: memory, processes, file size, scratch per cell

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

    def built(self, env: EnvSpec) -> bool:
        """The environment is already here, whole (a cluster places cells where theirs is)."""
        ...

    @property
    def sandbox(self) -> str:
        """What contains a cell's code here: bwrap, docker, none."""
        ...

    def run_probe(self, prepared: Prepared, request: ProbeRequest, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run the probe on `request` (host paths) in a sandbox; its result channel is the stdout."""
        ...

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run a user's build script as `python SCRIPT OUTDIR` in the environment, contained as a
        probe is (no network, nothing of the harness's), with OUTDIR the one folder it writes."""
        ...

    def settings_record(self) -> dict[str, Any]:
        """What the run document's `run` section records of this backend (JSON), merged into it:
        Docker's settings under "docker", which repro and merge read; nothing for uv."""
        ...

    def portable_config(self) -> BackendConfig:
        """What a worker on another machine needs to create the same backend, with
        create_backend(self.name, config): plain data, no path of this machine."""
        ...

    def collect_garbage(self, older_than_days: float | None) -> str:
        """Remove cached environments unused for `older_than_days` (None: all); say what went."""
        ...


@runtime_checkable
class Reproducer(Protocol):
    """A backend that can write one cell as a folder anyone rebuilds without harness
    (`harness repro`), and rebuild and run such a folder (`--verify`)."""

    def write_build_files(self, env: EnvSpec, folder: Path, copies: Sequence[str]) -> None:
        """The files that build the cell's environment from `folder` (its lock is there as
        requirements.lock); `copies` (probe, request, custom objects) go into PROBE_DIR."""
        ...

    def reproduction_commands(
        self, python: str, env_vars: Mapping[str, str], mounts: Mapping[str, str], command: Sequence[str]
    ) -> list[str]:
        """Shell lines for the folder's README: build, then run `command` sandboxed with `mounts` (inside -> host)."""
        ...

    def ships_template(self, name: str) -> bool:
        """Whether `name` is a template the harness ships (the only kind a document may name)."""
        ...

    def build_folder(self, folder: Path, tag: str) -> tuple[bool, str]: ...

    def run_container(
        self, image: str, command: list[str], mounts: Mapping[str, str], env_vars: Mapping[str, str], timeout: float
    ) -> proc.Completed: ...


REPRODUCER = "docker"  # the backend whose folders rebuild anywhere without harness


@dataclass(frozen=True)
class BackendConfig:
    """What a command knows when it asks for a backend."""

    docker: Mapping[str, Any] = field(default_factory=dict)  # the matrix's docker section with the command line's values
    matrix_path: Path | None = None
    sandbox: str = "auto"  # auto | bwrap | none (the uv backend's)
    limits: Any = None  # sandbox.Limits
    python_downloads: bool = False  # the uv backend may install a uv-managed CPython a cell needs


PROBE_DIR = "/harness"  # inside a cell: the probe, its request, the user's custom objects and input
MODEL_DIR = "/models"


def cell_request(request: ProbeRequest, place: Callable[[str, str], str], workdir: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The probe request with the paths the cell sees, and the read-only mounts (inside -> host).

    `place(host, wanted)` says which path the cell uses: `wanted` in a sandbox that
    remaps (bwrap, Docker), the host path without one. Each file gets a fixed name, so
    nothing of the host's layout (a user name, a project path) reaches the cell.
    """
    inner = dict(request.to_json(), workdir=workdir)
    mounts: dict[str, str] = {}

    def show(host: str, wanted: str) -> str:
        path = place(host, wanted)
        mounts[path] = host
        return path

    inner["models"] = [dict(m, path=show(m["path"], f"{MODEL_DIR}/{m['key']}{_suffix(m['path'])}")) for m in inner["models"]]
    for m in inner["models"]:
        if m.get("repaired"):
            m["repaired"] = {
                major: show(host, f"{MODEL_DIR}/{m['key']}.repaired{major}{_suffix(host)}") for major, host in m["repaired"].items()
            }
    if request.custom_objects:
        inner["custom_objects"] = show(request.custom_objects, f"{PROBE_DIR}/custom_objects.py")
    if request.input:
        inner["input"] = show(request.input, f"{PROBE_DIR}/input{_suffix(request.input)}")
    return inner, mounts


def _suffix(path: str) -> str:
    """A host file's suffix as the cell sees it (.h5, .keras): letters and digits only, else none."""
    suffix = Path(path).suffix
    return suffix if suffix[1:].isalnum() and len(suffix) <= 12 else ""
