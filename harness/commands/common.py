"""What several commands share: the screen (progress, tables, the gate's verdict) and
argument groups. harness/commands/ and cli.py are the only modules that draw on screen."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.errors import MarkupError
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..diagnose import CellResult
from ..errors import UsageError
from ..escape import controls_shown, terminal, visible
from ..gate import FAIL_ON
from ..outcomes import FAILED
from ..store import Store


class SafeConsole(Console):
    """The screen every command prints to: whatever a string holds (a file's class name, a
    document's message), no control sequence of its reaches the terminal and no bracket of
    its breaks the harness's own markup.

    Values a model or a document controls are escaped where they are formatted (escape.terminal);
    this is the net under that: every string rich renders (markup, tables, titles, plain prints)
    has its control characters shown as escapes, and text whose markup does not parse is shown
    as it is written instead of ending the command.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        text = controls_shown(text)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


def new_console(stderr: bool = False, color: str | None = None) -> SafeConsole:
    """Logs (CI) are wider than the 80 columns rich assumes without a terminal; no emoji codes, no
    highlighting. `color`: auto (a terminal, and not NO_COLOR), always (FORCE_COLOR too), never."""
    stream = sys.stderr if stderr else sys.stdout
    color = color or COLOR[0]
    return SafeConsole(
        stderr=stderr,
        highlight=False,
        emoji=False,
        width=None if stream.isatty() else 160,
        no_color=True if color == "never" else None,
        force_terminal=True if color == "always" else None,
        color_system=None if color == "never" else "auto",
    )


COLOR = ("auto", "always", "never")


def required(args: argparse.Namespace, name: str) -> Any:
    """A positional a config file may give (`matrix`, `models`): its value, or a one-line error."""
    value = getattr(args, name, None)
    if value:
        return value
    shown = {"matrix": "MATRIX", "models": "MODEL"}[name]
    raise UsageError(f"no {shown}: pass it (harness {args.command} --help), or set `{name}` under [tool.harness] in pyproject.toml or harness.toml")


STYLE = {
    "loaded": "green",
    "loaded-after-fix": "cyan",
    "load-error": "red",
    "import-error": "dark_orange",
    "unresolvable": "magenta",
    "skipped": "grey50",
    "timeout": "yellow",
    "crash": "bold red",
    "infra-error": "blue",
}


def backend_choices() -> list[str]:
    """The --backend values: the registry's names (harness.backends.BACKENDS) and auto."""
    from ..backends import backend_names

    return list(backend_names())


def backend_name(value: str) -> str:
    """--backend's type: where cells run. A Keras backend's name there is a mix-up with the
    keras-backend axis (both are "backends"): said, with where that one is written."""
    from ..matrix import KERAS_BACKENDS

    if value in KERAS_BACKENDS and value not in backend_choices():
        raise argparse.ArgumentTypeError(
            f"'{value}' is a Keras backend; --backend picks where cells run ({', '.join(backend_choices())}). "
            f"Keras on {value}: `keras-backend: [{value}]` in the matrix, or harness migrate --keras-backend {value}"
        )
    return value


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    box = parser.add_argument_group(
        "containment (a model file's code runs when it loads: every cell is a sandbox)",
        "uv cells run under bubblewrap (no network, read-only file system but a capped scratch, own PIDs, "
        "none of your environment, limits); docker cells in a locked-down container.",
    )
    box.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="for uv cells: auto (bubblewrap where it works, else none, said at the top of every report), bwrap (fail without it), none",
    )
    box.add_argument(
        "--trust-models",
        action="store_true",
        help="run files that carry Python code (Lambda layers, functions saved by value) even where cells are not sandboxed",
    )
    box.add_argument("--memory", metavar="SIZE", help="memory limit per cell (default 4g)")
    box.add_argument("--pids", type=int, metavar="N", help="process and thread limit per cell (default 512)")


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="what makes the exit code 1: any failed cell (default), regression (failures the baseline or the previous run "
        "did not have; default with --baseline), attribute-error, or none",
    )
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="accepted outcomes, written by `harness baseline`")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: expected K/N, e.g. --shard 2/4 for the second of four slices") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N, e.g. --shard 1/{max(n, 1)}")
    return k, n


