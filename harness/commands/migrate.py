"""`harness migrate MODEL --to SPEC -o DIR`: a file that loads in the target environment, proven by its outputs."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import UsageError
from ..escape import terminal
from ..exits import Outcome, Verdict
from .common import add_sandbox_arguments, backend_choices, backend_name


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="make a model load in another environment, and prove it answers the same",
        description=textwrap.fill(
            "Load MODEL in a source environment (--from, or by default the first of a ladder that loads it: the Keras "
            "release that saved it with the newest TensorFlow that installs it, then the newest of its major) and run it on an input "
            "(--input, or three batches made from its inputs: edge values, two seeded); then try, in the target environment (--to), on those same batches: the file "
            "as it is, an HDF5 file under a .keras name renamed, its config repaired for the target's Keras (with and without its "
            "training config), a bridge (what the source exported, assembled for the target and saved by its Keras), and for a "
            "SavedModel its serving signature and the source's re-export of it (inference only). The first that loads, answers as "
            "the source did (--atol, --rtol) and holds every weight of the source's is written to DIR with migration.json, "
            "migration.md and DIR/proof (re-checked later with --verify DIR). Exit 0 only when proven, 1 when nothing is, 2 on "
            "usage errors. Every load runs in a sandboxed cell.",
            78,
        )
        + "\n\nexamples:\n"
        "  harness migrate model.h5 --to 2.21 -o migrated/\n"
        "  harness migrate model.keras --to tensorflow==2.15.1 --package tensorflow=tensorflow-cpu -o back/\n"
        "  harness migrate model.h5 --to keras==3.15.1 --keras-backend jax -o on-jax/\n"
        "  harness migrate --verify migrated/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL", nargs="?")
    parser.add_argument(
        "--to",
        metavar="SPEC",
        help="the target: 'tensorflow==2.21.0', 'tensorflow==2.16.2,tf-keras==2.16.0', 'keras==3.15.1,keras-backend==jax' or a line '2.21'",
    )
    parser.add_argument(
        "--keras-backend",
        choices=("tensorflow", "jax", "torch"),
        help="the target's Keras 3 backend: the target installs keras and that framework (no TensorFlow for jax or torch) and "
        "loads with KERAS_BACKEND set; the same as ',keras-backend==NAME' in --to",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SPEC",
        help="the source (default: a ladder from the saving Keras release; migration.json's sources_tried says which were passed over and why)",
    )
    parser.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="AXIS=NAME",
        help="what to install for an axis, e.g. tensorflow=tensorflow-cpu (repeatable)",
    )
    parser.add_argument("--custom-objects", type=Path, metavar="FILE", help="a .py file defining the model's custom objects")
    parser.add_argument(
        "--input",
        type=Path,
        metavar="X.npy",
        help="the input to compare outputs on, .npy or .npz (one array per model input; default: three batches of four rows made from the model's inputs, each compared)",
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=None,
        help="absolute tolerance of the output comparison (default 1e-5; 1e-3 for a mixed-precision model)",
    )
    parser.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-4; 4e-3 for a mixed-precision model)")
    parser.add_argument("--python", default=None, help="the Python of both environments (default: this one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per load (default 300)")
    parser.add_argument("--backend", type=backend_name, choices=backend_choices(), default="uv")
    parser.add_argument(
        "-o",
        "--outdir",
        type=Path,
        metavar="DIR",
        help="where the migrated file, migration.json/.md and the scratch folder work/ go; never the model's own file or a file "
        "harness migrate did not write (other files in DIR are left alone)",
    )
    parser.add_argument("--force", action="store_true", help="replace what an earlier harness migrate wrote in DIR")
    parser.add_argument(
        "--verify",
        type=Path,
        metavar="DIR",
        help="re-prove a folder harness migrate wrote: its file is the one proven, loads in the recorded target and answers "
        "as the source did on the recorded input, with the source's weights; exit 1 naming what changed (no MODEL, --to or -o)",
    )
    add_sandbox_arguments(parser)
    parser.set_defaults(main=main)


def main(args: argparse.Namespace, console: Console) -> Outcome:
    from ..backends import get_backend
    from ..matrix import LoadOptions
    from ..migrate import MigrationFailed, migrate, with_backend
    from ..pipeline import check_outdir
    from ..sandbox import Limits

    if args.verify is not None:
        return _verify(args, console)
    missing = [flag for flag, value in (("MODEL", args.model), ("--to", args.to), ("-o", args.outdir)) if value is None]
    if missing:
        raise UsageError(
            f"harness migrate: {', '.join(missing)} missing; e.g. harness migrate model.h5 --to 2.21 -o migrated/ (or --verify DIR)"
        )
    packages = {}
    for item in args.package:
        axis, sep, name = item.partition("=")
        if not sep or not axis or not name:
            raise UsageError(f"--package {item}: write AXIS=NAME, e.g. --package tensorflow=tensorflow-cpu")
        packages[axis] = name
    for given in (args.custom_objects, args.input):
        if given is not None and not given.is_file():
            raise UsageError(f"{given}: no such file")
    check_outdir(args.outdir)
    to = with_backend(args.to, args.keras_backend)
    load = LoadOptions(
        custom_objects=args.custom_objects.resolve() if args.custom_objects else None,
        input=args.input.resolve() if args.input else None,
        timeout=args.timeout,
        trusted=args.trust_models,
    )
    tolerance = None
    if args.atol is not None or args.rtol is not None:
        tolerance = (args.atol if args.atol is not None else 1e-5, args.rtol if args.rtol is not None else 1e-4)
    backend = get_backend(args.backend, {}, None, args.sandbox, Limits.parse(args.memory, args.pids))
    try:
        migration = migrate(
            args.model,
            to,
            args.outdir,
            backend,
            args.source,
            packages,
            load,
            args.python,
            lambda text: console.print(f"[grey50]· {terminal(text)}[/]"),
            tolerance,
            force=args.force,
        )
    except MigrationFailed as exc:
        console.print(f"[red]{terminal(exc)}[/]", markup=True)
        console.print(f"report: {args.outdir}/migration.md, migration.json")
        return Verdict(failed=True)
    for tried in migration.tried:
        mark = "[green]proven[/]" if tried.proven else "[red]no[/]"
        console.print(f"  {terminal(tried.candidate.strategy):<42} {mark} {terminal(tried.why)}", highlight=False)
    if migration.written is None:
        console.print(f"[red]no strategy gave a file that loads in {migration.target.cell.id} and answers as the original[/]")
    else:
        console.print(
            f"[green]proven:[/] {terminal(migration.written)} loads in {terminal(migration.target.cell.id)} and answers as the original"
        )
    console.print(f"report: {args.outdir}/migration.md, migration.json")
    return Verdict(failed=migration.written is None)


def _verify(args: argparse.Namespace, console: Console) -> Outcome:
    from ..backends import get_backend
    from ..migrate import verify
    from ..sandbox import Limits

    if args.model is not None or args.to is not None or args.outdir is not None:
        raise UsageError("harness migrate --verify DIR takes no MODEL, --to or -o: the folder's migration.json says them")
    if args.custom_objects is not None and not args.custom_objects.is_file():
        raise UsageError(f"{args.custom_objects}: no such file")
    backend = get_backend(args.backend, {}, None, args.sandbox, Limits.parse(args.memory, args.pids))
    done = verify(
        args.verify,
        backend,
        args.custom_objects,
        args.trust_models,
        lambda text: console.print(f"[grey50]· {terminal(text)}[/]"),
    )
    for note in done.notes:
        console.print(f"[yellow]note:[/] {terminal(note)}", highlight=False)
    if done.changed:
        for what in done.changed:
            console.print(f"[red]changed:[/] {terminal(what)}", highlight=False)
        return Verdict(failed=True)
    diff = (done.tried.diff or {}) if done.tried else {}
    weights = (done.tried.weights or {}) if done.tried else {}
    same = f", all {weights['total']} weight tensors equal" if weights.get("same") else ""
    console.print(
        f"[green]verified:[/] {terminal(done.migrated)} loads in {terminal(done.target)} and answers as the source did "
        f"(max abs diff {diff.get('max_abs', 0):.3g}{same})",
        highlight=False,
    )
    return Verdict(failed=False)
