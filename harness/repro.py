"""Turn one cell of a results.json into a stand-alone reproduction folder.

    harness repro results.json py3.11-tensorflow2.16.2 -o repro/ [--model m.h5] [--copy-model] [--verify]

The folder holds everything a bug report needs and nothing from harness at run time:
the rendered Dockerfile, the locked requirements, the probe (the load script) and its
request, the model reference (name, size, sha256; the file itself with --copy-model),
the outcome the harness saw, and a README with the exact commands. `--verify` builds
that folder's image, runs it as the README says, and checks that the outcome is the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import probe
from .backends import PROBE_DIR, Reproducer, cell_request, reproducer
from .cell import read_probe
from .diagnose import exception_type
from .errors import UsageError
from .matrix import Cell
from .modelfile import inspect_model
from .plan import EnvSpec

PROBE = Path(probe.__file__).resolve()
PROBE_COMMAND = ("python", "-I", f"{PROBE_DIR}/probe.py", f"{PROBE_DIR}/request.json")


@dataclass(frozen=True)
class Repro:
    folder: Path
    cell: str
    models: tuple[str, ...]
    expected: dict[str, dict[str, Any]]


def outcome_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a result that a reproduction must match."""
    return {
        "status": result["status"],
        "cause": result.get("cause"),
        "exception_type": exception_type(result),
        "attribute_error": bool(result.get("attribute_error")),
    }


def cell_from_record(record: Mapping[str, Any]) -> Cell:
    return Cell(
        python=record["python"],
        pins=tuple(record["pins"].items()),
        env=tuple(sorted(record.get("env", {}).items())),
        api=record.get("api", "tf.keras"),
        override=bool(record.get("overridden")),
    )


def write_repro(
    doc: Mapping[str, Any],
    cell_id: str,
    folder: Path,
    model_paths: Mapping[str, Path] | None = None,
    copy_model: bool = False,
    base_image: str | None = None,
) -> Repro:
    cells = {c["id"]: c for c in doc.get("cells", [])}
    if cell_id not in cells:
        close = [c for c in cells if cell_id in c] or list(cells)[:5]
        raise UsageError(f"no cell '{cell_id}' in these results (cells: {', '.join(close)})")
    record = cells[cell_id]
    if not record.get("lock"):
        raise UsageError(f"cell '{cell_id}' has no lock (it was unresolvable or skipped): nothing to reproduce")
    results = [r for r in doc["results"] if r["cell"] == cell_id]
    models = [m for m in doc["models"] if any(r["model"] == m["name"] for r in results) and not m.get("problems")]
    if not models:
        raise UsageError(f"cell '{cell_id}' has no result for a model that could be loaded")
    backend = reproduction_backend(doc, base_image)
    folder.mkdir(parents=True, exist_ok=True)
    lock = "\n".join(record["lock"]) + "\n"
    env = EnvSpec(record["python"], lock, "docker")
    (folder / "requirements.lock").write_text(lock)
    load = dict(doc.get("matrix", {}).get("load") or {})
    request = {
        "probe_version": doc.get("probe_version"),
        "api": record.get("api", "tf.keras"),
        "compile": load.get("compile", True),
        "inference": load.get("inference", False),
        "fixes": load.get("fixes", True),
        "timeout": load.get("timeout", 300),
        "custom_objects": load.get("custom_objects"),
        "models": [
            {"key": f"m{i}", "path": m["name"], "plugins": ["tensorflow_addons"] if m.get("addons") else []} for i, m in enumerate(models)
        ],
    }
    inner, _ = cell_request(request, lambda host, wanted: wanted, "/work")
    copies = ["probe.py", "request.json"]
    shutil.copy(PROBE, folder / "probe.py")
    if load.get("custom_objects"):
        shutil.copy(load["custom_objects"], folder / "custom_objects.py")
        copies.append("custom_objects.py")
    (folder / "request.json").write_text(json.dumps(inner, indent=1))
    backend.write_build_files(env, folder, copies)
    references = []
    for i, model in enumerate(models):
        reference = {
            "name": model["name"],
            "sha256": model["sha256"],
            "size": model["size"],
            "saved_path": model["path"],
            "mount": inner["models"][i]["path"],
        }
        if copy_model:
            source = _model_source(model, model_paths)
            shutil.copy(source, folder / model["name"])
            reference["copied"] = True
        references.append(reference)
    (folder / "model.json").write_text(json.dumps(references, indent=1))
    expected = {r["model"]: outcome_of(r) for r in results if r["model"] in {m["name"] for m in models}}
    (folder / "expected.json").write_text(json.dumps({"cell": cell_id, "outcomes": expected, "results": results}, indent=1, default=str))
    (folder / "README.md").write_text(_readme(cell_id, record, references, expected, backend))
    return Repro(folder, cell_id, tuple(m["name"] for m in models), expected)