class EtaColumn(ProgressColumn):
    """Time left, once a few cells have finished (before that any estimate is a guess)."""

    def render(self, task: Task) -> Text:
        if task.completed < ETA_AFTER or task.time_remaining is None or task.finished:
            return Text("")
        running = task.fields.get("running", 0)
        if task.total is not None and 0 < task.total - task.completed <= running:  # what is left is running now: a rate says nothing
            return Text(f"{int(task.total - task.completed)} running", style="grey50")
        minutes, seconds = divmod(int(task.time_remaining), 60)
        return Text(f"ETA {minutes}:{seconds:02d}", style="grey50")


ETA_AFTER = 3  # finished cells before an ETA is shown


class RunningRows:
    """The rows under the bar: each running cell and its stage, cut to the terminal's width."""

    def __init__(self, progress: RichProgress):
        self.progress = progress

    def __rich__(self) -> Text:
        room = max(20, self.progress.console.width - 3)
        lines = []
        with self.progress.lock:
            for cell, stage in self.progress.running.items():
                plain = f"{cell}: {stage}"
                lines.append("  " + (plain if len(plain) <= room else plain[: room - 1] + "…"))
        return Text(controls_shown("\n".join(lines)), style="grey50")


class RichProgress:
    """A live bar while cells run, a line under it per running cell with its stage, and one
    line per finished cell above it. Not on a terminal (CI logs): one plain line per stage
    change instead of the live display."""

    def __init__(self, console: Console, verbosity: int = 0):
        self.console = console
        self.verbosity = verbosity  # -1: -q (warnings and the end only), 0, 1: -v (each attempt too)
        self.live = console.is_terminal and verbosity >= 0
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            EtaColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.running: dict[str, str] = {}  # cell id -> its stage, a row under the bar
        # the bar and the running cells' rows are two renderables of one live display: a long cell id
        # never widens a column the bar shares (on 80 columns the bar kept 8 characters)
        self.view = Live(Group(self.bar, RunningRows(self)), console=console, transient=True, refresh_per_second=8)
        self.said: dict[str, str] = {}  # cell id -> the stage last shown
        self.lock = threading.RLock()  # the live display's refresh reads the rows under it too

    def stage(self, text: str) -> None:
        if self.verbosity >= 0:
            self.console.print(f"[grey50]· {text}[/]")

    def warn(self, text: str) -> None:
        self.console.print(f"[bold yellow]· {terminal(text)}[/]")

    def start(self, total: int) -> None:
        if self.verbosity >= 0:
            self.console.print(f"[grey50]· running {total} cells[/]")
        if self.live:
            self.view.start()
        self.task = self.bar.add_task("cells", total=total)

    def cell_stage(self, cell: str, stage: str) -> None:
        if self.verbosity < 0:
            return
        with self.lock:
            if self.said.get(cell) == stage:
                return
            self.said[cell] = stage
            if not self.live:
                if self.verbosity > 0:  # a log gets every stage with -v; by default one line per finished cell
                    self.console.print(f"[grey50]  {terminal(cell)}: {terminal(stage)}[/]", highlight=False)
                return
            self.running[cell] = stage
            if self.task is not None:
                self.bar.update(self.task, running=len(self.running))

    def cell_done(self, results: Sequence[CellResult]) -> None:
        if self.verbosity < 0:
            if self.task is not None:
                self.bar.advance(self.task)
            return
        for r in results if self.verbosity > 0 else ():  # each result with -v; the overview at the end has them all
            extra = " · ".join(
                x
                for x in (r.exception.get("type") if r.exception else "", r.cause or "", f"fixed by {r.fix_worked}" if r.fix_worked else "")
                if x
            )
            attr = " [black on yellow] AttributeError [/]" if r.attribute_error else ""
            said = f"{terminal(r.cell)} [grey50]{terminal(r.model)}[/] {terminal(extra)}"
            self.console.print(f"[{STYLE.get(r.status, 'white')}]{r.status:>16}[/] {said}{attr}")
            if self.verbosity > 0:
                for a in r.attempts:
                    outcome = "loaded" if a.get("ok") else f"{a.get('exception') or 'failed'}: {a.get('message') or ''}"
                    self.console.print(f"{'':>18}[grey50]{terminal(a.get('fix') or 'as is')}: {terminal(outcome)}[/]", highlight=False)
                if r.fix:
                    self.console.print(f"{'':>18}[grey50]fix: {terminal(r.fix)}[/]", highlight=False)
        with self.lock:
            for cell in {r.cell for r in results}:
                self.said.pop(cell, None)
                self.running.pop(cell, None)
            if self.task is not None:
                self.bar.update(self.task, running=len(self.running))
        if self.task is not None:
            self.bar.advance(self.task)
        if not self.live and self.task is not None:  # a log: one line per finished cell, its results as the overview's glyphs
            done = self.bar.tasks[0]
            eta = EtaColumn().render(done).plain
            marks = "".join(GLYPHS.get(r.status, ("·",))[0] for r in results)
            cell = terminal(results[0].cell) if results else ""
            self.console.print(
                f"[grey50]· {int(done.completed)}/{int(done.total or 0)} {cell} {marks}{' · ' + eta if eta else ''}[/]", highlight=False
            )

    def stop(self) -> None:
        if self.live:  # a display never started would still print a newline when stopped
            self.view.stop()


