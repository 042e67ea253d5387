"""Compile an environment's modules to bytecode, sharing what other environments compiled.

Run by the environment's own Python while the environment is built, before any model has
run in it, with nothing of the environment imported:

    ENV/bin/python -I -S bytecode.py STORE ENV [--jobs N]

Keeps to the standard library and Python 3.8 syntax, like probe.py.

Why not `uv pip sync --compile-bytecode`: that compiles every file of every environment,
about 8 CPU seconds for a TensorFlow environment here, and four TensorFlow releases have
half their Python source in common (measured on 2.15, 2.16, 2.19 and 2.21: 135 of 251
MiB is unique). Here each source is compiled once per Python, under the SHA-256 of its
bytes, into STORE/<cache tag>-<magic>/, and hard-linked into the environment's
__pycache__ from there:

- The bytecode is hash-based and unchecked (PEP 552): it is valid for those source bytes
  wherever they lie, so environments of other releases, other numpy pins, or a fix that
  added a package reuse it. Python never compares it with the source again, which is
  right for an environment that nothing changes once built (a cell sees it read-only).
- Python sets each code object's file name from the module's own path when it loads
  bytecode (importlib's _fix_co_filename), so tracebacks name this environment's files.
- Tests are not compiled (files under a `tests` folder and `*_test.py`): no load imports
  them (checked against what TensorFlow 2.15-2.21 import), and one that did would
  compile it in memory as usual. 17 of those 135 MiB.
- A source this Python cannot compile gets no bytecode: importing it raises the same
  error it always did.

The links share inodes between environments, as uv's own installs already share each
source file with uv's cache. A cell cannot write to them (bwrap shows the environment
read-only); without a sandbox, a model that the user trusted can write to anything the
user can, this included.

Prints one JSON line per worker: {"compiled": n, "shared": n, "failed": n, "skipped": n}.
"""

import hashlib
import importlib.util
import json
import marshal
import os
import shutil
import sys
import traceback
import warnings

HASH_BASED_UNCHECKED = (1).to_bytes(4, "little")  # PEP 552 flags: hash-based, check_source off


def sources(env):
    """Every .py under the environment's own site-packages, tests left out, in a stable order.

    Found under the folder given, never through sysconfig: without site (-S) a venv's
    Python reports its base installation's paths, which this must never write to.
    """
    env = os.path.realpath(env)
    roots = []
    for lib in ("lib", "lib64"):
        base = os.path.join(env, lib)
        for name in sorted(os.listdir(base)) if os.path.isdir(base) else ():
            root = os.path.realpath(os.path.join(base, name, "site-packages"))
            if root.startswith(env + os.sep) and root not in roots and os.path.isdir(root):
                roots.append(root)
    if not roots:
        raise SystemExit("no site-packages under %s" % env)
    found = []
    skipped = 0
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            testing = "tests" in os.path.relpath(folder, root).split(os.sep)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                if testing or name.endswith("_test.py") or name == "conftest.py":
                    skipped += 1
                    continue
                path = os.path.join(folder, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    found.append(path)
    return found, skipped


def bytecode(source, path):
    """The .pyc bytes for `source`, as importlib would write them but hash-based; None if it does not compile."""
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError (null bytes), RecursionError, MemoryError: the import says it
        return None
    return importlib.util.MAGIC_NUMBER + HASH_BASED_UNCHECKED + importlib.util.source_hash(source) + marshal.dumps(code)


def share(path, store, counts, made):
    """Link `path`'s bytecode from the store, compiled first if the store lacks it."""
    with open(path, "rb") as f:
        source = f.read()
    key = hashlib.sha256(source).hexdigest()
    kept = os.path.join(store, key[:2], key + ".pyc")
    target = importlib.util.cache_from_source(path)
    folders(made, target)
    if place(kept, target):
        counts["shared"] += 1
        return
    data = bytecode(source, path)
    if data is None:
        counts["failed"] += 1
        return
    folders(made, kept)
    partial = "%s.%d.tmp" % (kept, os.getpid())
    with open(partial, "wb") as f:
        f.write(data)
    place(partial, target)  # linked before it is in the store, so `harness gc` never sees it unlinked
    os.replace(partial, kept)  # another build may have put the same bytes there meanwhile: either is right
    counts["compiled"] += 1


def folders(made, path):
    folder = os.path.dirname(path)
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)


def place(kept, target):
    """Link (else copy) `kept` to `target`; False if `kept` is not there (not compiled yet, or gc took it)."""
    try:
        os.link(kept, target)
    except FileExistsError:  # a continued build: the source may have changed since
        os.unlink(target)
        return place(kept, target)
    except FileNotFoundError:
        return False
    except OSError:  # another file system, or the file system's link limit
        try:
            shutil.copyfile(kept, target)
        except FileNotFoundError:
            return False
    return True


def work(paths, store):
    counts = {"compiled": 0, "shared": 0, "failed": 0, "skipped": 0}
    made = set()
    for path in paths:
        share(path, store, counts, made)
    return counts


def main(argv):
    store_root, env = argv[1], argv[2]
    jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1
    warnings.simplefilter("ignore")  # SyntaxWarnings belong to the import that would have compiled it
    store = os.path.join(store_root, "%s-%s" % (sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex()))
    os.makedirs(store, exist_ok=True)
    paths, skipped = sources(env)
    jobs = max(1, min(jobs, len(paths) // 200 + 1))
    children = []
    for shard in range(1, jobs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                print(json.dumps(work(paths[shard::jobs], store)), flush=True)
            except BaseException:  # noqa: BLE001 - the traceback and the exit status say it
                traceback.print_exc()
                code = 1
            os._exit(code)
        children.append(pid)
    counts = work(paths[0::jobs], store)
    counts["skipped"] = skipped
    print(json.dumps(counts), flush=True)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
