"""`harness migrate`: a model file that loads in the target environment, proven to answer
as the original does in its source environment.

    harness migrate MODEL --to SPEC [--from SPEC] [--package tensorflow=tensorflow-cpu]
                    [--custom-objects FILE] [--input X.npy] [--atol A --rtol R] -o DIR

1. The source: the model is loaded in the source environment (a cell like any other,
   sandboxed) and run on fixed input (three batches the probe makes from its inputs, or --input);
   its outputs are the reference.
2. Candidates, in order: the file as it is; an HDF5 file under a .keras name renamed;
   its config repaired for the target's Keras (repair.py: JSON only, no model loaded
   here), with its training config, then without it; a bridge: what the source's Keras
   exported (architecture and weights, a SavedModel too) repaired and assembled into the
   layout the target reads. All are loaded in one probe run in the target environment
   and run on the same input; the bridge's model is also saved by the target's Keras, and
   that file is loaded fresh and compared again. Last, for a SavedModel, the rescue: its
   serving signature called through Keras 3's TFSMLayer, else tf.saved_model.load
   (inference only, and migration.md says so).
3. The first candidate that loads and whose outputs match the reference (atol, rtol) is
   proven; a candidate that loads only with compile=False, the user's custom objects or
   safe_mode=False (--trust-models) counts, and migration.md says how to load it.
   Nothing is claimed untried.

Every load here is a load of an untrusted file, in a cell (cell.run_cell), never in
this process.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .backends import Backend
from .cell import run_cell
from .diagnose import LOADS, CellResult, first_line, options
from .errors import UsageError
from .escape import markdown as md
from .escape import markdown_code as code
from .escape import visible
from .inspection import assemble, inspect_model, read_configs, write_repaired
from .matrix import KERAS_BACKENDS, Cell, LoadOptions, parse_matrix
from .memo import remember
from .modelfile import ModelInfo, file_sha256
from .outputs import batch_rows, close, differences, read_named
from .paths import copy_tree, write_atomic
from .pipeline import expand_cells, inspect_models
from .plan import EnvSpec
from .probe import RESCUES, SAVED_MODEL_LOAD, TFSM
from .repair import (
    MAX_CONFIG_BYTES,
    CannotRepair,
    Repair,
    Repaired,
    half_precision,
    repair_config,
)
from .resolve import Lock, PackageIndex, Resolver

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Environment:
    spec: str
    cell: Cell
    lock: str

    def record(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "cell": self.cell.id,
            "pins": dict(self.cell.pins),
            "keras_backend": self.cell.backend,  # Keras 3's backend the cell sets (None: the cell does not set one)
            "lock": self.lock.split(),
        }


@dataclass(frozen=True)
class Candidate:
    strategy: str  # "as is", "format", "config repair", "config repair, training config dropped"
    path: Path
    repairs: tuple[Repair, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tried:
    candidate: Candidate
    result: CellResult | None  # None: not built (the reason in `why`)
    proven: bool = False
    diff: Mapping[str, Any] | None = None
    why: str = ""
    weights: Mapping[str, Any] | None = None  # weights_compared: how many of the source's weights are here, equal

    def record(self) -> dict[str, Any]:
        r = self.result
        return {
            "strategy": self.candidate.strategy,
            "file": self.candidate.path.name,
            "status": r.status if r else "not built",
            "loaded_with": r.fix_worked if r else None,
            "exception": (r.exception or {}).get("type") if r and r.exception else None,
            "message": first_line((r.exception or {}).get("message", "")) if r and r.exception else None,
            "attempts": [
                {"fix": a.get("fix") or "as is", "ok": a.get("ok"), "exception": a.get("exception"), "message": a.get("message")}
                for a in (r.attempts if r else ())
            ],
            "repairs": [str(x) for x in self.candidate.repairs],
            "notes": list(self.candidate.notes),
            "proven": self.proven,
            "max_abs_diff": (self.diff or {}).get("max_abs"),
            "max_rel_diff": (self.diff or {}).get("max_rel"),
            "batches": (self.diff or {}).get("batches"),
            "weights": dict(self.weights) if self.weights else None,
            "why": self.why,
        }


@dataclass(frozen=True)
class Migration:
    model: ModelInfo
    source: Environment
    target: Environment
    reference: CellResult
    tried: tuple[Tried, ...] = ()
    atol: float = 1e-5
    rtol: float = 1e-4
    tolerance_why: str = ""
    custom_objects: bool = False  # the user gave custom objects
    sources: tuple[Mapping[str, Any], ...] = ()  # the source environments tried, in order, and why each was passed over
    packages: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None
    proof: Mapping[str, Any] | None = None  # what --verify re-proves against (write_proof)
    written: Path | None = None
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def chosen(self) -> Tried | None:
        return next((t for t in self.tried if t.proven), None)


# --------------------------------------------------------------------------- environments


def parse_spec(spec: str) -> dict[str, str]:
    """`tensorflow==2.21.0,tf-keras==2.16.0` or a release line `2.21` -> {axis: version}; a Keras 3
    backend is a pin too (`keras==3.15.1,keras-backend==jax`: the matrix's keras-backend axis)."""
    pins: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, version = part.partition("==")
        if not sep:
            if part[:1].isdigit():  # a bare version: TensorFlow's
                name, version = "tensorflow", part
            else:
                raise UsageError(f"--to/--from '{spec}': write NAME==VERSION (e.g. tensorflow==2.21.0) or a TensorFlow line (2.21)")
        pins[name.strip()] = version.strip()
    if not pins:
        raise UsageError(f"--to/--from '{spec}': empty; e.g. --to tensorflow==2.21.0")
    backend = pins.get(BACKEND_AXIS)
    if backend is not None and backend not in KERAS_BACKENDS:
        raise UsageError(f"--to/--from '{spec}': unknown Keras backend '{backend}' (use one of: {', '.join(KERAS_BACKENDS)})")
    return pins


BACKEND_AXIS = "keras-backend"


def with_backend(spec: str, backend: str | None) -> str:
    """--to SPEC with --keras-backend NAME: the spec naming it (`...,keras-backend==jax`); a spec that
    names another already is a usage error, not a silent choice between them."""
    if not backend:
        return spec
    named = parse_spec(spec).get(BACKEND_AXIS)
    if named not in (None, backend):
        raise UsageError(f"--to '{spec}' names keras-backend {named}, --keras-backend {backend}: give one")
    return spec if named else f"{spec},{BACKEND_AXIS}=={backend}"


# The tensorflow-addons release for a TensorFlow 2 minor (its own compatibility table; it ended at 2.15).
ADDONS_FOR_TF = {10: "0.20", 11: "0.21", 12: "0.22", 13: "0.23", 14: "0.23", 15: "0.23"}


SOURCES_TO_TRY = ("tensorflow==2.15", "tensorflow==2.21")  # the newest Keras 2, the newest Keras 3


KERAS3_TF_LINES = tuple(f"2.{minor}" for minor in range(21, 15, -1))  # newest first: each pins its Keras 3 range


def default_sources(info: ModelInfo) -> list[str]:
    """The source environments to try, in order, when --from is not given.

    A Keras 3 file: its saving Keras with the newest TensorFlow line that accepts it (TF 2.21
    needs keras>=3.12, so a Keras 3.3 file resolves only with an older line; those that cannot
    are passed over, said why), then the newest Keras 3. A Keras 2 file: the TensorFlow line
    of its tf.keras (source_spec), then the usual ones. Unknown: the usual ones."""
    usual = list(SOURCES_TO_TRY)
    version = info.keras_version or ""
    if info.keras_major == 3 and version:
        return [f"tensorflow=={line},keras=={version}" for line in KERAS3_TF_LINES] + [usual[-1]]
    try:
        known = source_spec(info)
    except UsageError:
        return usual
    return [known] + [spec for spec in usual if spec != known]


def source_spec(info: ModelInfo) -> str:
    """Where the file loads: the Keras release that saved it (its TensorFlow line for tf.keras 2)."""
    version = info.keras_version or ""
    parts = version.split(".")
    if info.keras_major == 2 and len(parts) >= 2 and parts[1].isdigit():
        # tf.keras 2.12-2.15 is the TensorFlow line of the same number; an older Keras 2 (standalone
        # keras 2.0-2.4, or tf.keras before 2.12, which has no wheels for current Pythons) is read
        # by the newest Keras 2, TensorFlow 2.15's
        minor = int(parts[1]) if int(parts[1]) >= 12 else 15
        addons = ADDONS_FOR_TF.get(minor) if info.names("addons") else None
        return f"tensorflow==2.{minor}" + (f",tensorflow-addons=={addons}" if addons else "")
    if info.keras_major == 3 and version:
        return f"keras=={version}"
    raise UsageError(f"{info.name}: the file does not say which Keras saved it; name the source with --from SPEC")


def environment(spec: str, packages: Mapping[str, str], index: PackageIndex, python: str | None = None) -> Environment:
    """SPEC as one cell: expanded against the index as a matrix would be, then locked by uv."""
    pins = parse_spec(spec)
    axes = {name: [version] for name, version in pins.items()}
    backend = pins.get(BACKEND_AXIS)
    if backend in (None, "tensorflow"):
        axes.setdefault("tensorflow", ["latest"])  # keras 3 alone: with the newest TensorFlow
    else:
        axes.setdefault("keras", ["latest"])  # jax or torch: Keras 3 and that framework, no TensorFlow unless named
    text = json.dumps({"name": "migrate", "matrix": {**({"python": [python]} if python else {}), **axes}, "packages": dict(packages)})
    matrix = parse_matrix(text, f"<{spec}>")
    cells = expand_cells(matrix, index)
    if len(cells) != 1:
        raise UsageError(f"'{spec}' names {len(cells)} environments; name one (exact versions, or one release line per package)")
    [cell] = cells
    lock = Resolver(matrix.packages, index.config).resolve(cell)
    if not isinstance(lock, Lock):
        raise UsageError(f"'{spec}' cannot be installed: {getattr(lock, 'explanation', '')}".strip())
    return Environment(spec, cell, lock.text)


# --------------------------------------------------------------------------- candidates


def candidates(info: ModelInfo, target_keras: str, folder: Path, backend: str | None = None) -> tuple[list[Candidate], list[str]]:
    """The files to try in the target, in order, and why any strategy was not built."""
    source = Path(info.path)
    found = [Candidate("as is", source)]
    skipped: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    if info.format == "h5" and source.suffix == ".keras":
        renamed = folder / f"{source.stem}.h5"
        shutil.copyfile(source, renamed)
        found.append(Candidate("format", renamed, notes=("an HDF5 file: the .h5 name lets Keras 3 pick the HDF5 reader",)))
        source = renamed
    if info.format not in ("h5", "keras"):
        skipped.append(f"config repair: reads HDF5 and .keras files, not {info.format}")
        return found, skipped
    try:
        repaired = repair_for(source, target_keras, backend)
    except CannotRepair as exc:
        skipped.append(f"config repair: {exc}")
        return found, skipped
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        skipped.append(f"config repair: the config cannot be read ({type(exc).__name__}: {exc})")
        return found, skipped
    suffix = source.suffix
    if repaired.repairs:
        found.append(_written(source, folder / f"{source.stem}.repaired{suffix}", "config repair", repaired))
    if repaired.training_config is not None:  # a training config the target may not rebuild: a variant without it
        dropped = replace(
            repaired,
            training_config=None,
            repairs=(*repaired.repairs, Repair("training config", "dropped")),
            notes=(*repaired.notes, "the training config was dropped: compile the model again to train it"),
        )
        found.append(_written(source, folder / f"{source.stem}.inference{suffix}", "config repair, training config dropped", dropped))
    return found, skipped


def repair_for(path: Path, target_keras: str, backend: str | None = None) -> Repaired:
    """The file's config repaired for `target_keras` (a version: "3.15.1", "2.15.0") on `backend`."""
    model_config, training_config = read_configs(path)
    return repair_config(model_config, training_config, target_keras, backend, weights_by_position=path.suffix.lower() in (".h5", ".hdf5"))


def suggest(
    results: Sequence[CellResult], infos: Sequence[ModelInfo], cells: Mapping[str, Cell], packages: Mapping[str, str]
) -> list[CellResult]:
    """`harness run`'s failed loads with the `harness migrate` command added to their fix where a
    strategy applies (a format fix or a config repair for the Keras the cell has); claims nothing
    untried: the command proves or disproves it (new values, same order)."""
    by_name = {i.name: i for i in infos}
    planned: dict[tuple[str, str, str | None], int] = {}
    sources = {r.model for r in results if r.status in ("loaded", "loaded-after-fix")}  # migrate needs a cell that loads it
    out = []
    for r in results:
        info, cell = by_name.get(r.model), cells.get(r.cell)
        if r.model not in sources:
            out.append(r)
            continue
        keras = r.versions.get("keras")
        # a SPEC names pins and a Keras backend: a cell with other environment variables (tf-keras legacy
        # mode) or another API is not one
        expressible = cell is not None and (
            (not cell.env and cell.api == "tf.keras") or (cell.backend is not None and cell.env == (("KERAS_BACKEND", cell.backend),))
        )
        if r.status != "load-error" or info is None or not expressible or not keras or info.format not in ("h5", "keras"):
            out.append(r)
            continue
        key = (r.model, keras, cell.backend if cell else None)
        if key not in planned:
            planned[key] = _changes(info, keras, cell.backend if cell else None)
        if not planned[key]:
            out.append(r)
            continue
        assert cell is not None
        spec = ",".join(f"{k}=={v}" for k, v in cell.pins if v is not None and k != "python")
        if cell.backend is not None:
            spec = with_backend(spec, cell.backend)
        # the target's packages; off TensorFlow every one (the source that answers first is a tensorflow cell)
        flags = "".join(f" --package {axis}={name}" for axis, name in packages.items() if axis in dict(cell.pins) or cell.backend)
        command = f'harness migrate {info.path} --to "{spec}"{flags} -o migrated/'
        if command in (r.fix or ""):  # a result from the store was suggested to when it was first run
            out.append(r)
            continue
        hint = f"`{command}` tries {planned[key]} change(s) to the file and proves the result by its outputs"
        out.append(replace(r, fix=f"{r.fix}; or {hint}" if r.fix else hint))
    return out


def _changes(info: ModelInfo, keras: str, backend: str | None = None) -> int:
    """How many changes migrate would try for this Keras: a rename, and the config repairs
    (kept by the file's content and the repairer's source: a re-run does not read it again)."""
    renamed = int(info.format == "h5" and Path(info.path).suffix == ".keras")

    def repairs() -> int:
        try:
            return len(repair_for(Path(info.path), keras, backend).repairs)
        except (CannotRepair, OSError, ValueError, KeyError, zipfile.BadZipFile, UsageError):
            return 0

    return renamed + remember("repairs", (info.sha256, info.path, keras, backend or ""), ("repair.py", "migrate.py", "keras_builtins.txt"), repairs)


def _written(source: Path, target: Path, strategy: str, repaired: Repaired) -> Candidate:
    write_repaired(source, target, repaired.model_config, repaired.training_config)
    return Candidate(strategy, target, repaired.repairs, repaired.notes)


# --------------------------------------------------------------------------- the migration


MARKER = ".harness-migrate.json"  # what harness migrate wrote in DIR: only those it ever replaces
REPORTS = ("migration.json", "migration.md")


def _written_names(model: Path) -> set[str]:
    """Every name a migration of `model` can write in DIR (its format is known only at the end)."""
    stem = model.name if model.is_dir() else model.stem
    return {"work", "proof", *REPORTS, f"{stem}.keras", f"{stem}.h5", model.name, f"{model.name}.savedmodel"}


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def claim_outdir(model: Path, outdir: Path, force: bool = False, *, check_only: bool = False) -> Path:
    """DIR made safe to write, and the harness's scratch folder in it (DIR/work), or a UsageError.

    harness migrate never replaces the model it migrates, nor a file it did not write: DIR may
    hold other files, but none of the names it writes unless an earlier migration wrote them
    (MARKER lists them), and those only with --force. The scratch folder is one of them."""
    source = model.resolve()
    target = outdir.resolve()
    if _inside(target, source) and source.is_dir():
        raise UsageError(f"-o {outdir}: it is inside the model {model}; pick a folder outside it")
    ours = target / MARKER
    earlier: set[str] = set()
    if ours.is_file() and not ours.is_symlink():
        with contextlib.suppress(OSError, ValueError, TypeError):
            earlier = {str(n) for n in json.loads(ours.read_text(encoding="utf-8"))["files"] if isinstance(n, str)}
    names = _written_names(model)
    for name in sorted(names):
        path = target / name
        if _inside(source, path):
            raise UsageError(f"-o {outdir}: harness migrate writes {path.name} there, which would replace the model {model}; pick another folder")
        if not (path.exists() or path.is_symlink()):
            continue
        if name not in earlier:
            raise UsageError(f"-o {outdir}: {path.name} is there and harness migrate did not write it; pick another folder (nothing was changed)")
        if not force:
            raise UsageError(f"-o {outdir}: it holds an earlier migration ({path.name}); pass --force to replace it, or pick another folder")
    work = target / "work"
    if check_only:
        return work
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(names & earlier):  # --force: what the earlier migration wrote goes, nothing else
        path = target / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    _mark(target, names)
    work.mkdir()
    return work


def _mark(outdir: Path, names: set[str]) -> None:
    write_atomic(outdir / MARKER, json.dumps({"written_by": "harness migrate", "files": sorted(names)}, indent=1))


def migrate(
    model: Path,
    to: str,
    outdir: Path,
    backend: Backend,
    source: str | None = None,
    packages: Mapping[str, str] | None = None,
    load: LoadOptions | None = None,
    python: str | None = None,
    progress: Any = None,
    tolerance: tuple[float, float] | None = None,
    force: bool = False,
) -> Migration:
    """`tolerance` (atol, rtol): None picks it from what the model computes in (tolerance_for);
    `force`: replace what an earlier migration wrote in `outdir` (claim_outdir)."""
    say = progress or (lambda text: None)
    [info] = inspect_models([model])
    if info.partial or info.corrupt:
        raise UsageError(f"{info.name}: {'not a whole model' if info.partial else 'damaged'}; there is nothing to migrate")
    claim_outdir(model, outdir, force, check_only=True)  # before anything is resolved or written
    atol, rtol, tolerance_why = tolerance_for(info) if tolerance is None else (*tolerance, "given")
    load = replace(load or LoadOptions(), inference=True, atol=atol, rtol=rtol, repairs=False)  # its candidates are its own
    packages = dict(packages or {})
    index = PackageIndex()
    say("resolving the source and target environments")
    dst = environment(to, packages, index, python)
    work = claim_outdir(model, outdir, force)
    # The source: the one named, else a ladder of the environments most likely to load the file
    # (default_sources): each is resolved and tried in turn, and why each was passed over is kept.
    specs = [source] if source else default_sources(info)
    sources: list[dict[str, Any]] = []
    src: Environment | None = None
    reference: CellResult | None = None
    for n, spec in enumerate(specs):
        try:
            env = environment(spec, packages, index, python)
        except UsageError as exc:
            if source:
                raise  # the user's own --from: their spec, their error
            said = " ".join(str(exc).split())
            sources.append({"spec": spec, "cell": None, "why": "cannot be installed: " + said[max(said.lower().find("because"), 0) :][:300]})
            continue
        src = env
        say(f"loading {info.name} in the source environment {src.cell.id}")
        # export: for the bridge; rescue: a SavedModel that load_model does not rebuild runs through its signature
        served: tuple[str, ...] = (info.name,) if info.format == "savedmodel" else ()
        [reference] = _run(src, backend, [info], replace(load, export=True, rescue=served), work / f"source-{n}")
        if reference.status in LOADS:
            sources.append({"spec": spec, "cell": src.cell.id, "why": None if reference.outputs else "loads, but did not run on the input"})
            break  # loaded: it runs on the input or it is the input that does not fit (said below)
        message = first_line((reference.exception or {}).get("message", "")) or reference.detail or "it did not load"
        sources.append({"spec": spec, "cell": src.cell.id, "why": f"{reference.status}: {message[:300]}"})
    if src is None or reference is None:
        passed = "; ".join(f"{t['spec']}: {t['why']}" for t in sources)
        raise UsageError(f"{info.name}: no source environment could be installed ({passed}); name one with --from")
    migration = Migration(
        info,
        src,
        dst,
        reference,
        atol=load.atol,
        rtol=load.rtol,
        tolerance_why=tolerance_why,
        custom_objects=load.custom_objects is not None,
        sources=tuple(sources),
        packages=packages,
        python=python,
    )
    if reference.status in LOADS and not reference.outputs:
        # the source is fine; the input is not: say what the model raised on it, and how to give one
        failed = (reference.inference or {}).get("error") or {}
        why = f"{failed.get('type', 'error')}: {first_line(str(failed.get('message', '')))[:300]}" if failed else "no outputs came back"
        write_reports(migration, outdir)
        raise MigrationFailed(
            migration,
            f"{info.name} loads in the source environment {src.cell.id} but did not run on the input the harness made from its "
            f"inputs ({why}): give one with --input X.npy (an .npz holds one array per model input)",
        )
    if reference.status not in LOADS:
        why = first_line((reference.exception or {}).get("message", "")) or reference.detail or "it did not load"
        write_reports(migration, outdir)
        raise MigrationFailed(
            migration,
            f"{info.name} loads in none of the source environments tried ("
            + "; ".join(f"{t['cell'] or t['spec']}: {t['why']}" for t in sources)
            + "): name another with --from",
        )
    made = reference.files.get("input")
    if load.input is None and made:
        # the target gets the batch the source ran on, not one made from its own reading of the
        # inputs (Keras 3 reads some Keras 2 input shapes otherwise: the comparison would be moot)
        load = replace(load, input=Path(made))
    target_keras = _keras_version(dst)
    found, skipped = candidates(info, target_keras, work / "candidates", dst.cell.backend)
    infos = [replace(inspect_model(c.path), name=f"{n}-{c.path.name}") for n, c in enumerate(found)]
    if reference.fix_worked in RESCUES:
        bridge, why_not = None, f"the source ran the model only through {reference.fix_worked}: there is no Keras model to export"
    else:
        bridge, why_not = bridge_file(reference, target_keras, work / "bridge", dst.cell.backend)
    resave: tuple[str, ...] = ()
    bridge_at = len(found)
    if bridge is not None:
        infos.append(replace(inspect_model(bridge.path), name=f"{len(found)}-bridge"))
        resave = (infos[-1].name,)
        found.append(bridge)
    else:
        skipped.append(f"bridge re-save: {why_not}")
    rescue: tuple[str, ...] = ()
    off_tensorflow = dst.cell.backend not in (None, "tensorflow")
    if info.format == "savedmodel" and off_tensorflow:
        skipped.append(f"SavedModel rescue: TFSMLayer and tf.saved_model need the TensorFlow backend, the target runs Keras on {dst.cell.backend}")
    elif info.format == "savedmodel":  # last: inference only
        found.append(Candidate("SavedModel rescue", Path(info.path), notes=RESCUE_NOTES))
        infos.append(replace(info, name=f"{len(infos)}-rescue"))
        rescue = (infos[-1].name,)
        exported = reference.files.get("serving")
        if exported:
            # the source's own model exported again for serving: a newer TensorFlow reads some
            # exports whose original signature it cannot (basic-pitch's pre-2.5 SavedModel)
            try:
                folder = unpack_serving(Path(exported), work / "reexport" / Path(info.path).name)
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                skipped.append(f"re-export: the source's serving export could not be unpacked ({exc})")
            else:
                found.append(Candidate("re-export", folder, notes=(*RESCUE_NOTES, REEXPORT_NOTE)))
                infos.append(replace(inspect_model(folder), name=f"{len(infos)}-reexport"))
                rescue = (*rescue, infos[-1].name)
        else:
            skipped.append("re-export: the source's Keras exported no serving SavedModel (model.export failed or was too large to send)")
    say(f"loading {len(found)} candidate(s) in the target environment {dst.cell.id}")
    save_as = "keras" if target_keras.startswith("3") else "h5"
    results = _run(dst, backend, infos, replace(load, save_as=save_as, resave=resave, rescue=rescue), work / "target")
    assert reference.outputs is not None  # loaded and ran: checked above
    expected = read_named(reference.outputs)
    weights = (reference.inference or {}).get("weights")
    tried = [_judge(c, r, expected, load, weights) for c, r in zip(found, results, strict=True)]
    if bridge is not None:  # the rebuilt model answered in memory; only its saved file, loaded fresh, is proof
        if any(t.proven for t in tried[:bridge_at]):
            tried[bridge_at] = replace(
                tried[bridge_at], proven=False, why=tried[bridge_at].why + "; not re-saved: an earlier candidate is proven"
            )
        else:
            tried[bridge_at : bridge_at + 1] = _resaved(tried[bridge_at], dst, backend, load, expected, work / "resaved", say, weights)
    tried += [Tried(Candidate(why.partition(":")[0], Path("-")), None, why=why) for why in skipped]
    tried = _one_proven(tried)
    migration = replace(migration, tried=tuple(tried))
    chosen = migration.chosen
    if chosen is not None:
        written = _write_migrated(info, chosen.candidate.path, outdir)
        migration = replace(migration, written=written, proof=write_proof(outdir, written, load, reference))
    write_reports(migration, outdir)
    return migration


PROOF = "proof"  # DIR/proof: the input and the source's outputs a migration was proven on (--verify)


def write_proof(outdir: Path, written: Path, load: LoadOptions, reference: CellResult) -> dict[str, Any]:
    """Keep what the proof rested on, for `harness migrate --verify DIR`: the batch, the source's
    outputs and weights' digests, and the migrated file's identity."""
    folder = outdir / PROOF
    folder.mkdir(exist_ok=True)
    kept: dict[str, Any] = {"migrated_sha256": inspect_model(written).sha256, "weights": (reference.inference or {}).get("weights")}
    for role, path in (("input", load.input), ("reference", reference.outputs)):
        if path is None:
            kept[role] = None
            continue
        target = folder / f"{role}{Path(path).suffix if role == 'input' else '.npz'}"
        shutil.copyfile(path, target)
        kept[role] = {"file": f"{PROOF}/{target.name}", "sha256": file_sha256(target)}
    return kept


MAX_SERVING_BYTES = 2 << 30  # what a cell's serving export may unpack to
MAX_SERVING_MEMBERS = 10_000
_MEMBER = re.compile(r"^[A-Za-z0-9_.@=+-]+(/[A-Za-z0-9_.@=+-]+){0,16}$")


def unpack_serving(archive: Path, target: Path) -> Path:
    """A SavedModel a cell exported and zipped (the probe's export_model), unpacked into a new
    folder, as data from a cell is: plain names only (no absolute path, no .., no link member),
    at most MAX_SERVING_MEMBERS members and MAX_SERVING_BYTES in all, each read no further than
    it declares. Raises ValueError on anything else."""
    target.mkdir(parents=True)
    budget = MAX_SERVING_BYTES
    with zipfile.ZipFile(archive) as z:
        members = z.infolist()
        if len(members) > MAX_SERVING_MEMBERS:
            raise ValueError(f"{len(members)} members, more than {MAX_SERVING_MEMBERS}")
        for info in members:
            name = info.filename
            if info.is_dir():
                continue
            if not _MEMBER.match(name) or any(part in (".", "..") for part in name.split("/")) or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"a member named {visible(name)[:120]!r} is not a plain relative file name")
            budget -= info.file_size
            if budget < 0:
                raise ValueError(f"more than {MAX_SERVING_BYTES} bytes unpacked")
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as source, open(path, "xb") as out:
                shutil.copyfileobj(source, out, 1 << 20)  # zipfile checks the size and CRC as it reads
    if not (target / "saved_model.pb").is_file():
        raise ValueError("no saved_model.pb in it")
    return target