def add_json_argument(parser: argparse.ArgumentParser, what: str = "the results document (as results.json)") -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} on stdout instead of the tables")


def print_json(doc: Any) -> None:
    """The document alone on stdout (progress and warnings went to stderr)."""
    import json
    import sys

    sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")


GLYPHS = {  # the overview's marks: a colour and a glyph, so that it reads without colour too
    "loaded": ("✓", "green", "loads"),
    "loaded-after-fix": ("◐", "cyan", "loads with a fix"),
    "loaded-output-mismatch": ("≠", "yellow", "loads, answers differently"),
    "load-error": ("✗", "red", "fails"),
    "import-error": ("!", "dark_orange", "environment broken"),
    "timeout": ("⧗", "yellow", "timeout"),
    "crash": ("†", "bold red", "crash"),
    "unresolvable": ("?", "magenta", "unresolvable"),
    "skipped": ("–", "grey50", "skipped"),
    "infra-error": ("~", "blue", "infrastructure"),
}


def overview(console: Console, doc: dict[str, Any], outdir: Path | None = None) -> None:
    """The first screen: every model against every cell (a glyph and a colour per result), the
    cells by number, broken environments marked as environments, then one line per model that
    does not load everywhere. Fits 80 columns; the per-cell tables are -v's."""
    from ..report import summary

    grouped = summary.results_by_model(doc)
    cells = [c["id"] for c in doc.get("cells", []) if any(r["cell"] == c["id"] for r in doc.get("results", []))]
    broken = summary.broken_cells(doc)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
    table.add_column("model", overflow="ellipsis", no_wrap=True, max_width=34)
    for n, _ in enumerate(cells, 1):
        table.add_column(str(n), justify="center", no_wrap=True)
    seen: set[str] = set()
    for model in doc.get("models", []):
        by_cell = {r["cell"]: r for r in grouped.get(model["name"], [])}
        row = [terminal(model["name"])]
        for cell in cells:
            r = by_cell.get(cell)
            if r is None:
                row.append("")
                continue
            glyph, style, _ = GLYPHS.get(r["status"], ("·", "white", r["status"]))
            seen.add(r["status"])
            row.append(f"[{style}]{glyph}[/]")
        table.add_row(*row)
    console.print(table)
    console.print(
        "  " + "  ".join(f"[{GLYPHS[s][1]}]{GLYPHS[s][0]}[/] {GLYPHS[s][2]}" for s in GLYPHS if s in seen), highlight=False
    )
    for n, cell in enumerate(cells, 1):
        raised = broken.get(cell, "").split(" → ")[-1]
        note = f"  [dark_orange]! {terminal(raised)}[/]" if cell in broken else ""
        console.print(f"  [bold]{n:>2}[/] {terminal(cell)}{note}", highlight=False)
    failing = [
        m["name"]
        for m in doc.get("models", [])
        if any(r["status"] in FAILED and r["status"] != summary.BROKEN for r in grouped.get(m["name"], []))
    ]
    if failing:
        console.print()
    for name in failing:  # one line each: where it fails (the grid's columns) and what it raised, and why
        bad = [r for r in grouped.get(name, []) if r["status"] in FAILED and r["status"] != summary.BROKEN]
        where = ", ".join(str(n) for n in sorted(cells.index(r["cell"]) + 1 for r in bad if r["cell"] in cells))
        kinds = sorted({summary.exception_label(r).split(" → ")[-1] or r["status"] for r in bad})
        causes = sorted({str(r["cause"]) for r in bad if r.get("cause")})
        said = f"fails in {where}: {', '.join(kinds)}" + (f"; cause: {', '.join(causes)}" if causes else "")
        console.print(f"[bold]{terminal(name)}[/] {terminal(said)}", highlight=False, no_wrap=True, overflow="ellipsis")
    if failing:
        where = f"{terminal(outdir)}/report.md" if outdir else "report.md"
        console.print(f"[grey50]the fixes and every attempt: -v, or {where}[/]", highlight=False)


