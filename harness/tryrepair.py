"""Config repairs tried in the failing cell itself, not only by `harness migrate`.

Before a cell probes a model, the harness writes the file's config repaired by the rules
of repair.py for each Keras major (older Keras's arguments, Addons objects Keras has, the
Keras 2 <-> 3 differences), where any rule applies. The probe tries that file in its
chain of load options only after the plain load failed, so a passing model costs nothing
but the config read, once per file content (kept in the cache folder by the file's sha256
and the repairer's source). The config is read and the file written by the sandboxed
reader (inspection.py): a cell never sees more than a repaired copy of its own model.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .memo import code_hash, remember
from .modelfile import ModelInfo
from .paths import cache_dir
from .repair import CannotRepair, repair_config

# The Keras release each major's repairs are written for (to_keras2 names its module paths), and
# (release, backend) of a variant for one Keras 3 backend, made only where it differs from its
# major's (an HDF5 model's layer names torch refuses): the probe prefers "<major>-<backend>".
TARGETS = {"2": "2.15.0", "3": "3.15.1"}
BACKEND_TARGETS = {"3-torch": ("3.15.1", "torch")}
SOURCES = ("repair.py", "migrate.py", "tryrepair.py", "keras_builtins.txt", "modelread.py")


@dataclass(frozen=True)
class RepairedFile:
    major: str  # the Keras major it is repaired for
    path: str  # where the harness wrote it (the cache folder)
    repairs: tuple[str, ...]  # what was changed, in words


def repaired_files(info: ModelInfo) -> dict[str, RepairedFile]:
    """major -> the model's file with its config repaired for that Keras, where a rule applies."""
    if info.format not in ("h5", "keras") or info.settled or not info.sha256:
        return {}
    folder = cache_dir() / "repaired" / info.sha256[:2]
    suffix = ".h5" if info.format == "h5" else ".keras"
    stamp = code_hash(*SOURCES)[:12]

    def compute() -> dict[str, Any]:
        from .inspection import read_configs, write_repaired

        made: dict[str, Any] = {}
        try:
            model_config, training_config = read_configs(Path(info.path))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, UsageError):
            return made
        wanted: list[tuple[str, str, str | None]] = [(major, target, None) for major, target in TARGETS.items()]
        wanted += [(key, target, backend) for key, (target, backend) in BACKEND_TARGETS.items()]
        for key, target, backend in wanted:
            try:
                repaired = repair_config(model_config, training_config, target, backend, weights_by_position=info.format == "h5")
            except CannotRepair:
                continue
            except Exception:  # noqa: BLE001 - a config the rules cannot walk (it came from the file) is not repaired;
                continue  # it must not turn the cell's other models into an infra error
            said = [str(r) for r in repaired.repairs]
            if not said or (backend and said == made.get(key.split("-")[0], {}).get("repairs")):
                continue  # nothing to repair, or a backend's variant that is its major's file
            path = folder / f"{info.sha256}-{stamp}-k{key}{suffix}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                write_repaired(Path(info.path), path, repaired.model_config, repaired.training_config)
            except (OSError, ValueError):
                continue
            made[key] = {"path": str(path), "repairs": said}
        return made

    found = remember("tryrepair", (info.sha256, info.format), SOURCES, compute)
    if any(not Path(entry["path"]).is_file() for entry in found.values()):  # the cache was cleaned: made again
        found = compute()
    return {major: RepairedFile(major, entry["path"], tuple(entry["repairs"])) for major, entry in _valid(found).items()}


def _valid(found: Any) -> Mapping[str, Any]:
    if not isinstance(found, dict):
        return {}
    return {
        major: entry
        for major, entry in found.items()
        if (major in TARGETS or major in BACKEND_TARGETS) and isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("repairs"), list)
    }