REEXPORT_NOTE = "the SavedModel was exported again by the source's Keras (model.export): its signature is that export's, not the original's"
RESCUE_NOTES = (
    "inference only: it runs the SavedModel's serving signature, not a Keras model (no fit, no layers, no training config)",
    "the outputs come back as a dict keyed by the signature's output names (compared by name; against a Keras model's list of "
    "outputs, in the natural order of those names)",
    "the SavedModel folder must stay whole: the wrapper reads it from its path",
)


def _write_migrated(info: ModelInfo, chosen: Path, outdir: Path) -> Path:
    """DIR/<name>.<ext> (a SavedModel rescued: DIR/<name>, the folder copied whole)."""
    source = Path(info.path)
    if chosen.is_dir():
        written = outdir / (source.name if source.name not in ("work", "migration.json", "migration.md") else f"{source.name}.savedmodel")
        copy_tree(chosen, written)  # links in the folder are neither followed nor carried (migration.md says so)
        return written
    written = outdir / f"{source.stem if info.format != 'savedmodel' else source.name}{chosen.suffix}"
    shutil.copyfile(chosen, written)
    return written


def bridge_file(reference: CellResult, target_keras: str, folder: Path, backend: str | None = None) -> tuple[Candidate | None, str]:
    """The model as the source's Keras exported it (architecture and weights, whatever the
    file's format was: a SavedModel too), its architecture repaired for the target's Keras,
    assembled into the file layout the target reads: an HDF5 model from a Keras 2 export, a
    .keras archive from a Keras 3 one. The target loads it and saves it in its own format."""
    sent = reference.files
    if not sent.get("architecture") or not (sent.get("weights") or sent.get("weights3")):
        return (
            None,
            "the source did not send the model's architecture and weights (to_json or save_weights failed, or the weights are too large)",
        )
    try:
        text = Path(sent["architecture"]).read_text()
        if len(text) > MAX_CONFIG_BYTES:
            return None, f"the exported architecture is {len(text)} characters"
        architecture = json.loads(text)
        if not isinstance(architecture, dict):
            return None, "the exported architecture is not a model config"
        # Keras 2's save_weights file is read by position (assembled into an HDF5 model); Keras 3's by name
        repaired = repair_config(architecture, None, target_keras, backend, weights_by_position=bool(sent.get("weights")))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        # What a cell sent is read in the inspection sandbox (h5py never opens it here).
        if sent.get("weights"):  # Keras 2's save_weights: an HDF5 model's model_weights group
            target = folder / "bridge.h5"
            assemble(repaired.model_config, Path(sent["weights"]), target)
        else:  # Keras 3's .weights.h5: a .keras archive's model.weights.h5
            target = folder / "bridge.keras"
            assemble(repaired.model_config, Path(sent["weights3"]), target)
    except CannotRepair as exc:
        return None, str(exc)
    except (OSError, ValueError, KeyError, RecursionError, UsageError) as exc:
        return None, f"the export cannot be assembled ({type(exc).__name__}: {exc})"
    changes = (
        *repaired.repairs,
        Repair("model", f"architecture and weights exported by the source's Keras, assembled for keras {target_keras}"),
    )
    notes = (
        "re-saved from its architecture and weights: the training config (loss, optimizer state) is not carried over; compile it again to train",
    )
    return Candidate("bridge", target, changes, notes), ""


