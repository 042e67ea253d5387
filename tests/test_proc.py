"""proc: what a child prints is kept bounded, and a deadline holds whatever the child does."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from harness import proc


def test_a_flood_on_stderr_keeps_a_bounded_head_and_tail():
    script = "import os\nos.write(2, b'HEAD')\nfor _ in range(64): os.write(2, b'x' * (1 << 20))\nos.write(2, b'TAIL')\nprint('out')"
    done = proc.run([sys.executable, "-c", script], timeout=120)
    assert done.ok and done.stdout == "out\n"
    assert done.truncated
    assert done.stderr.startswith("HEAD") and done.stderr.endswith("TAIL")
    assert len(done.stderr) < 3 * proc.STREAM_KEEP
    assert f"{64 * (1 << 20) + 8 - 2 * proc.STREAM_KEEP} bytes not kept" in done.stderr


def test_a_channel_keeps_its_start_only():
    done = proc.run([sys.executable, "-c", "print('a' * 5000)"], stdout_keep=1000, timeout=60)
    assert done.stdout == "a" * 1000 and done.truncated


def test_a_daemon_holding_the_pipes_does_not_hold_the_harness():
    """The child starts a daemon in a new session that keeps stdout/stderr open and sleeps."""
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(300)\n"
        "    os._exit(0)\n"
        "time.sleep(300)\n"
    )
    box: dict[str, proc.Completed] = {}
    worker = threading.Thread(target=lambda: box.update(done=proc.run([sys.executable, "-c", script], timeout=2)))
    worker.start()
    worker.join(60)  # a guard against a hang, not a timing assertion
    assert not worker.is_alive(), "proc.run did not return after its deadline"
    done = box["done"]
    assert done.timed_out and done.returncode == -signal.SIGKILL
    daemon = int(done.stdout.split()[0])  # ours: it told us its PID
    with contextlib.suppress(ProcessLookupError):
        os.kill(daemon, signal.SIGKILL)


def test_a_child_that_exits_leaving_a_daemon_returns_its_own_code():
    script = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    print(os.getpid(), flush=True)\n    time.sleep(300)\nos._exit(3)\n"
    done = proc.run([sys.executable, "-c", script], timeout=120)
    assert done.returncode == 3 and not done.timed_out
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(done.stdout.split()[0]), signal.SIGKILL)


def test_stdin_is_written():
    assert proc.run(["cat"], stdin="abc", timeout=30).stdout == "abc"


def test_a_watcher_reads_along_and_one_that_fails_changes_nothing():
    seen: list[bytes] = []
    done = proc.run([sys.executable, "-c", "print('a'); print('b')"], watch=seen.append, timeout=60)
    assert done.ok and b"".join(seen) == b"a\nb\n" and done.stdout == "a\nb\n"

    def broken(data: bytes) -> None:
        raise RuntimeError("a display bug")

    done = proc.run([sys.executable, "-c", "print('x' * 100000)"], watch=broken, timeout=60)
    assert done.ok and len(done.stdout) == 100001
