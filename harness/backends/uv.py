"""The embedded default: one uv virtualenv per environment key under the cache folder.

Built atomically: the venv is made under a temporary name and renamed into place only
once every package is installed, so a half-built env (Ctrl-C, a full disk) is never used.
A file lock per key lets parallel cells (and parallel runs) share one build.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import proc
from ..activity import ChannelStages, say
from ..errors import redact
from ..paths import cache_dir
from ..plan import EnvSpec
from ..request import ProbeRequest
from ..resolve import IndexConfig, Lock, uv_bin
from ..sandbox import Jail, Limits, Sandbox, get_sandbox, interpreter_home, sweep_scratch
from .base import PROBE_DIR, BackendConfig, EnvBuildFailed, Prepared, cell_request

PROBE = Path(__file__).resolve().parent.parent / "probe.py"
BYTECODE = PROBE.with_name("bytecode.py")
BYTECODE_STORE = ".bytecode"  # in the environments' folder: the same file system, and `gc` passes over dot names
MARKER = "harness-env.json"
_INFRA_HINTS = (
    "Failed to fetch",
    "error sending request",
    "dns error",
    "Connection",
    "timed out",
    "No space left",
    "Network is unreachable",
    "failed to download",
    "network was disabled",
    "not found in the cache",
    "Disk quota exceeded",
)


class UvBackend:
    name = "uv"

    def __init__(
        self,
        root: Path | None = None,
        index: IndexConfig | None = None,
        sandbox: Sandbox | None = None,
        limits: Limits | None = None,
        python_downloads: bool = False,
    ):
        self.root = root or cache_dir() / "envs"
        self.index = index or IndexConfig.from_env()
        self._box = sandbox
        self.limits = limits or Limits()
        self.python_downloads = python_downloads or python_downloads_allowed(os.environ, Path.cwd())
        self._pythons: dict[str, str | None] = {}
        self._download_errors: dict[str, str] = {}
        self._lock = threading.Lock()
        # One compile at a time, on every core: each then links what the ones before it compiled.
        # Compiles at once, sharing through claim files, cost a third more CPU (four TensorFlow
        # environments: 20 CPU s against 14.7 s one after another) and the claims' file creations
        # a second of system time per environment on this disk. Separate runs may compile a
        # source twice; either copy is right.
        self._compiling = threading.Lock()

    # What the recipe adds to Python and the lock: the environment's modules compiled to bytecode
    # at build time. A cell runs with PYTHONDONTWRITEBYTECODE on a read-only environment, so
    # without it every probe compiled TensorFlow's Python again (measured: a TF 2.21 import and
    # load 6.2 s without, 2.6 s with). Part of the environment key: older environments are rebuilt.
    # Environments built with uv's own --compile-bytecode (before bytecode.py) hold the same
    # modules as bytecode; the key did not change for them.
    fingerprint = "bytecode"

    @property
    def box(self) -> Sandbox:
        if self._box is None:
            self._box = get_sandbox("auto")
        return self._box

    @property
    def sandbox(self) -> str:
        return self.box.name

    def check(self) -> None:
        uv_bin()  # the uv wheel is a dependency; this fails only in a broken install
        sweep_scratch()

    def describe(self, env: EnvSpec) -> str | None:
        return None

    def skip_reason(self, version: str) -> str:
        if version in self._download_errors:
            return f"Python {version} is not on this host and uv could not download it ({self._download_errors[version]})"
        return (
            f"Python {version} is not available on this host: pass --python-downloads to let uv install it, "
            f"install it yourself (uv python install {version}, or pyenv) or use --backend docker"
        )

    def _uv_env(self) -> dict[str, str]:
        # Never download interpreters (no network for it here, and a surprise elsewhere).
        return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}

    def python_available(self, version: str) -> bool:
        return self.interpreter(version) is not None

    def interpreter(self, version: str) -> str | None:
        """What `uv venv --python` gets for `version`: uv's own discovery, else pyenv's builds.

        pyenv keeps versions that its shims hide unless selected (seen here: 3.9-3.13
        installed, only 3.11 found); a user who has them expects them to be used.
        """
        with self._lock:
            if version not in self._pythons:
                from ..memo import machine_fact

                # Found interpreters are remembered for an hour while what uv searches is unchanged
                # (a re-run then starts no `uv python find`); one that is gone is looked for again, and
                # what is found then is kept in its place.
                searched = ("PATH", "PYENV_ROOT", "UV_PYTHON_INSTALL_DIR", "HOME", "VIRTUAL_ENV", "UV_PYTHON_PREFERENCE")
                ident = [version, uv_bin(), os.getcwd(), *(os.environ.get(k, "") for k in searched)]  # uv looks in the folder's .venv too
                path = machine_fact("python", ident, 3600.0, lambda: self._find(version), still=lambda p: os.access(p, os.X_OK))
                if path is None and self.python_downloads:
                    path = self._download(version)
                self._pythons[version] = path
            return self._pythons[version]

    def _find(self, version: str) -> str | None:
        found = proc.run([uv_bin(), "python", "find", version], env=self._uv_env(), timeout=60)
        path = found.stdout.strip() if found.ok else None
        if path is None:
            root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
            builds = sorted(root.glob(f"{version}.*/bin/python{version}")) if root.is_dir() else []
            path = str(builds[-1]) if builds else None
        return path

    def _download(self, version: str) -> str | None:
        """A uv-managed CPython for `version` (the user allowed downloads), or None with the reason kept."""
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "automatic"}
        installed = proc.run([uv_bin(), "python", "install", version], env=env, timeout=900)
        if not installed.ok:
            # uv says what failed first, then each cause: keep the first and the innermost
            lines = [line.strip().removeprefix("cause: ") for line in installed.stderr.splitlines() if line.strip()]
            reason = "; ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else "no output"
            self._download_errors[version] = redact("timed out" if installed.timed_out else reason)[:300]
            return None
        found = proc.run([uv_bin(), "python", "find", "--managed-python", version], env=self._uv_env(), timeout=60)
        if not found.ok:
            found = proc.run([uv_bin(), "python", "find", version], env=self._uv_env(), timeout=60)
        return found.stdout.strip() if found.ok else None

    def location(self, env: EnvSpec) -> Path:
        return self.root / env.key

    def built(self, env: EnvSpec) -> bool:
        return (self.location(env) / MARKER).exists()

    def prepare(self, env: EnvSpec) -> Prepared:
        start = time.monotonic()
        target = self.location(env)
        if (target / MARKER).exists():
            os.utime(target / MARKER)  # last use, for `harness gc --older-than`
            return Prepared(env, str(target), True, time.monotonic() - start)
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / f".{env.key}.lock"):
            if (target / MARKER).exists():  # another cell or run built it meanwhile
                return Prepared(env, str(target), True, time.monotonic() - start)
            try:
                self._build(env, target)
            except EnvBuildFailed as first:
                if not first.infra:
                    raise
                self._build(env, target)  # network and disk hiccups get one retry
        return Prepared(env, str(target), False, time.monotonic() - start)

    def _build(self, env: EnvSpec, target: Path) -> None:
        """Built in .building-<key> beside the target and renamed whole when done.

        One builder per key at a time (prepare holds the key's file lock; a killed process
        releases it), so a build an interrupted run left behind is continued, not started
        over: its venv is kept and `uv pip sync` installs only what is still missing (with
        the wheels uv's cache already has). A build that cannot succeed leaves nothing.
        """
        tmp = self.root / f".building-{env.key}"
        resumed = (tmp / "pyvenv.cfg").is_file() and (tmp / "bin" / "python").exists()
        if not resumed:
            shutil.rmtree(tmp, ignore_errors=True)
            made = proc.run(
                [uv_bin(), "venv", "--quiet", "--relocatable", "--python", self.interpreter(env.python) or env.python, str(tmp)],
                env=self._uv_env(),
                timeout=300,
            )
            if not made.ok:
                shutil.rmtree(tmp, ignore_errors=True)
                raise EnvBuildFailed(redact(f"uv venv failed: {made.stderr.strip()}"), infra=_is_infra(made))
        lock = tmp / "requirements.lock"
        lock.write_text(env.lock)
        say(f"{'continuing the interrupted build of' if resumed else 'building'} the environment: {len(Lock(env.lock).pins)} packages")
        sync = [
            uv_bin(),
            "pip",
            "sync",
            "--quiet",
            "--python",
            str(tmp / "bin" / "python"),
            *self.index.uv_args(),
            str(lock),
        ]
        # uv's cache first, without the network: a lock whose wheels uv has seen is all there, and
        # online `uv pip sync` asks the index again for every page it holds (measured here: four
        # TensorFlow environments at once took 5.6-12 s, waiting on PyPI; 1.8 s offline). The pins
        # are exact, so the cache gives the same files. A lock with a wheel missing from the cache
        # fails before installing anything (seen: "the requested data wasn't found in the cache")
        # and is synced online as before.
        synced = proc.run([*sync[:3], "--offline", *sync[3:]], env=self._uv_env(), timeout=1800)
        if not synced.ok:
            synced = proc.run(sync, env=self._uv_env(), timeout=1800)
        if not synced.ok and "there is no version of" in synced.stderr:
            # The lock names versions the index listed when it was compiled; "no version" here means uv's
            # cached page (or a CDN edge) is older than the lock: seen on this machine. Fetch the pages again.
            synced = proc.run([*sync[:3], "--refresh", *sync[3:]], env=self._uv_env(), timeout=1800)
        if not synced.ok:
            failed = EnvBuildFailed(redact(f"uv pip sync failed: {synced.stderr.strip()[-2000:]}"), infra=_is_infra(synced))
            if not failed.infra and not synced.timed_out:
                shutil.rmtree(tmp, ignore_errors=True)  # it will not succeed; a network failure is continued next time
            raise failed
        self._compile(tmp)
        (tmp / MARKER).write_text(json.dumps({"key": env.key, "python": env.python, "created": time.time()}))
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)

    def _compile(self, tmp: Path) -> None:
        """The environment's modules compiled to bytecode, each source once per Python across
        environments (bytecode.py says how and why); it runs before any model has."""
        store = str(self.root / BYTECODE_STORE)
        argv = [str(tmp / "bin" / "python"), "-I", "-S", str(BYTECODE), store, str(tmp), "--jobs", str(proc.usable_cores())]
        with self._compiling:
            say("compiling bytecode")
            compiled = proc.run(argv, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd=tmp, timeout=1800)
        if not compiled.ok:
            raise EnvBuildFailed(redact(f"compiling bytecode failed: {compiled.stderr.strip()[-2000:]}"), infra=_is_infra(compiled))

    def _run_env(self, prepared: Prepared, home: str) -> dict[str, str]:
        """The cell's whole environment: nothing of the harness's (its tokens, its index credentials)."""
        return {
            "PATH": f"{Path(prepared.location) / 'bin'}:/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            "VIRTUAL_ENV": prepared.location,
        }

    def run_probe(self, prepared: Prepared, request: ProbeRequest, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        with tempfile.TemporaryDirectory(prefix=f"harness-cell-{os.getpid()}-") as tmp:
            scratch = Path(tmp) / "work"  # used only without a sandbox; bwrap's is a tmpfs
            scratch.mkdir()
            inner, mounts = cell_request(request, self.box.inside, self.box.scratch(scratch))
            inner["limits"] = self.box.probe_limits(self.limits)
            request_file = Path(tmp) / "request.json"
            request_file.write_text(json.dumps(inner))
            probe = self.box.inside(str(PROBE), f"{PROBE_DIR}/probe.py")
            request_path = self.box.inside(str(request_file), f"{PROBE_DIR}/request.json")
            mounts.update({probe: str(PROBE), request_path: str(request_file), prepared.location: prepared.location})
            home = interpreter_home(Path(prepared.location))
            if home is not None:
                mounts[str(home)] = str(home)
            python = str(Path(prepared.location) / "bin" / "python")
            env = {**self._run_env(prepared, inner["workdir"]), **env_vars}
            # -I: ignore PYTHON* variables and the user's site-packages; the cell is all there is.
            jail = Jail((python, "-I", probe, request_path), mounts, env, inner["workdir"], ChannelStages(len(request.models)))
            return self.box.run(jail, self.limits, timeout)

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        """The user's build script (crossload) in the cell's sandbox, as a probe runs: no network, the
        environment read-only, `outdir` (a folder of the harness's, read back without following a
        link) the only place it writes besides its scratch."""
        with tempfile.TemporaryDirectory(prefix=f"harness-cell-{os.getpid()}-") as tmp:
            scratch = Path(tmp) / "work"  # home and scratch without a sandbox; bwrap's is a tmpfs
            scratch.mkdir()
            mounts = {self.box.inside(str(script), f"{PROBE_DIR}/build.py"): str(script), prepared.location: prepared.location}
            home = interpreter_home(Path(prepared.location))
            if home is not None:
                mounts[str(home)] = str(home)
            out = self.box.inside(str(outdir), "/out")
            python = str(Path(prepared.location) / "bin" / "python")
            work = self.box.scratch(scratch)
            env = {**self._run_env(prepared, work), **env_vars}
            jail = Jail((python, f"{PROBE_DIR}/build.py" if self.box.contained else str(script), out), mounts, env, out, writable={out: str(outdir)})
            return self.box.run(jail, self.limits, timeout)

    def settings_record(self) -> dict[str, Any]:
        return {}  # the run records the sandbox already

    def portable_config(self) -> BackendConfig:
        # a worker uses the same sandbox (or fails the cell) and may download what this host may
        return BackendConfig(sandbox=self.sandbox, limits=self.limits, python_downloads=self.python_downloads)

    def collect_garbage(self, older_than_days: float | None) -> str:
        keep: set[str] = set()
        if older_than_days is not None and self.root.exists():
            cutoff = time.time() - older_than_days * 86400
            keep = {p.name for p in self.root.iterdir() if (p / MARKER).exists() and (p / MARKER).stat().st_mtime >= cutoff}
        removed = self.remove(keep)
        freed = self._prune_bytecode()
        return f"removed {len(removed)} environment(s) and {freed} unused bytecode file(s) from {self.root}"

    def _prune_bytecode(self) -> int:
        """Drop the shared bytecode that no environment links any more (and writes a killed build left)."""
        freed = 0
        store = self.root / BYTECODE_STORE
        abandoned = time.time() - 3600  # a .tmp older than this is no running build's
        for path in store.glob("*/*/*") if store.is_dir() else ():
            try:
                info = path.lstat()
                if (path.suffix == ".pyc" and info.st_nlink <= 1) or (path.suffix == ".tmp" and info.st_mtime < abandoned):
                    path.unlink()
                    freed += 1
            except FileNotFoundError:  # another gc
                pass
        return freed

    def remove(self, keep: set[str]) -> list[Path]:
        """Delete every env whose key is not in `keep` (for `harness gc`)."""
        removed: list[Path] = []
        if not self.root.exists():
            return removed
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or path.name in keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed


def _is_infra(done: proc.Completed) -> bool:
    return done.timed_out or any(h in done.stderr for h in _INFRA_HINTS)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create(config: BackendConfig) -> UvBackend:
    return UvBackend(sandbox=get_sandbox(config.sandbox), limits=config.limits, python_downloads=config.python_downloads)


def python_downloads_allowed(env: Mapping[str, str], cwd: Path) -> bool:
    """uv's own setting: UV_PYTHON_DOWNLOADS, else `python-downloads` in uv.toml or [tool.uv]
    (the project's, then the user's), "automatic" or "manual" allowing it. uv's default
    ("automatic") is not taken as the user's word: downloading interpreters stays opt-in."""
    value = env.get("UV_PYTHON_DOWNLOADS")
    if value is None:
        from ..indexes import uv_setting_tables

        value = next((str(t["python-downloads"]) for t in uv_setting_tables(env, cwd) if "python-downloads" in t), None)
    return (value or "").strip().lower() in ("automatic", "manual")