def _resaved(
    bridge: Tried,
    dst: Environment,
    backend: Backend,
    load: LoadOptions,
    expected: Mapping[str, np.ndarray],
    folder: Path,
    say: Any,
    weights: Mapping[str, Any] | None = None,
) -> list[Tried]:
    """The assembled file was loaded fresh in the target (its own proof); the copy the target's
    Keras saved in its own format is loaded fresh too, and preferred when it is proven."""
    result = bridge.result
    saved = (result.files.get("rebuilt") or result.files.get("rebuilt_h5")) if result is not None else None
    if not bridge.proven or saved is None:
        return [bridge]
    candidate = replace(bridge.candidate, strategy="bridge re-save", path=Path(saved))
    say(f"loading the file the target's Keras saved, in {dst.cell.id}")
    [fresh] = _run(dst, backend, [replace(inspect_model(saved), name=f"bridge-{Path(saved).name}")], load, folder)
    resaved = _judge(candidate, fresh, expected, load, weights)
    if resaved.proven:
        return [replace(bridge, proven=False, why=bridge.why + "; the target's own save of it is preferred (next)"), resaved]
    return [bridge, resaved]


class MigrationFailed(Exception):
    def __init__(self, migration: Migration, message: str):
        super().__init__(message)
        self.migration = migration


