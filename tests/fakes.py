"""A backend, a package index and a resolver that answer from tables: the pipeline's seams.

`FakeBackend` is registered like any backend (harness.backends.register) and answers the
Protocol; its `run_probe` writes what a real probe writes on its channel (start, import,
one message per model, done), from canned load attempts. The real backends run the same
pipeline in tests/test_e2e_*.py; these make its logic (cache, gate, interruption, fixes,
reports) testable by equality in milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from harness import proc
from harness.backends import BackendConfig, Prepared
from harness.plan import EnvSpec
from harness.request import ProbeRequest
from harness.resolve import IndexConfig, Lock
from harness.sandbox import Limits

# What a model does in a Keras major: a list of attempts, as the probe reports them.
Attempts = list[dict[str, Any]]


def loads() -> Attempts:
    return [{"fix": None, "compile": True, "ok": True, "seconds": 0.1}]


def fails(kind: str, message: str, *then: dict[str, Any]) -> Attempts:
    error = {"type": kind, "module": "builtins", "message": message, "chain": [], "frames": []}
    return [{"fix": None, "compile": True, "ok": False, "error": error}, *then]


@dataclass
class FakeBackend:
    """Answers per (model file name, tensorflow version) from `table` (in a tf-keras legacy cell
    per (name, "<version>+legacy")); counts what it was asked."""

    table: Mapping[tuple[str, str], Attempts]
    name: str = "fake"
    limits: Limits = field(default_factory=Limits)
    probes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (tensorflow, model names) per probe run
    before_probe: Callable[[str], None] | None = None  # called with the tensorflow version (to interrupt, say)
    saves: Path | None = None  # what a build script "saves" in every cell (crossload): a copy of this file

    fingerprint = ""
    sandbox = "fake"  # neither a real sandbox nor "none": reports say nothing about containment

    def check(self) -> None:
        pass

    def python_available(self, version: str) -> bool:
        return True

    def skip_reason(self, version: str) -> str:
        return ""

    def describe(self, env: EnvSpec) -> str | None:
        return None

    def built(self, env: EnvSpec) -> bool:
        return False

    def prepare(self, env: EnvSpec) -> Prepared:
        return Prepared(env, f"/fake/{env.key}", reused=True, seconds=0.0)

    def run_probe(self, prepared: Prepared, request: ProbeRequest, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        tensorflow = next(line.split("==")[1] for line in prepared.env.lock.splitlines() if line.startswith("tensorflow"))
        if self.before_probe:
            self.before_probe(tensorflow)
        names = tuple(Path(m.path).name for m in request.models)
        self.probes.append((tensorflow, names))
        legacy = env_vars.get("TF_USE_LEGACY_KERAS") == "1"  # tf-keras: Keras 2, looked up as "<tensorflow>+legacy"
        keras = "2.15.0" if Version(tensorflow) < Version("2.16") or legacy else "3.15.1"
        lines = [
            {"kind": "start", "probe_version": request.probe_version, "python": "3.11", "api": request.api,
             "versions": {"tensorflow": tensorflow, "keras": keras, "numpy": "1.26.4"}},
            {"kind": "import", "import": {"ok": True, "seconds": 0.5}},
        ]  # fmt: skip
        for model, name in zip(request.models, names, strict=True):
            attempts = self.table.get((name, tensorflow + ("+legacy" if legacy else "")), loads())
            lines.append({"kind": "model", "key": model.key, "result": {"attempts": attempts, "plugins": []}})
        lines.append({"kind": "done", "seconds": 1.0})
        stdout = "".join(json.dumps(line) + "\n" for line in lines)
        return proc.Completed(("probe",), 0, stdout, "", 1.0)

    def run_script(self, prepared: Prepared, script: Path, outdir: Path, env_vars: Mapping[str, str], timeout: float) -> proc.Completed:
        if self.saves is None:
            raise NotImplementedError("this fake backend saves nothing: set `saves`")
        (outdir / self.saves.name).write_bytes(self.saves.read_bytes())
        return proc.Completed(("build",), 0, "", "", 0.1)

    def settings_record(self) -> dict[str, Any]:
        return {}

    def portable_config(self) -> BackendConfig:
        return BackendConfig()

    def collect_garbage(self, older_than_days: float | None) -> str:
        return "removed nothing"


class FakeIndex:
    """A package index that lists `releases` for every package and Python."""

    def __init__(self, releases: Mapping[str, Sequence[str]], **_: Any):
        self.releases = {k: [Version(v) for v in vs] for k, vs in releases.items()}
        self.config = IndexConfig("https://index.invalid/simple")

    def versions(self, name: str, python: str) -> list[Version]:
        return list(self.releases.get(name, []))


class FakeResolver:
    """Every cell resolves to a lock of exactly its pins."""

    def __init__(self, packages: Mapping[str, str], *_: Any, **__: Any):
        self.packages = packages

    def resolve(self, cell: Any) -> Lock:
        return Lock("\n".join(cell.requirements(self.packages)) + "\n")
