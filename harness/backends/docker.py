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
import csv
import datetime
import functools
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .. import proc
from ..activity import ChannelStages, say
from ..errors import BackendUnavailable, UsageError, redact
from ..escape import shell_word
from ..paths import cache_dir
from ..plan import EnvSpec
from ..request import ProbeRequest
from ..resolve import IndexConfig
from ..sandbox import CHANNEL_KEEP, Limits, sweep_scratch
from .base import PROBE_DIR, BackendConfig, EnvBuildFailed, Prepared, cell_request

PROBE = Path(__file__).resolve().parent.parent / "probe.py"
REPO_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "dockerfiles"
IMAGE_REPOSITORY = "harness-env"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
UID = 10001
VENV = "/opt/harness/venv"
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
    # Sandboxed, the user's templates too: a template reaches no attribute or call that could run code on this machine.
    loader = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    context = template_context(env, settings, index, ca_file)
    try:
        return loader.from_string(path.read_text()).render(**context)
    except jinja2.TemplateError as exc:  # a SecurityError of the sandbox too
        raise UsageError(f"{path}: cannot render the template: {exc}") from None


SECRET_ID = "harness-netrc"
SECRET_MOUNT = f"--mount=type=secret,id={SECRET_ID}"
SECRET_ENV = f"NETRC=/run/secrets/{SECRET_ID}"


def template_context(env: EnvSpec, settings: DockerSettings, index: IndexConfig, ca_file: str | None) -> dict[str, Any]:
    """What a template sees (documented in the README). The index URLs never carry their
    credentials: where the index wants them, `secret_mount` and `secret_env` (written after
    RUN, before the install command) hand them to pip or uv as a netrc file that BuildKit
    mounts for that one step: nothing of it is in the image, its history or the Dockerfile."""
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", env.lock, re.M))
    secret = bool(build_netrc(index))
    return {
        "secret_mount": SECRET_MOUNT if secret else "",
        "secret_env": SECRET_ENV if secret else "",
        "python": env.python,
        "base_image": settings.base_image.format(python=env.python),
        "lock": env.lock,
        "pins": pins,
        "requirements_file": "requirements.lock",
        "index_args": " ".join(index.public().explicit_args(remote_only=True)),  # a build has no uv.toml or pip.conf of its own
        "ca_file": ca_file,
        "env_key": env.key,
        "venv": VENV,
        "probe_dir": PROBE_DIR,
        "user": "harness",
        "uid": UID,
    }


def build_netrc(index: IndexConfig) -> str:
    """A netrc file of the credentials the build's indexes need (in their URLs, or found as the
    harness's own listings find them: ~/.netrc, the keyring), or "" when none needs any."""
    from ..indexes import credentials

    lines = []
    for url in index.urls:
        if url.startswith("file:"):
            continue
        parts = urllib.parse.urlsplit(url)
        found = (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password)) if parts.password else credentials(url)
        if found and parts.hostname and all(_NETRC_WORD.fullmatch(w) for w in (parts.hostname, found[0] or "-", found[1])):
            lines.append(f"machine {parts.hostname} login {found[0] or '-'} password {found[1]}\n")
    return "".join(dict.fromkeys(lines))


_NETRC_WORD = re.compile(r"[^\s\"'#]+")  # what a netrc line holds as one word (a password with a space is not written)


