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
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import probe
from .backends import PROBE_DIR, Reproducer, cell_request
from .cell import read_probe
from .diagnose import exception_type
from .errors import UsageError
from .escape import markdown, markdown_code, visible
from .inspection import inspect_model
from .matrix import Cell, LoadOptions
from .modelfile import MAX_MODEL_BYTES, content_hash, model_info, regular_file
from .plan import EnvSpec
from .request import probe_request

PROBE = Path(probe.__file__).resolve()
PROBE_COMMAND = ("python", "-I", f"{PROBE_DIR}/probe.py", f"{PROBE_DIR}/request.json")
# A model's name as it may stand in the README's shell lines and the folder; another name gets a fixed one.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}")


@dataclass(frozen=True)
class Repro:
    folder: Path
    cell: str
    models: tuple[str, ...]
    expected: dict[str, dict[str, Any]]
    request: dict[str, Any] = field(default_factory=dict)  # what the folder's request.json holds
    files: tuple[str, ...] = ()  # each model's file name in the folder (and in $MODEL_DIR)
    settings: dict[str, Any] = field(default_factory=dict)  # the Docker settings it was written with


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
        pins=tuple(record.get("pins", {}).items()),
        env=tuple(sorted(record.get("env", {}).items())),
        api=record.get("api", "tf.keras"),
        override=bool(record.get("overridden")),
    )


def reproduction_settings(doc: Mapping[str, Any], base_image: str | None = None, template: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Docker settings a reproduction is written with, and notes for its README.

    The document's settings are data: its base image (checked by the schema to be an image
    reference), memory, CPUs and pids are used; its template only when it names one the
    harness ships. A template file is rendered only when named on this command line
    (--template), and every template renders in Jinja2's sandbox.
    """
    recorded = dict((doc.get("run") or {}).get("docker") or {})
    notes = []
    settings = {k: recorded[k] for k in ("base_image", "memory", "cpus", "pids") if recorded.get(k) is not None}
    if base_image:
        settings["base_image"] = base_image
    if template is not None:
        settings["template"] = str(template)
    elif isinstance(recorded.get("template"), str) and reproducer({}).ships_template(recorded["template"]):
        settings["template"] = recorded["template"]
    elif recorded.get("template"):
        notes.append(
            f"the run built its images from its own template ({visible(Path(str(recorded['template'])).name)}); this folder uses "
            "the harness's default: pass --template FILE to use that one"
        )
    return settings, notes


def write_repro(
    doc: Mapping[str, Any],
    cell_id: str,
    folder: Path,
    model_paths: Mapping[str, Path] | None = None,
    copy_model: bool = False,
    base_image: str | None = None,
    custom_objects: Path | None = None,
    template: Path | None = None,
    trusted: bool = False,
) -> Repro:
    """The folder for `cell_id` of a checked results document (schema.check_results).

    Nothing is taken from the document as a path: model files come from `model_paths`
    (--model), custom objects and a template from this command line only; so is trust
    (--trust-models: the probe's safe_mode=False attempt runs a file's code).
    """
    cells = {c["id"]: c for c in doc.get("cells", [])}
    if cell_id not in cells:
        close = [c for c in cells if cell_id in c] or list(cells)[:5]
        raise UsageError(f"no cell '{visible(cell_id)}' in these results (cells: {', '.join(close)})")
    record = cells[cell_id]
    if not record.get("lock"):
        raise UsageError(f"cell '{cell_id}' has no lock (it was unresolvable or skipped): nothing to reproduce")
    results = [r for r in doc["results"] if r["cell"] == cell_id]
    models = [m for m in doc["models"] if any(r["model"] == m["name"] for r in results) and not m.get("problems")]
    if not models:
        raise UsageError(f"cell '{cell_id}' has no result for a model that could be loaded")
    recorded_load = dict(doc.get("matrix", {}).get("load") or {})
    settings, notes = reproduction_settings(doc, base_image, template)
    backend = reproducer(settings)
    folder.mkdir(parents=True, exist_ok=True)
    lock = "\n".join(record["lock"]) + "\n"
    env = EnvSpec(record["python"], lock, "docker")
    (folder / "requirements.lock").write_text(lock)
    files = tuple(_file_name(m["name"], i) for i, m in enumerate(models))
    infos = [replace(model_info(m), path=f"/{file}") for m, file in zip(models, files, strict=True)]
    load = LoadOptions(
        compile=bool(recorded_load.get("compile", True)),
        inference=bool(recorded_load.get("inference", False)),
        fixes=bool(recorded_load.get("fixes", True)),
        timeout=float(recorded_load.get("timeout", 300)),
        custom_objects=Path("/custom_objects.py") if custom_objects else None,
        trusted=trusted,
    )
    if recorded_load.get("trusted") and not trusted:
        notes.append("the run trusted its files (--trust-models: safe_mode=False was tried); pass --trust-models to do the same")
    request, _ = cell_request(probe_request(infos, load, record.get("api", "tf.keras")), lambda host, wanted: wanted, "/work")
    copies = ["probe.py", "request.json"]
    shutil.copy(PROBE, folder / "probe.py")
    if custom_objects:
        regular_file(custom_objects, "custom objects file", MAX_SOURCE_BYTES)
        shutil.copyfile(custom_objects, folder / "custom_objects.py")
        copies.append("custom_objects.py")
    elif recorded_load.get("custom_objects"):
        notes.append("the run passed custom objects to the fix attempts: pass --custom-objects FILE to include them")
    (folder / "request.json").write_text(json.dumps(request, indent=1))
    backend.write_build_files(env, folder, copies)
    references = []
    for model, file, inner in zip(models, files, request["models"], strict=True):
        reference = {"name": model["name"], "file": file, "sha256": model["sha256"], "size": model["size"], "mount": inner["path"]}
        if copy_model:
            _copy_model(_model_source(model, model_paths), folder / file)
            reference["copied"] = True
        references.append(reference)
    (folder / "model.json").write_text(json.dumps(references, indent=1))
    expected = {r["model"]: outcome_of(r) for r in results if r["model"] in {m["name"] for m in models}}
    (folder / "expected.json").write_text(json.dumps({"cell": cell_id, "outcomes": expected, "results": results}, indent=1, default=str))
    (folder / "README.md").write_text(_readme(cell_id, record, references, expected, backend, notes))
    return Repro(folder, cell_id, tuple(m["name"] for m in models), expected, request, files, settings)


def _file_name(name: str, i: int) -> str:
    """The model's name where it is plain (PLAIN_NAME), else model-I with its suffix if that is plain."""
    if PLAIN_NAME.fullmatch(name):
        return name
    suffix = Path(name).suffix
    plain = re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix)
    return f"model-{i}{suffix if plain else ''}"