def reproduction_backend(doc: Mapping[str, Any], base_image: str | None = None, check: bool = False) -> Reproducer:
    """The backend that writes reproductions, with the settings the run recorded (defaults for a uv run)."""
    settings = dict((doc.get("run") or {}).get("docker") or {})
    if base_image:
        settings["base_image"] = base_image
    return reproducer(settings, check)


def _model_source(model: Mapping[str, Any], model_paths: Mapping[str, Path] | None) -> Path:
    source = Path((model_paths or {}).get(model["name"]) or model["path"])
    if not source.exists():
        raise UsageError(f"{source}: the model file is not there; pass --model PATH for {model['name']}")
    digest = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else inspect_model(source).sha256
    if digest != model["sha256"]:
        raise UsageError(f"{source}: sha256 {digest[:12]} differs from the {model['sha256'][:12]} the results were made with")
    return source


def _readme(
    cell_id: str, record: Mapping[str, Any], references: list[dict[str, Any]], expected: Mapping[str, Any], backend: Reproducer
) -> str:
    mounts = {r["mount"]: f"$MODEL_DIR/{r['name']}" for r in references}
    commands = backend.reproduction_commands(record["python"], record.get("env", {}), mounts, PROBE_COMMAND)
    commands[-1] += " > result.jsonl"  # the run line: the probe's channel kept
    lines = [
        f"# Reproduction: `{cell_id}`",
        "",
        "Made by `harness repro`. Everything needed is in this folder; harness is not needed to run it.",
        "",
        "| model | sha256 | outcome seen |",
        "|---|---|---|",
        *[
            f"| `{r['name']}` | `{r['sha256']}` | {expected[r['name']]['status']} {expected[r['name']]['exception_type'] or ''} "
            f"({expected[r['name']]['cause'] or '-'}) |"
            for r in references
        ],
        "",
        "```bash",
        "MODEL_DIR=$PWD   # the folder that holds the model file(s) listed above",
        *commands,
        "# 3. what happened: the probe's messages, one JSON object a line (status, exception type and message per model)",
        "cat result.jsonl",
        "```",
        "",
        "`expected.json` holds what the harness saw; `harness repro ... --verify` rebuilds this folder and compares.",
        "Files: `Dockerfile`, `requirements.lock` (full lock), `probe.py` (the load script) with `request.json`, "
        "`model.json` (the model reference), `expected.json`.",
        "",
    ]
    return "\n".join(lines)


def verify_repro(
    repro: Repro, doc: Mapping[str, Any], model_paths: Mapping[str, Path] | None = None, base_image: str | None = None
) -> dict[str, dict[str, Any]]:
    """Build the folder's image, run it as the README says, diagnose, return {model: outcome}."""
    backend = reproduction_backend(doc, base_image, check=True)
    tag = f"harness-repro:{hashlib.sha256(repro.cell.encode()).hexdigest()[:12]}"
    ok, output = backend.build_folder(repro.folder, tag)
    if not ok:
        raise UsageError(f"the reproduction's image does not build:\n{output[-2000:]}")
    record = next(c for c in doc["cells"] if c["id"] == repro.cell)
    request = json.loads((repro.folder / "request.json").read_text())
    models = {m["name"]: m for m in doc["models"]}
    mounts: dict[str, str] = {}
    infos = []
    for reference, model in zip(json.loads((repro.folder / "model.json").read_text()), request["models"], strict=True):
        source = repro.folder / reference["name"] if reference.get("copied") else _model_source(models[reference["name"]], model_paths)
        mounts[model["path"]] = str(source.resolve())
        infos.append(inspect_model(source))
    done = backend.run_container(
        tag,
        list(PROBE_COMMAND),
        mounts,
        record.get("env", {}),
        timeout=float(request.get("timeout", 300)) * len(infos) + 15,
    )
    diagnosed, _ = read_probe(cell_from_record(record), infos, done)
    return {r.model: outcome_of(r.to_dict()) for r in diagnosed}
