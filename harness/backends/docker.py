"""Docker backend: an image per environment key, rendered from a Jinja2 template, and a
sandboxed container per probe run.

Images are tagged `harness-env:<key>`, built once and reused across runs and models; a
failed build is never tagged. Containers run with no network, a read-only root, a
tmpfs /tmp, every capability dropped, no-new-privileges, a non-root user and memory,
CPU and pids limits; the model and the probe are mounted read-only, and the container
is removed whatever happens (timeout, OOM, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from .. import proc
from ..errors import BackendUnavailable, UsageError
from ..paths import cache_dir
from ..plan import EnvSpec
from ..resolve import IndexConfig
from . import EnvBuildFailed, Prepared

PROBE = Path(__file__).resolve().parent.parent / "probe.py"
REPO_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "dockerfiles"
IMAGE_REPOSITORY = "harness-env"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
UID = 10001
VENV = "/opt/harness/venv"
PROBE_DIR = "/harness"
OOM_MARKER = "harness: the container was killed for exceeding its memory limit (out of memory)"
_NETWORK_HINTS = (
    "Temporary failure in name resolution",
    "Connection refused",
    "ConnectTimeout",
    "timed out",
    "Network is unreachable",
    "Could not fetch URL",
    "Failed to establish a new connection",
    "no space left on device",
    "error sending request",
)
_UNRESOLVABLE_HINTS = (
    "No matching distribution found",
    "ResolutionImpossible",
    "Could not find a version that satisfies",
    "No solution found",
    "is not a supported wheel on this platform",
    "requires a different Python",
)


@dataclass(frozen=True)
class DockerSettings:
    template: str = "default"  # a name in dockerfiles/ or a path to a .j2 file
    base_image: str = "python:{python}-slim"
    memory: str = "4g"
    cpus: float = 1.0
    pids: int = 512

    @classmethod
    def of_run(cls, doc: Mapping[str, Any]) -> DockerSettings:
        """The settings a results document was made with (defaults for a uv run)."""
        return cls(**(doc.get("run", {}).get("docker") or {}))

    @classmethod
    def from_matrix(cls, doc: Mapping[str, Any], path: Path | None = None) -> DockerSettings:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(doc) - allowed
        if unknown:
            raise UsageError(
                f"{path or 'matrix'}: unknown docker option(s) {', '.join(sorted(unknown))} (expected: {', '.join(sorted(allowed))})"
            )
        settings = cls(**{k: v for k, v in doc.items() if v is not None})
        if path and not Path(settings.template).suffix and not template_path(settings.template).exists():
            raise UsageError(
                f"{path}: docker template '{settings.template}' not found (built in: {', '.join(builtin_templates())}; or give a path)"
            )
        if path and Path(settings.template).suffix:  # a user's file, relative to the matrix
            settings = replace(settings, template=str((path.parent / settings.template).resolve()))
        return settings


def builtin_templates() -> list[str]:
    return sorted(p.name.removesuffix(".Dockerfile.j2") for p in _template_dir().glob("*.Dockerfile.j2"))


def _template_dir() -> Path:
    if REPO_TEMPLATES.is_dir():  # a checkout or an editable install
        return REPO_TEMPLATES
    return Path(str(resources.files("harness").joinpath("dockerfiles")))


def template_path(template: str) -> Path:
    candidate = Path(template)
    if candidate.suffix:
        return candidate
    return _template_dir() / f"{template}.Dockerfile.j2"


def render_dockerfile(env: EnvSpec, settings: DockerSettings, index: IndexConfig, ca_file: str | None) -> str:
    path = template_path(settings.template)
    if not path.exists():
        raise UsageError(f"docker template {path} does not exist")
    loader = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    context = template_context(env, settings, index, ca_file)
    try:
        return loader.from_string(path.read_text()).render(**context)
    except jinja2.TemplateError as exc:
        raise UsageError(f"{path}: cannot render the template: {exc}") from None


def template_context(env: EnvSpec, settings: DockerSettings, index: IndexConfig, ca_file: str | None) -> dict[str, Any]:
    """What a template sees (documented in the README)."""
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", env.lock, re.M))
    return {
        "python": env.python,
        "base_image": settings.base_image.format(python=env.python),
        "lock": env.lock,
        "pins": pins,
        "requirements_file": "requirements.lock",
        "index_args": " ".join(index.uv_args()),
        "ca_file": ca_file,
        "env_key": env.key,
        "venv": VENV,
        "probe_dir": PROBE_DIR,
        "user": "harness",
        "uid": UID,
    }


class DockerBackend:
    name = "docker"

    def __init__(self, settings: DockerSettings | None = None, index: IndexConfig | None = None, client: Any = None):
        self.settings = settings or DockerSettings()
        self.index = index or IndexConfig.from_env()
        self._client = client
        self._live: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._session = uuid.uuid4().hex[:12]
        self._bases: dict[str, bool] = {}
        self._building: dict[str, threading.Lock] = {}
        self.logs = cache_dir() / "docker-builds"

    @property
    def fingerprint(self) -> str:
        """What besides Python and the lock goes into an image: the template and the base."""
        text = (
            template_path(self.settings.template).read_text() if template_path(self.settings.template).exists() else self.settings.template
        )
        return hashlib.sha256(f"{text}\0{self.settings.base_image}".encode()).hexdigest()[:16]

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def check(self) -> None:
        self.client  # noqa: B018 - connecting is the check
        proc.add_stop_hook(self.stop)

    def python_available(self, version: str) -> bool:
        base = self.settings.base_image.format(python=version)
        if base not in self._bases:
            self._bases[base] = self._has_image(base) or self._pull(base)
        return self._bases[base]

    def skip_reason(self, version: str) -> str:
        from ..images import SUITES

        base = self.settings.base_image.format(python=version)
        if version in SUITES:
            how = f"build one with `harness images base --python {version}` and pass --base-image 'harness-base:py{{python}}'"
        else:
            how = f"pass --base-image with an image that has Python {version} (harness images base makes {', '.join(SUITES)})"
        return f"base image {base} is not available and cannot be pulled: {how}"

    def _has_image(self, name: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _pull(self, name: str) -> bool:
        import docker.errors

        try:
            self.client.images.pull(name)
            return True
        except docker.errors.APIError:
            return False

    def image_tag(self, env: EnvSpec) -> str:
        return f"{IMAGE_REPOSITORY}:{env.key}"

    def describe(self, env: EnvSpec) -> str:
        """The rendered Dockerfile (what --dry-run prints)."""
        return render_dockerfile(env, self.settings, self.index, "ca-certificates.crt" if HOST_CA.exists() else None)

    def prepare(self, env: EnvSpec) -> Prepared:
        start = time.monotonic()
        tag = self.image_tag(env)
        with self._lock:
            key_lock = self._building.setdefault(env.key, threading.Lock())
        with key_lock:  # cells sharing an image wait for one build
            return self._prepare(env, tag, start)

    def _prepare(self, env: EnvSpec, tag: str, start: float) -> Prepared:
        if self._has_image(tag):
            log = self.logs / f"{env.key}.log"
            return Prepared(env, tag, True, time.monotonic() - start, log=str(log) if log.exists() else None)
        try:
            log = self._build(env, tag)
        except EnvBuildFailed as first:
            if not first.infra:
                raise
            log = self._build(env, tag)  # network and disk hiccups get one retry
        return Prepared(env, tag, False, time.monotonic() - start, log=str(log))

    def _build(self, env: EnvSpec, tag: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{env.key}.log"
        with tempfile.TemporaryDirectory(prefix="harness-build-") as context:
            ca = "ca-certificates.crt" if HOST_CA.exists() else None
            if ca:
                shutil.copy(HOST_CA, Path(context) / ca)
            (Path(context) / "requirements.lock").write_text(env.lock)
            dockerfile = render_dockerfile(env, self.settings, self.index, ca)
            (Path(context) / "Dockerfile").write_text(dockerfile)
            ok, output = self.build_folder(Path(context), tag)
        log.write_text(output)
        if not ok:
            tail = "\n".join(output.strip().splitlines()[-25:])
            raise EnvBuildFailed(f"docker build failed (log: {log}):\n{tail}", infra=is_infra_failure(output))
        return log

    def build_folder(self, folder: Path, tag: str) -> tuple[bool, str]:
        """Build a folder holding a Dockerfile: Engine API, or the CLI with BuildKit for cache mounts."""
        if "--mount=" in (folder / "Dockerfile").read_text():
            return self._build_with_cli(str(folder), tag)
        return self._build_with_api(str(folder), tag)

    def _build_with_api(self, context: str, tag: str) -> tuple[bool, str]:
        import docker.errors

        lines: list[str] = []
        try:
            for chunk in self.client.api.build(path=context, tag=tag, network_mode="host", rm=True, forcerm=True, decode=True, pull=False):
                if "stream" in chunk:
                    lines.append(chunk["stream"].rstrip("\n"))
                if "error" in chunk:
                    lines.append(chunk["error"])
                    return False, "\n".join(lines)
        except docker.errors.APIError as exc:
            lines.append(str(exc))
            return False, "\n".join(lines)
        return True, "\n".join(lines)

    def _build_with_cli(self, context: str, tag: str) -> tuple[bool, str]:
        done = proc.run(
            [buildkit_cli(), "build", "--network", "host", "--progress", "plain", "-t", tag, context],
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            timeout=3600,
        )
        return done.ok, done.stdout + done.stderr

    def run_probe(
        self, prepared: Prepared, request: Mapping[str, Any], workdir: Path, env_vars: Mapping[str, str], timeout: float
    ) -> proc.Completed:
        """Run the probe in a sandboxed container; paths in the request become container paths."""
        inner, mounts = container_request(request)
        mounts[str(PROBE)] = {"bind": f"{PROBE_DIR}/probe.py", "mode": "ro"}
        mounts[str(workdir)] = {"bind": "/work", "mode": "rw"}
        (workdir / "request.json").write_text(json.dumps(inner))
        os.chmod(workdir, 0o777)  # the container's user (uid 10001) writes its result here
        return self.run_container(
            prepared.location, ["python", "-I", f"{PROBE_DIR}/probe.py", "/work/request.json"], mounts, env_vars, timeout
        )

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        os.chmod(outdir, 0o777)  # written by the container's user
        mounts = {str(script.resolve()): {"bind": f"{PROBE_DIR}/build.py", "mode": "ro"}, str(outdir): {"bind": "/work", "mode": "rw"}}
        return self.run_container(prepared.location, ["python", f"{PROBE_DIR}/build.py", "/work"], mounts, env_vars, timeout)

    def run_container(
        self, image: str, command: list[str], mounts: Mapping[str, Any], env_vars: Mapping[str, str], timeout: float
    ) -> proc.Completed:
        """One sandboxed container, always removed: no network, read-only root, no capabilities."""
        start = time.monotonic()
        container = self.client.containers.create(
            image,
            command=command,
            user=f"{UID}:{UID}",
            working_dir="/work",
            environment={"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1", **env_vars},
            volumes=dict(mounts),
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=self.settings.memory,
            memswap_limit=self.settings.memory,
            nano_cpus=int(self.settings.cpus * 1e9),
            pids_limit=self.settings.pids,
            labels={"harness.session": self._session},
        )
        with self._lock:
            self._live[container.id] = container
        timed_out = False
        try:
            container.start()
            try:
                status = container.wait(timeout=timeout)
                code = int(status.get("StatusCode", -1))
            except Exception:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError: the timeout
                timed_out = True
                container.kill()
                code = -9
            container.reload()
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            if container.attrs.get("State", {}).get("OOMKilled"):
                stderr += f"\n{OOM_MARKER} ({self.settings.memory})\n"
                code = -9
            elif code == 137 and not timed_out:
                code = -9
        finally:
            self._remove(container)
        argv = ("docker", "run", image, *command)
        return proc.Completed(
            argv=argv, returncode=code, stdout=stdout, stderr=stderr, seconds=time.monotonic() - start, timed_out=timed_out
        )

    def _remove(self, container: Any) -> None:
        with self._lock:
            self._live.pop(container.id, None)
        with contextlib.suppress(Exception):  # already gone
            container.remove(force=True)

    def stop(self) -> None:
        """Ctrl-C: remove every container this run started."""
        with self._lock:
            live = list(self._live.values())
        for container in live:
            self._remove(container)


def is_infra_failure(build_output: str) -> bool:
    """Network or disk trouble (retry, infra-error), as opposed to pins that do not install."""
    return any(h in build_output for h in _NETWORK_HINTS) and not any(h in build_output for h in _UNRESOLVABLE_HINTS)


def container_request(request: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The probe request with container paths, and the read-only mounts that put files there."""
    inner = dict(request, out="/work/result.json")
    mounts: dict[str, Any] = {}
    models = []
    for model in request["models"]:
        target = f"/models/{model['key']}{Path(model['path']).suffix}"
        mounts[model["path"]] = {"bind": target, "mode": "ro"}
        models.append(dict(model, path=target))
    inner["models"] = models
    if request.get("custom_objects"):
        mounts[request["custom_objects"]] = {"bind": f"{PROBE_DIR}/custom_objects.py", "mode": "ro"}
        inner["custom_objects"] = f"{PROBE_DIR}/custom_objects.py"
    if request.get("input"):
        target = f"{PROBE_DIR}/input{Path(request['input']).suffix}"
        mounts[request["input"]] = {"bind": target, "mode": "ro"}
        inner["input"] = target
    return inner, mounts


