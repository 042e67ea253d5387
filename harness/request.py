"""What a probe is asked, built in one place for every command that loads a model.

run, crossload, bisect, the cross-environment fixes, migrate and repro all ask a probe
through `probe_request`, and every load passes `refuse_untrusted` (cell.run_cell calls it
before any probe starts), so a rule added here holds for all of them: a file that carries
code runs only where a sandbox contains it, unless the user trusts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .matrix import LoadOptions
from .modelfile import ModelInfo
from .modelread import ACTIVATION_KEYS
from .probe import PROBE_VERSION
from .tryrepair import repaired_files


@dataclass(frozen=True)
class ModelRequest:
    key: str  # m0, m1, ...: the probe's name for the model (the channel names no file)
    path: str  # the host path; a sandbox shows it at a fixed path of its own (backends.base.cell_request)
    format: str
    plugins: tuple[str, ...] = ()
    resave: bool = False
    rescue: bool = False
    serve: bool = False  # harness run: a SavedModel load_model fails on is also called through its serving signature (never a load)
    standins: tuple[str, ...] = ()  # functions the file names that nobody defines (an activation saved as '<lambda>')
    repaired: tuple[tuple[str, str], ...] = ()  # (Keras major, host path of the file with its config repaired for it)


@dataclass(frozen=True)
class ProbeRequest:
    """One probe run: the models, how to load them, the user's files. Host paths; a backend
    maps them into its sandbox."""

    models: tuple[ModelRequest, ...]
    api: str = "tf.keras"
    compile: bool = True
    inference: bool = False
    custom_objects: str | None = None
    input: str | None = None
    fixes: bool = True
    trusted: bool = False
    timeout: float = 300.0
    export: bool = False
    save_as: str | None = None
    probe_version: int = PROBE_VERSION

    def to_json(self) -> dict[str, Any]:
        """The request as probe.py reads it (request.json)."""
        return {
            "probe_version": self.probe_version,
            "api": self.api,
            "models": [
                {
                    "key": m.key,
                    "path": m.path,
                    "format": m.format,
                    "plugins": list(m.plugins),
                    "resave": m.resave,
                    "rescue": m.rescue,
                    **({"serve": True} if m.serve else {}),
                    **({"standins": list(m.standins)} if m.standins else {}),
                    **({"repaired": dict(m.repaired)} if m.repaired else {}),
                }
                for m in self.models
            ],
            "compile": self.compile,
            "inference": self.inference,
            "custom_objects": self.custom_objects,
            "input": self.input,
            "fixes": self.fixes,
            "trusted": self.trusted,
            "timeout": self.timeout,
            "export": self.export,
            "save_as": self.save_as,
        }


def probe_request(infos: Sequence[ModelInfo], load: LoadOptions, api: str) -> ProbeRequest:
    """The one way a probe request is made: models m0, m1, ... in order, with host paths."""
    return ProbeRequest(
        models=tuple(
            ModelRequest(
                key=f"m{i}",
                path=info.path,
                format=info.format,
                plugins=("tensorflow_addons",) if info.names("addons") else (),
                resave=info.name in load.resave,
                rescue=info.name in load.rescue,
                serve=load.fixes and info.format == "savedmodel" and info.name not in load.rescue,
                standins=standins(info) if load.fixes else (),
                repaired=tuple((major, f.path) for major, f in sorted(repaired_files(info).items())) if load.fixes and load.repairs else (),
            )
            for i, info in enumerate(infos)
        ),
        api=api,
        compile=load.compile,
        inference=load.inference,
        custom_objects=str(load.custom_objects) if load.custom_objects else None,
        input=str(load.input) if load.input else None,
        fixes=load.fixes,
        trusted=load.trusted,
        timeout=load.timeout,
        export=load.export,
        save_as=load.save_as,
    )


def standins(info: ModelInfo) -> tuple[str, ...]:
    """Activation functions the file names and no Keras defines: the probe tries the load with a
    stand-in for each, to learn whether anything else blocks it (never counted as loaded)."""
    return tuple(sorted({c.name for c in info.classes if c.kind == "custom" and c.where.rpartition(".")[2] in ACTIVATION_KEYS}))


def refuse_untrusted(sandbox: str, infos: Sequence[ModelInfo], trusted: bool, why_unsandboxed: str) -> None:
    """The trust rule of every load: where nothing contains a cell (`sandbox` is "none"), a file
    that carries code (a Lambda, a function saved by value, or content inspection could not read)
    is refused unless the user trusts it (--trust-models). A one-line UsageError."""
    if sandbox != "none" or trusted:
        return
    coded = [i.name for i in infos if i.carries_code and not i.unread]
    unknown = [i.name for i in infos if i.unread]
    if coded or unknown:
        from .escape import visible

        what = []
        if coded:
            what.append(f"{visible(', '.join(coded))}: carries Python code that runs when it loads")
        if unknown:
            what.append(f"{visible(', '.join(unknown))}: inspection could not read it, so whether it carries code is not known")
        raise UsageError(
            f"{'; '.join(what)}, and cells are not sandboxed here ({why_unsandboxed}); install bubblewrap or use --backend docker, "
            "or pass --trust-models if you trust the file"
        )