def reproducer(settings: Mapping[str, Any], check: bool = False) -> Reproducer:
    from .backends import reproducer as make

    return make(settings, check)


MAX_SOURCE_BYTES = 16 << 20  # a custom objects module


def _model_source(model: Mapping[str, Any], model_paths: Mapping[str, Path] | None) -> Path:
    """The model file, named on the command line (--model) and checked against the document's sha256."""
    source = (model_paths or {}).get(model["name"])
    if source is None:
        raise UsageError(
            f"the model file {visible(model['name'])} is needed here: pass --model PATH "
            "(paths in a results file are never followed: it may come from someone else's machine)"
        )
    if not source.exists():
        raise UsageError(f"{source}: the model file is not there")
    if source.is_dir() and not source.is_symlink():
        digest = inspect_model(source).sha256
    else:
        regular_file(source, "model file", MAX_MODEL_BYTES)
        digest = content_hash(source)[0]
    if digest != model["sha256"]:
        raise UsageError(f"{source}: sha256 {digest[:12]} differs from the {model['sha256'][:12]} the results were made with")
    return source


def _copy_model(source: Path, target: Path) -> None:
    """A model file or SavedModel folder copied into the reproduction, links never followed or carried."""
    from .paths import copy_tree

    if source.is_dir():
        copy_tree(source, target)
    else:
        shutil.copyfile(source, target, follow_symlinks=False)


def _readme(
    cell_id: str,
    record: Mapping[str, Any],
    references: list[dict[str, Any]],
    expected: Mapping[str, Any],
    backend: Reproducer,
    notes: list[str],
) -> str:
    mounts = {r["mount"]: r["file"] for r in references}
    commands = backend.reproduction_commands(record["python"], record.get("env", {}), mounts, PROBE_COMMAND)
    commands[-1] += " > result.jsonl"  # the run line: the probe's channel kept
    lines = [
        f"# Reproduction: {markdown_code(cell_id)}",
        "",
        "Made by `harness repro`. Everything needed is in this folder; harness is not needed to run it.",
        "",
        *[f"> {markdown(note)}\n" for note in notes],
        "| model | file | sha256 | outcome seen |",
        "|---|---|---|---|",
        *[
            f"| {markdown_code(r['name'])} | {markdown_code(r['file'])} | `{r['sha256']}` | "
            + markdown(
                f"{expected[r['name']]['status']} {expected[r['name']]['exception_type'] or ''} ({expected[r['name']]['cause'] or '-'})"
            )
            + " |"
            for r in references
        ],
        "",
        "```bash",
        "MODEL_DIR=$PWD   # the folder that holds the model file(s), under the names in the table's `file` column",
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


def verify_repro(repro: Repro, doc: Mapping[str, Any], model_paths: Mapping[str, Path] | None = None) -> dict[str, dict[str, Any]]:
    """Build the folder's image, run it as the README says, diagnose, return {model: outcome}."""
    if (doc.get("matrix", {}).get("load") or {}).get("custom_objects") and "custom_objects" not in str(repro.request.get("custom_objects")):
        raise UsageError("the run passed custom objects to its fix attempts: pass --custom-objects FILE to verify it")
    backend = reproducer(repro.settings, check=True)
    tag = f"harness-repro:{hashlib.sha256(repro.cell.encode()).hexdigest()[:12]}"
    ok, output = backend.build_folder(repro.folder, tag)
    if not ok:
        raise UsageError(f"the reproduction's image does not build:\n{output[-2000:]}")
    record = next(c for c in doc["cells"] if c["id"] == repro.cell)
    models = {m["name"]: m for m in doc["models"]}
    mounts: dict[str, str] = {}
    infos = []
    for name, file, inner in zip(repro.models, repro.files, repro.request["models"], strict=True):
        copied = repro.folder / file
        source = copied if copied.exists() and not copied.is_symlink() else _model_source(models[name], model_paths)
        mounts[inner["path"]] = str(source.resolve())
        infos.append(inspect_model(source))
    done = backend.run_container(
        tag,
        list(PROBE_COMMAND),
        mounts,
        record.get("env", {}),
        timeout=float(repro.request.get("timeout", 300)) * len(infos) + 15,
    )
    diagnosed, _ = read_probe(cell_from_record(record), infos, done)
    return {name: outcome_of(r.to_dict()) for name, r in zip(repro.models, diagnosed, strict=True)}