FLOAT32_TOLERANCE = (1e-5, 1e-4)
HALF_TOLERANCE = (1e-3, 4e-3)  # a float16 step is 2**-10 relative: rounding in another order moves an output by a few


def tolerance_for(info: ModelInfo) -> tuple[float, float, str]:
    """(atol, rtol, why): float32's unless a layer computes in 16 bits, where one rounding step is ~1e-3."""
    try:
        model_config, _ = read_configs(Path(info.path)) if info.format in ("h5", "keras") else ({}, None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UsageError):
        model_config = {}
    half = half_precision(model_config)
    if half:
        return (*HALF_TOLERANCE, f"the model computes in {half}: one rounding step of a 16-bit float is about 1e-3")
    return (*FLOAT32_TOLERANCE, "float32 outputs")


def _run(env: Environment, backend: Backend, infos: Sequence[ModelInfo], load: LoadOptions, folder: Path) -> list[CellResult]:
    spec = EnvSpec(env.cell.python, env.lock, backend.name, backend.fingerprint)
    return run_cell(env.cell, spec, backend, infos, load, folder / "logs")


def _keras_version(env: Environment) -> str:
    """The Keras that tf.keras is in the target: its locked keras (Keras 3 from TensorFlow 2.16 on), or
    tf-keras in legacy mode."""
    locked = Lock(env.lock).pins
    if dict(env.cell.env).get("TF_USE_LEGACY_KERAS") == "1" and locked.get("tf-keras"):
        return locked["tf-keras"]
    return locked.get("keras") or dict(env.cell.pins).get("keras") or "2"