class DockerBackend:
    name = "docker"

    def __init__(
        self, settings: DockerSettings | None = None, index: IndexConfig | None = None, client: Any = None, limits: Limits | None = None
    ):
        self.settings = settings or DockerSettings()
        self.index = index or IndexConfig.from_env()
        self._client = client
        self._live: set[str] = set()
        self._counter = itertools.count()
        self.limits = limits or Limits.parse(self.settings.memory, self.settings.pids)
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

    def settings_record(self) -> dict[str, Any]:
        return {"docker": asdict(self.settings)}

    def portable_config(self) -> BackendConfig:
        settings = asdict(self.settings)
        if Path(self.settings.template).suffix:  # the user's own .j2 file: its text travels, not its path
            settings["template_text"] = Path(self.settings.template).read_text()
        return BackendConfig(docker=settings)  # limits follow from the settings (memory, pids)

    def collect_garbage(self, older_than_days: float | None) -> str:
        """Remove the harness's environment images not used (created) for that long; base images stay."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        listing = proc.run(
            [docker_cli(), "image", "ls", "--filter", f"reference={IMAGE_REPOSITORY}", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"],
            timeout=120,
        )
        removed = 0
        for line in listing.stdout.splitlines():
            image, _, tag = line.partition(" ")
            if cutoff is not None:
                created = self._created(image)
                if created is None or created >= cutoff:
                    continue
            if proc.run([docker_cli(), "image", "rm", tag], timeout=120).returncode == 0:
                removed += 1
        return f"removed {removed} image(s) of {IMAGE_REPOSITORY}"

    def _created(self, image: str) -> float | None:
        try:
            stamp = self.client.images.get(image).attrs.get("Created", "")
            return datetime.datetime.fromisoformat(stamp[:19]).replace(tzinfo=datetime.timezone.utc).timestamp()
        except Exception:  # noqa: BLE001 - an image we cannot date is kept
            return None

    def check(self) -> None:
        self.client  # noqa: B018 - connecting is the check
        docker_cli()
        proc.add_stop_hook(self.stop)
        self.sweep()
        sweep_scratch()

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
        """The rendered Dockerfile (what --dry-run prints), index credentials hidden."""
        return redact(render_dockerfile(env, self.settings, self.index, "ca-certificates.crt" if HOST_CA.exists() else None))

    def built(self, env: EnvSpec) -> bool:
        return self._has_image(self.image_tag(env))

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
        say("building the image")
        with tempfile.TemporaryDirectory(prefix="harness-build-") as context:
            ca = "ca-certificates.crt" if HOST_CA.exists() else None
            if ca:
                shutil.copy(HOST_CA, Path(context) / ca)
            (Path(context) / "requirements.lock").write_text(env.lock)
            dockerfile = render_dockerfile(env, self.settings, self.index, ca)
            (Path(context) / "Dockerfile").write_text(dockerfile)
            netrc = build_netrc(self.index)
            if netrc and SECRET_MOUNT not in dockerfile:
                raise UsageError(
                    f"docker template {template_path(self.settings.template)} does not use {{{{ secret_mount }}}}: the package index "
                    "needs credentials, which reach the build only through it (write `RUN {{ secret_mount }} {{ secret_env }} ...` "
                    "for the install step; they are never written into the image)"
                )
            ok, output = self.build_folder(Path(context), tag)
        output = redact(output)
        log.write_text(output)
        if not ok:
            tail = "\n".join(output.strip().splitlines()[-25:])
            raise EnvBuildFailed(f"docker build failed (log: {log}):\n{tail}", infra=is_infra_failure(output))
        return log

    # ------------------------------------------------------------------ reproductions (backends.Reproducer)

    def write_build_files(self, env: EnvSpec, folder: Path, copies: Sequence[str]) -> None:
        """A Dockerfile (and the host's CA bundle) that build the cell's image from `folder`.

        The folder is meant to be shared (a bug report): the index URLs are written without
        their credentials (as in every build); where the index wants them, the install step
        mounts a BuildKit secret, and the README's build command says how to give it."""
        ca = "ca-certificates.crt" if HOST_CA.exists() else None
        if ca:
            shutil.copy(HOST_CA, folder / ca)
        dockerfile = render_dockerfile(env, self.settings, self.index, ca)
        (folder / "Dockerfile").write_text(dockerfile + f"COPY {' '.join(copies)} {PROBE_DIR}/\n")

    def reproduction_commands(
        self, python: str, env_vars: Mapping[str, str], mounts: Mapping[str, str], command: Sequence[str]
    ) -> list[str]:
        """`mounts`: inside path -> a file name in $MODEL_DIR (plain names: repro.PLAIN_NAME)."""
        tag = f"harness-repro:{python}"
        envs = " ".join(f"-e {shell_word(f'{k}={v}')}" for k, v in env_vars.items())
        volumes = " ".join(f'-v "$MODEL_DIR"/{shell_word(f"{host}:{inside}:ro")}' for inside, host in mounts.items())
        secret = bool(build_netrc(self.index))
        needs = "its package index" + (", and a netrc file with the index's credentials" if secret else "")
        build = f"DOCKER_BUILDKIT=1 docker build --secret id={SECRET_ID},src=$HOME/.netrc" if secret else "docker build"
        return [
            "# 1. build (needs the base image " + self.settings.base_image.format(python=python) + f" and {needs})",
            f"{build} --network host -t {tag} .",
            "# 2. run: no network, read-only root, no capabilities, the model mounted read-only",
            f"docker run --rm --network none --read-only --tmpfs /tmp --tmpfs /work:uid={UID},gid={UID} --cap-drop ALL "
            f"--security-opt no-new-privileges --user {UID}:{UID} {envs} {volumes} {tag} {' '.join(command)}",
        ]

    def ships_template(self, name: str) -> bool:
        return name in builtin_templates()

    def build_folder(self, folder: Path, tag: str) -> tuple[bool, str]:
        """Build a folder holding a Dockerfile: Engine API, or the CLI with BuildKit for cache
        and secret mounts. A Dockerfile that mounts the index's credentials (SECRET_MOUNT) gets
        them as a netrc file in a private folder outside the build context, gone after the build."""
        dockerfile = (folder / "Dockerfile").read_text()
        if "--mount=" not in dockerfile:
            return self._build_with_api(str(folder), tag)
        with tempfile.TemporaryDirectory(prefix="harness-secret-") as private:
            secrets = {}
            netrc = build_netrc(self.index) if SECRET_MOUNT in dockerfile else ""
            if netrc:
                path = Path(private) / "netrc"
                path.touch(mode=0o600)
                path.write_text(netrc)
                secrets[SECRET_ID] = path
            return self._build_with_cli(str(folder), tag, secrets)

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

    def _build_with_cli(self, context: str, tag: str, secrets: Mapping[str, Path]) -> tuple[bool, str]:
        given = [arg for key, path in secrets.items() for arg in ("--secret", f"id={key},src={path}")]
        done = proc.run(
            [buildkit_cli(), "build", "--network", "host", "--progress", "plain", *given, "-t", tag, context],
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            timeout=3600,
        )
        return done.ok, done.stdout + done.stderr

    @property
    def sandbox(self) -> str:
        return "docker"

    def run_probe(self, prepared: Prepared, request: ProbeRequest, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """Run the probe in a sandboxed container; paths in the request become container paths."""
        inner, mounts = cell_request(request, lambda host, wanted: wanted, "/work")
        inner["limits"] = {"file_size": self.limits.file_size}
        with tempfile.TemporaryDirectory(prefix=f"harness-cell-{os.getpid()}-") as tmp:
            request_file = Path(tmp) / "request.json"
            request_file.write_text(json.dumps(inner))
            request_file.chmod(0o644)
            Path(tmp).chmod(0o755)  # the container's user (uid 10001) reads it, read-only
            mounts.update({f"{PROBE_DIR}/probe.py": str(PROBE), f"{PROBE_DIR}/request.json": str(request_file)})
            return self.run_container(
                prepared.location,
                ["python", "-I", f"{PROBE_DIR}/probe.py", f"{PROBE_DIR}/request.json"],
                mounts,
                env_vars,
                timeout,
                watch=ChannelStages(len(request.models)),
            )

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        os.chmod(outdir, 0o777)  # written by the container's user: a user's trusted build script, not a model
        mounts = {f"{PROBE_DIR}/build.py": str(script.resolve())}
        return self.run_container(
            prepared.location, ["python", f"{PROBE_DIR}/build.py", "/out"], mounts, env_vars, timeout, writable={"/out": str(outdir)}
        )

    def run_container(
        self,
        image: str,
        command: list[str],
        mounts: Mapping[str, str],
        env_vars: Mapping[str, str],
        timeout: float,
        writable: Mapping[str, str] | None = None,
        watch: Callable[[bytes], None] | None = None,
    ) -> proc.Completed:
        """One sandboxed container, always removed: no network, read-only root, no capabilities.

        `mounts` (inside -> host) are read-only; the only writable places are size-capped
        tmpfs folders (/work, /tmp), so nothing a model writes reaches the host, and what it
        reports comes back on the attached stdout, read bounded by proc (no log file on
        the host either: --log-driver none).
        """
        name = f"harness-cell-{self._session}-{next(self._counter)}"
        argv = [docker_cli(), "run", "--name", name, *self.run_flags(), "-w", "/work"]
        for key, value in {"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1", **env_vars}.items():
            argv += ["-e", f"{key}={value}"]
        for inside, host in sorted(mounts.items()):
            argv += ["--mount", _mount_spec(host, inside, readonly=True)]
        for inside, host in sorted((writable or {}).items()):
            argv += ["--mount", _mount_spec(host, inside, readonly=False)]
        argv += [image, *command]
        with self._lock:
            self._live.add(name)
        try:
            done = proc.run(
                argv,
                env=os.environ,
                timeout=timeout,
                stdout_keep=CHANNEL_KEEP,
                on_timeout=lambda: self._remove(name),
                watch=watch,
            )
            state = self._state(name)
        finally:
            self._remove(name)
        code, stderr = done.returncode, done.stderr
        if state.get("OOMKilled"):
            stderr += f"\n{OOM_MARKER} ({self.settings.memory})\n"
            code = -9
        elif done.timed_out:
            code = -9
        elif isinstance(state.get("ExitCode"), int) and state.get("Status") == "exited":
            code = -9 if state["ExitCode"] == 137 else state["ExitCode"]
        return proc.Completed(done.argv, code, done.stdout, stderr, done.seconds, done.timed_out, done.truncated)

    def run_flags(self) -> list[str]:
        """The sandbox, as `docker run` flags (shown by the reproduction's README too)."""
        memory = self.settings.memory
        return [
            "--label",
            f"harness.session={self._session}",
            "--label",
            f"harness.owner={owner_label()}",
            "--log-driver",
            "none",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,nosuid,nodev,size=512m",
            "--tmpfs",
            f"/work:rw,nosuid,nodev,size={self.limits.scratch},uid={UID},gid={UID},mode=0700",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            f"{UID}:{UID}",
            "--memory",
            memory,
            "--memory-swap",
            memory,
            "--cpus",
            str(self.settings.cpus),
            "--pids-limit",
            str(self.settings.pids),
        ]

    def _state(self, name: str) -> dict[str, Any]:
        with contextlib.suppress(Exception):  # never started (no image), already gone
            return dict(self.client.api.inspect_container(name).get("State") or {})
        return {}

    def _remove(self, name: str) -> None:
        with self._lock:
            self._live.discard(name)
        with contextlib.suppress(Exception):  # already gone
            self.client.api.remove_container(name, force=True)

    def stop(self) -> None:
        """Ctrl-C: remove every container this run started."""
        with self._lock:
            live = list(self._live)
        for name in live:
            self._remove(name)

    def sweep(self) -> list[str]:
        """Remove containers that a harness on this machine started and that outlived it (kill -9)."""
        removed = []
        with contextlib.suppress(Exception):
            for found in self.client.api.containers(all=True, filters={"label": "harness.owner"}):
                owner = (found.get("Labels") or {}).get("harness.owner", "")
                if owner_is_gone(owner):
                    with contextlib.suppress(Exception):
                        self.client.api.remove_container(found["Id"], force=True)
                        removed.append(found["Id"][:12])
        return removed


def owner_label() -> str:
    """host/boot/pid of this harness: enough to tell, later, that it is gone."""
    return f"{socket.gethostname()}/{_boot_id()}/{os.getpid()}"


def owner_is_gone(owner: str) -> bool:
    host, _, rest = owner.partition("/")
    boot, _, pid = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's harness: not ours to judge
    return boot != _boot_id() or not Path(f"/proc/{pid}").exists()


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _mount_spec(host: str, inside: str, readonly: bool) -> str:
    """A --mount value; CSV-quoted so commas and quotes in a path stay in the path."""
    buffer = io.StringIO()
    fields = ["type=bind", f"source={host}", f"target={inside}"] + (["readonly"] if readonly else [])
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def docker_cli() -> str:
    found = (
        os.environ.get("HARNESS_DOCKER_CLI") or shutil.which("docker") or ("/usr/bin/docker" if os.path.exists("/usr/bin/docker") else None)
    )
    if not found:
        raise BackendUnavailable(
            "the docker command-line client is not installed (it runs the sandboxed containers): install docker.io or docker-ce-cli"
        )
    return found


def is_infra_failure(build_output: str) -> bool:
    """Network or disk trouble (retry, infra-error), as opposed to pins that do not install."""
    return any(h in build_output for h in _NETWORK_HINTS) and not any(h in build_output for h in _UNRESOLVABLE_HINTS)


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
    from ..images import sdk

    docker = sdk()  # not installed is its own message, never "no daemon answers"
    try:
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


def create(config: BackendConfig) -> DockerBackend:
    return DockerBackend(DockerSettings.from_matrix(local_settings(config.docker, cache_dir() / "templates"), config.matrix_path))


def local_settings(docker: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Settings from another machine (portable_config): a user's template written here, named by its content."""
    settings = dict(docker)
    text = settings.pop("template_text", None)
    if text is not None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.Dockerfile.j2"
        if not path.exists():
            path.write_text(text)
        settings["template"] = str(path)
    return settings