def summary_tables(console: Console, doc: dict[str, Any]) -> None:
    """Per model: the boundary sentence, a row per cell, then each distinct fix once."""
    from ..report import summary

    grouped = summary.results_by_model(doc)
    for model in doc.get("models", []):
        results = grouped.get(model["name"], [])
        title = f"[bold]{terminal(model['name'])}[/]: {terminal(summary.boundary(doc, model['name'], results))}"
        table = Table(title=title, title_justify="left")
        for column in ("cell", "status", "exception", "cause", "fix"):
            table.add_column(column, overflow="fold")
        fixes: dict[str, int] = {}
        for r in results:
            number = fixes.setdefault(r["fix"], len(fixes) + 1) if r.get("fix") else None
            status = f"[{STYLE.get(r['status'], 'white')}]{r['status']}[/]" + (f" ({terminal(r['fix_worked'])})" if r.get("fix_worked") else "")
            status += " [grey50]cached[/]" if r.get("cached") else ""
            table.add_row(terminal(r["cell"]), status, terminal(summary.exception_label(r)), r.get("cause") or "", f"\\[{number}]" if number else "")
        console.print(table)
        for fix, number in fixes.items():
            console.print(f"  [{number}] {visible(fix)}", markup=False)


def print_follow_up(console: Console, doc: dict[str, Any]) -> None:
    """New releases and the gate's verdict, under the tables."""
    from ..report import summary

    contained = summary.containment_text(doc)
    if contained.startswith("NOT"):
        console.print(f"[bold red]{terminal(contained)}[/]", markup=True, highlight=False)
    infra = summary.infra_text(doc)
    if infra:
        console.print(f"[bold blue]{terminal(infra)}[/]")
    news = summary.new_release_text(doc)
    if news:
        console.print(f"[bold blue]{terminal(news)}[/]")
    gate = doc.get("gate")
    if gate and summary.shows_gate(doc):
        console.print(f"[{'green' if summary.gate_verdict(gate) == 'passes' else 'red'}]{terminal(summary.gate_text(doc))}[/]")
        if gate["fail_on"] == "regression" and summary.shows_regressions(doc):
            for r in gate["regressions"]:
                console.print(
                    visible(f"  regression: {r['model']} @ {r['cell']}: {r['status']} {r.get('exception') or ''} ({r['why']})"), markup=False
                )


def print_durations(console: Console, doc: dict[str, Any], count: int) -> None:
    """The `count` slowest cells, as pytest --durations lists tests: the probe run (every model's
    loads) and, where a cell's environment was built this run, not reused, the run's wall time is
    the sum; results from the store took no time."""
    spent: dict[str, float] = {}
    models: dict[str, int] = {}
    for r in doc.get("results", []):
        if r.get("cached"):
            continue
        spent[r["cell"]] = max(spent.get(r["cell"], 0.0), float(r.get("seconds") or 0))  # the cell's probe run, once
        models[r["cell"]] = models.get(r["cell"], 0) + 1
    slowest = sorted(spent.items(), key=lambda item: -item[1])[:count]
    console.print(f"[bold]slowest {len(slowest)} cell(s)[/] (the probe run: importing the framework and loading every model)")
    for cell, seconds in slowest:
        console.print(f"  {seconds:8.2f} s  {terminal(cell)} ({models[cell]} model(s))", highlight=False)
    if not slowest:
        console.print("  every result came from the store (--fresh runs them again)")


def print_plan(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title=f"{terminal(doc['matrix']['name'])}: {len(doc['cells'])} cells (dry run: nothing built)", title_justify="left")
    for column in ("cell", "env", "lock"):
        table.add_column(column, overflow="fold")
    for cell in doc["cells"]:
        lock = cell["lock"]
        table.add_row(terminal(cell["id"]), terminal(cell["env_key"] or "—"), f"{len(lock)} packages" if lock else "[magenta]unresolvable or skipped[/]")
    console.print(table)
    for env in doc.get("environments", []):
        if env.get("build"):
            console.print(f"[bold]# environment {terminal(env['key'])} ({terminal(', '.join(env['cells']))})[/]")
            console.print(env["build"], markup=False, highlight=False, soft_wrap=True)


def open_store(path: Path | None) -> Store:
    from ..store import default_store

    path = path or default_store()
    if not path.exists():
        raise UsageError(f"{path}: no result store yet (harness run writes one; --store PATH names another)")
    return Store(path)