def weights_compared(source: Any, here: Any) -> dict[str, Any] | None:
    """How many of the source model's weight tensors the candidate holds with equal values (the
    probe's weight_digests: shape and sha256 of the values as float64, names and order aside, as
    Keras 2 and 3 name and order them otherwise). None where either side has no weights list (a
    serving signature). Sets larger than the probe lists compare by their digest alone."""
    if not isinstance(source, Mapping) or not isinstance(here, Mapping):
        return None
    total = source.get("count")
    if not isinstance(total, int):
        return None
    if source.get("set") == here.get("set") and here.get("count") == total:
        return {"equal": total, "total": total, "same": True}
    ours, theirs = source.get("items"), here.get("items")
    if isinstance(ours, list) and isinstance(theirs, list):
        from collections import Counter

        equal = sum((Counter(map(str, ours)) & Counter(map(str, theirs))).values())
        return {"equal": equal, "total": total, "here": len(theirs), "same": False}
    return {"equal": None, "total": total, "here": here.get("count"), "same": False}


def _judge(
    candidate: Candidate, result: CellResult, expected: Mapping[str, np.ndarray], load: LoadOptions, weights: Mapping[str, Any] | None = None
) -> Tried:
    """Proven: it loads, answers as the source on the input, and (where both are Keras models)
    holds every weight tensor of the source's with equal values: a weight the input never
    reaches (a dead filter) still counts."""
    if result.status not in LOADS:
        return Tried(candidate, result, why=_failure(result))
    if not result.outputs:
        return Tried(candidate, result, why="loaded, but the model did not run on the input: " + json.dumps(result.inference or {})[:300])
    got = read_named(result.outputs)
    diff = differences(expected, got, batch_rows((result.inference or {}).get("input")))  # each batch the target was called on
    compared = weights_compared(weights, (result.inference or {}).get("weights"))
    if not close(expected, got, load):
        where = "shapes differ" if diff["max_abs"] is None else f"max abs diff {diff['max_abs']:.3g}"
        return Tried(
            candidate,
            result,
            diff=diff,
            weights=compared,
            why=f"loads, but answers differently ({where}; atol {load.atol}, rtol {load.rtol})",
        )
    if compared is not None and not compared["same"]:
        held = f"{compared['equal']} of {compared['total']}" if compared["equal"] is not None else f"not all {compared['total']}"
        return Tried(
            candidate,
            result,
            diff=diff,
            weights=compared,
            why=f"answers as the source does on the input, but holds {held} of the source's weight tensors with equal values",
        )
    how = ""
    if result.fix_worked == "compile=False":
        plain = next((x for x in result.attempts if not x.get("ok")), {})
        how = f" (loaded with compile=False: its training config does not rebuild here, {plain.get('exception')}: {plain.get('message')})"
    elif result.fix_worked:
        how = f" (loaded with {result.fix_worked.replace('custom_objects', 'your custom objects')})"
    same = f"; all {compared['total']} weight tensors equal" if compared else "; weights not compared (a serving signature has no weights list)"
    return Tried(candidate, result, proven=True, diff=diff, weights=compared, why=f"loads and answers as the source does{how}{same}")