@functools.cache
def buildkit_cli() -> str:
    """A docker CLI that can build with BuildKit: one with the buildx plugin, or a CLI
    older than 23 (Debian's 20.10 has BuildKit built in); newer ones without buildx refuse.
    $HARNESS_DOCKER_CLI wins."""
    explicit = os.environ.get("HARNESS_DOCKER_CLI")
    if explicit:
        return explicit
    candidates = list(dict.fromkeys(p for p in (shutil.which("docker"), "/usr/bin/docker") if p and os.path.exists(p)))
    for cli in candidates:
        if proc.run([cli, "buildx", "version"], timeout=30).ok:
            return cli
        version = proc.run([cli, "--version"], timeout=30).stdout
        found = re.search(r"version (\d+)\.", version)
        if found and int(found.group(1)) < 23:
            return cli
    raise BackendUnavailable(
        "no docker CLI here can build with BuildKit (install the buildx plugin) for the uv-cache template; use the default template"
    )


def connect() -> Any:
    """A client for the daemon DOCKER_HOST (or the default socket) names, or exit code 4."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - every way of not reaching a daemon
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise BackendUnavailable(
            f"no Docker daemon answers at {where} ({type(exc).__name__}): start one (systemctl start docker, or dockerd &) or use --backend uv"
        ) from None


def daemon_answers() -> bool:
    try:
        connect()
        return True
    except BackendUnavailable:
        return False