def _failure(result: CellResult) -> str:
    """The attempt that says most (with the user's custom objects, when they were tried) and the diagnosis."""
    with_objects = [a for a in result.attempts if str(a.get("fix") or "").startswith("custom_objects") and not a.get("ok")]
    shown = with_objects[-1] if with_objects else (result.attempts[0] if result.attempts else {})
    seen = f"{shown['exception']}: {shown.get('message', '')}" if shown.get("exception") else result.detail
    advice = (result.fix or "").replace(" (--try-fixes tries it)", "")
    if with_objects and advice:  # the diagnosis quotes what their code raised
        return f"{result.status}: {advice}"
    return f"{result.status}: {seen}" + (f"; {advice}" if advice else "")


def _one_proven(tried: list[Tried]) -> list[Tried]:
    """The first plain load wins; a load that needed a fix only when no plain one is proven."""
    plain = next((t for t in tried if t.proven and t.result is not None and not t.result.fix_worked), None)
    chosen = plain or next((t for t in tried if t.proven), None)
    return [t if t is chosen or not t.proven else replace(t, proven=False, why=t.why + "; another candidate was chosen") for t in tried]


# --------------------------------------------------------------------------- reports


def document(m: Migration) -> dict[str, Any]:
    chosen = m.chosen
    return {
        "schema": "harness-migration",
        "schema_version": 1,
        "harness_version": __version__,
        "started": m.started,
        "model": {"name": m.model.name, "sha256": m.model.sha256, "format": m.model.format, "saved_by_keras": m.model.keras_version},
        "source": m.source.record(),
        "target": m.target.record(),
        "reference": {"status": m.reference.status, "loaded_with": m.reference.fix_worked},
        "tolerance": {"atol": m.atol, "rtol": m.rtol, "why": m.tolerance_why},
        "sources_tried": [dict(t) for t in m.sources],
        # what the outputs were compared on: the user's --input, or the batch made from the model's inputs
        "input": (m.reference.inference or {}).get("input"),
        "strategies": [t.record() for t in m.tried],
        "proven": chosen is not None,
        "strategy": chosen.candidate.strategy if chosen else None,
        "migrated": m.written.name if m.written else None,
        "max_abs_diff": (chosen.diff or {}).get("max_abs") if chosen else None,
        "max_rel_diff": (chosen.diff or {}).get("max_rel") if chosen else None,
        "batch_diffs": (chosen.diff or {}).get("batches") if chosen else None,  # each batch's, in the order of "input"'s batches
        "loaded_with": chosen.result.fix_worked if chosen and chosen.result else None,
        "custom_objects": m.custom_objects,
        "packages": dict(m.packages),
        "python": m.python,
        "proof": dict(m.proof) if m.proof else None,
    }


def write_reports(m: Migration, outdir: Path) -> None:
    doc = document(m)
    write_atomic(outdir / "migration.json", json.dumps(doc, indent=1, default=str))
    write_atomic(outdir / "migration.md", render_markdown(doc))


def render_markdown(doc: Mapping[str, Any]) -> str:
    name = doc["model"]["name"]
    lines = [f"# Migration of {code(name)}", ""]
    source, target = doc["source"], doc["target"]
    lines += [
        f"- source: {code(source['cell'])} ({code(source['spec'])})",
        f"- target: {code(target['cell'])} ({code(target['spec'])})",
        "",
    ]
    passed = [t for t in doc.get("sources_tried") or [] if t.get("why")]
    if passed:
        lines += [
            "Sources tried before or instead of it:",
            "",
            *(f"- {code(t.get('cell') or t.get('spec') or '?')}: {md(str(t['why'])[:400])}" for t in passed),
            "",
        ]
    chosen = next((s for s in doc["strategies"] if s["proven"]), None)
    if chosen:
        lines += [
            f"**Proven**: {code(doc['migrated'])} ({md(chosen['strategy'])}) loads in the target and answers as {code(name)} does in the source: "
            f"max abs diff {doc['max_abs_diff']:.3g}, max rel diff {doc['max_rel_diff']:.3g} "
            f"(atol {doc['tolerance']['atol']}, rtol {doc['tolerance']['rtol']}: {md(doc['tolerance']['why'])}).",
            "",
            f"Compared on {_input_text(doc.get('input'))}.",
            "",
            *([per_batch, ""] if (per_batch := _batch_diffs_text(doc.get("batch_diffs"))) else []),
            "## What changed",
            "",
            *(
                [f"- {md(r)}" for r in chosen["repairs"]]
                or [
                    f"- the SavedModel is copied as it is: it is called through {chosen['loaded_with']}, not rebuilt as a Keras model"
                    if chosen["loaded_with"] in RESCUES
                    else "- nothing: the file loads in the target as it is"
                ]
            ),
            "",
            "## How to load it",
            "",
            "```python",
            _load_line(
                doc["migrated"],
                chosen["loaded_with"],
                bool(doc.get("custom_objects")),
                _input_names(doc.get("input")),
                str(target.get("keras_backend") or ""),
            ),
            "```",
            "",
        ]
        if chosen["notes"]:
            lines += ["## What it cannot do", "", *[f"- {md(n)}" for n in chosen["notes"]], ""]
    else:
        lines += ["**Not proven**: no strategy gave a file that loads in the target and answers as the original.", ""]
        custom = [t for t in doc["strategies"] if "your custom objects" in str(t["why"]) or "their code" in str(t["why"])]
        if custom:
            lines += [f"Your custom objects' code is the obstacle, and no config change reaches it: {md(custom[0]['why'])}", ""]
    lines += ["## Every strategy tried", "", "| strategy | outcome | max abs diff | why |", "|---|---|---|---|"]
    for s in doc["strategies"]:
        diff = f"{s['max_abs_diff']:.3g}" if s["max_abs_diff"] is not None else "—"
        lines.append(f"| {md(s['strategy'])} | {md(s['status'])}{' (proven)' if s['proven'] else ''} | {diff} | {md(s['why'])} |")
    return "\n".join(lines) + "\n"


def _input_text(spec: Any) -> str:
    """What the outputs were compared on, from migration.json's "input" (names come from the model: escaped)."""
    if not isinstance(spec, list) or not spec:
        return "the source's outputs (input not recorded)"
    parts = []
    for item in spec[:8]:
        if not isinstance(item, Mapping):
            continue
        shape = "x".join(str(d) for d in item.get("shape") or [])
        bounds = f" in [{item['low']}, {item['high']})" if "low" in item and "high" in item else ""
        parts.append(f"{code(str(item.get('name', '?'))[:80])} {shape} {md(str(item.get('dtype', '?'))[:20])}{bounds}")
    given = any(str(item.get("name", "")).startswith("from ") for item in spec if isinstance(item, Mapping))
    made = "" if given else f" ({_batches_text(spec[0].get('batches') if isinstance(spec[0], Mapping) else None)})"
    return "; ".join(parts) + made


def _batches_text(batches: Any) -> str:
    """The generated batches as words: 'batch 1: edge values ...; batch 2: uniform random rows, seed 0'."""
    if not isinstance(batches, list) or not batches:
        return "a batch made from the model's inputs"
    said = []
    for n, b in enumerate(batches[:16], 1):
        if not isinstance(b, Mapping):
            continue
        seed = f", seed {md(str(b['seed']))[:12]}" if "seed" in b else ""
        said.append(f"batch {n}: {md(str(b.get('values', '?')))[:60]}{seed}")
    return f"{len(batches)} batches made from the model's inputs, each called on its own; " + "; ".join(said)


def _batch_diffs_text(diffs: Any) -> str:
    """Each batch's largest differences from migration.json's "batch_diffs", or ''."""
    if not isinstance(diffs, list) or not diffs:
        return ""
    said = [
        f"batch {n}: {d['max_abs']:.3g} / {d['max_rel']:.3g}"
        for n, d in enumerate(diffs[:16], 1)
        if isinstance(d, Mapping) and isinstance(d.get("max_abs"), int | float) and isinstance(d.get("max_rel"), int | float)
    ]
    return "Max abs / rel diff per batch: " + "; ".join(said) + "." if said else ""


def _input_names(spec: Any) -> list[str]:
    return [str(i.get("name")) for i in spec if isinstance(i, Mapping)] if isinstance(spec, list) else []


def _load_line(file: str, fix: str | None, custom_objects: bool = False, inputs: Sequence[str] = (), keras_backend: str = "") -> str:
    """How to load the migrated file, runnable as it stands once `inputs` holds a batch (one
    array; a dict by input name for several): as the proving attempt did (the probe's
    safe_mode=False attempt passes the custom objects when there are some). The file's name is
    a Python literal (repr, controls shown): a name cannot end the string and run code of its
    own when pasted. A target on another Keras backend sets KERAS_BACKEND before keras is
    imported, as the cell did. tests/test_e2e_migrate.py runs it for every strategy."""
    literal = repr(visible(file)).replace("`", "\\x60")  # a backtick run could close the Markdown fence it stands in
    several = len(inputs) > 1
    names = ", ".join(repr(visible(n))[:80].replace("`", "\\x60") for n in inputs[:8])
    if fix == TFSM:
        call = (
            f"outputs = model.call_endpoint_fn(**inputs)  # several inputs go by name ({names}); a dict of outputs"
            if several
            else "outputs = model(inputs)  # a dict of the signature's outputs"
        )
        return "\n".join(["import keras", "", f'model = keras.layers.TFSMLayer({literal}, call_endpoint="serving_default")  # inference only', call])
    if fix == SAVED_MODEL_LOAD:
        return "\n".join(
            [
                "import tensorflow as tf",
                "",
                f'model = tf.saved_model.load({literal}).signatures["serving_default"]  # inference only',
                f"outputs = model(**inputs)  # inputs by the signature's input names ({names}); a dict of outputs",
            ]
        )
    lines, args = ["import keras", ""], [literal]
    if keras_backend in KERAS_BACKENDS and keras_backend != "tensorflow":  # the name is checked: the document is read back
        lines = ["import os", "", f'os.environ["KERAS_BACKEND"] = "{keras_backend}"  # before keras is imported', "import keras", ""]
    done = options(fix)  # the probe's chain joins what the load needed: "custom_objects+safe_mode=False"
    if "custom_objects" in done or ("safe_mode=False" in done and custom_objects):
        lines.append("from custom_objects import CUSTOM_OBJECTS  # your custom objects, as for the original file")
        args.append("custom_objects=CUSTOM_OBJECTS")
    if "compile=False" in done:
        args.append("compile=False")
    if "safe_mode=False" in done:
        lines.append("# safe_mode=False runs the Python code stored in the file (a Lambda): only for a file you trust")
        args.append("safe_mode=False")
    return "\n".join([*lines, f"model = keras.models.load_model({', '.join(args)})"])


# --------------------------------------------------------------------------- --verify


@dataclass(frozen=True)
class Verification:
    migrated: str
    target: str
    changed: tuple[str, ...]  # what differs from what the migration proved; empty: verified
    notes: tuple[str, ...] = ()
    tried: Tried | None = None


MAX_DOCUMENT = 16 << 20


def _plain_file(outdir: Path, name: Any, what: str, folder_ok: bool = False) -> Path:
    """A name migration.json gives, as a path inside DIR: one or two plain components, no link."""
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in name.split("/") or name.count("/") > 1 or "\\" in name:
        raise UsageError(f"{outdir}/migration.json: {what} is not a name in the folder ({name!r})")
    path = outdir / name
    if path.is_symlink() or not (path.is_file() or (folder_ok and path.is_dir())):
        raise UsageError(f"{outdir}/migration.json: {what} {name} is not there as a plain {'file or folder' if folder_ok else 'file'}")
    return path


def verify(outdir: Path, backend: Backend, custom_objects: Path | None = None, trusted: bool = False, progress: Any = None) -> Verification:
    """Re-prove a migrated folder: its file is the one proven, it loads in the recorded target and
    answers as the source did on the recorded input, with the source's weights. migration.json is
    read as untrusted (anyone could have edited the folder): bounded, every name checked."""
    import tempfile

    say = progress or (lambda text: None)
    document = outdir / "migration.json"
    if document.is_symlink() or not document.is_file():
        raise UsageError(f"{outdir}: no migration.json (a folder harness migrate -o wrote)")
    if document.stat().st_size > MAX_DOCUMENT:
        raise UsageError(f"{document}: larger than {MAX_DOCUMENT} bytes; not a migration.json")
    try:
        doc = json.loads(document.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{document}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != "harness-migration":
        raise UsageError(f"{document}: not a harness migration record")
    proof = doc.get("proof")
    if not doc.get("proven") or not isinstance(proof, dict):
        raise UsageError(f"{document}: records no proven migration (nothing to re-prove)")
    migrated = _plain_file(outdir, doc.get("migrated"), "the migrated file", folder_ok=True)
    target = doc.get("target")
    spec = target.get("spec") if isinstance(target, dict) else None
    packages, python = doc.get("packages") or {}, doc.get("python")
    if not isinstance(target, dict) or not isinstance(spec, str) or not isinstance(packages, dict) or not all(isinstance(v, str) for v in packages.values()):
        raise UsageError(f"{document}: its target is not recorded as harness migrate writes it")
    changed: list[str] = []
    notes: list[str] = []
    info = replace(inspect_model(migrated), name=migrated.name)
    if info.sha256 != proof.get("migrated_sha256"):
        changed.append(f"{migrated.name} is not the file that was proven (its sha256 is {info.sha256[:16]}..., the proof's {str(proof.get('migrated_sha256'))[:16]}...)")
    files: dict[str, Path | None] = {}
    for role in ("input", "reference"):
        kept = proof.get(role)
        if kept is None:
            files[role] = None
            continue
        path = _plain_file(outdir, (kept or {}).get("file") if isinstance(kept, dict) else None, f"the proof's {role}")
        if file_sha256(path) != kept.get("sha256"):
            changed.append(f"{path.relative_to(outdir)} is not what the proof rested on (its sha256 changed)")
        files[role] = path
    reference = files.get("reference")
    if reference is None:
        raise UsageError(f"{document}: records no reference outputs; nothing to compare with")
    say(f"resolving the target environment {spec}")
    env = environment(spec, {str(k): str(v) for k, v in packages.items()}, PackageIndex(), python if isinstance(python, str) else None)
    if env.lock.split() != list(target.get("lock") or []):
        notes.append(f"the target {spec} resolves to other versions than when it was proven (the re-proof is for today's)")
    given = doc.get("tolerance")
    tolerance: dict[str, Any] = given if isinstance(given, dict) else {}

    def recorded(key: str, default: float) -> float:
        value = tolerance.get(key, default)
        return float(value) if isinstance(value, int | float) else default

    atol, rtol = recorded("atol", FLOAT32_TOLERANCE[0]), recorded("rtol", FLOAT32_TOLERANCE[1])
    rescue = (info.name,) if info.format == "savedmodel" and doc.get("loaded_with") in RESCUES else ()
    load = LoadOptions(
        inference=True,
        input=files["input"],
        custom_objects=custom_objects.resolve() if custom_objects else None,
        trusted=trusted,
        atol=atol,
        rtol=rtol,
        repairs=False,
        rescue=rescue,
    )
    say(f"loading {migrated.name} in {env.cell.id}")
    with tempfile.TemporaryDirectory(prefix="harness-verify-") as scratch:
        [result] = _run(env, backend, [info], load, Path(scratch))
        expected = read_named(reference)
        tried = _judge(Candidate("verify", migrated), result, expected, load, proof.get("weights"))
    if not tried.proven:
        changed.append(tried.why)
    return Verification(migrated.name, env.cell.id, tuple(changed), tuple(notes), tried)
