"""What running cells say on screen (activity.py): the probe channel's stages, read along
as bytes arrive in any chunking, never a cell's own text; the executor passes them on."""

from __future__ import annotations

import io
import json

from rich.console import Console

from harness import activity
from harness.commands.common import RichProgress
from harness.diagnose import CellResult
from harness.executor import LocalExecutor


def channel(*messages: dict) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def stages_of(data: bytes, models: int, chunk: int) -> list[str]:
    said: list[str] = []
    with activity.reporting(said.append):
        watch = activity.ChannelStages(models)
        for i in range(0, len(data), chunk):
            watch(data[i : i + chunk])
    return said


def test_the_channel_says_each_stage_in_any_chunking():
    data = channel({"kind": "start"}, {"kind": "import"}, {"kind": "model", "key": "m0"}, {"kind": "model"}, {"kind": "done"})
    expected = ["importing TensorFlow", "loading model 1/2", "loading model 2/2"]
    for chunk in (1, 3, 7, len(data)):
        assert stages_of(data, 2, chunk) == expected


def test_a_cell_cannot_put_its_text_on_screen_and_long_lines_are_skipped_bounded():
    hostile = {"kind": "\x1b[2J rm -rf / \n", "text": "x"}
    data = channel({"kind": "start"}, hostile) + b'{"kind": "' + b"A" * (activity.MAX_LINE + 10) + b'"}\n' + channel({"kind": "import"})
    assert stages_of(data, 1, 4096) == ["importing TensorFlow", "loading model 1/1"]
    watch = activity.ChannelStages(1)
    assert watch.listener is None  # no listener (a cluster worker): nothing is kept at all
    watch(b"x" * 10)
    assert not watch.pending


def test_the_local_executor_passes_each_cells_stages_under_its_id():
    class Task:
        def __init__(self, cell_id: str):
            self.cell = type("C", (), {"id": cell_id})()

        def __call__(self) -> str:
            activity.say(f"working on {self.cell.id}")
            return self.cell.id

    seen: list[tuple[str, str]] = []
    done = sorted(LocalExecutor(2).run_all([Task("a"), Task("b")], lambda cell, stage: seen.append((cell, stage))))
    assert done == ["a", "b"] and sorted(seen) == [("a", "working on a"), ("b", "working on b")]
    activity.say("outside any cell")  # no listener here: nothing happens


def test_off_a_terminal_progress_is_one_line_per_cell_and_every_stage_with_v():
    """A CI log: by default one line per finished cell (its results as the overview's glyphs, an
    ETA after three); with -v every stage change too, each once."""
    for verbosity in (0, 1):
        out = io.StringIO()
        progress = RichProgress(Console(file=out, force_terminal=False, width=120), verbosity)
        progress.start(4)
        progress.cell_stage("c1", "importing TensorFlow")
        progress.cell_stage("c1", "importing TensorFlow")  # the same stage again: not repeated
        progress.cell_stage("c1", "loading model 1/1")
        for n in range(1, 5):
            progress.cell_done([CellResult("m.h5", f"c{n}", "loaded"), CellResult("n.h5", f"c{n}", "load-error")])
        progress.stop()
        lines = out.getvalue().splitlines()
        stages = [line for line in lines if line.startswith("  c1: ")]
        assert stages == (["  c1: importing TensorFlow", "  c1: loading model 1/1"] if verbosity else [])
        counts = [line for line in lines if line.startswith("· ") and "/4 " in line]
        assert counts[0] == "· 1/4 c1 ✓✗" and counts[1] == "· 2/4 c2 ✓✗"
        assert counts[2].startswith("· 3/4 c3 ✓✗ · ETA ") and counts[3] == "· 4/4 c4 ✓✗"
        assert any("load-error" in line for line in lines) == bool(verbosity)  # each result's own line only with -v


def test_builds_overlap_probes_and_probes_stay_within_jobs():
    """Cells that build and then probe (sleeps stand for both): with -j 2, four build slots,
    never more than two probes or four builds at once, and builds run while others probe;
    with -j 1, one cell at a time."""
    import threading
    import time

    def observe(jobs: int) -> dict[str, int]:
        lock = threading.Lock()
        now = {"build": 0, "probe": 0}
        most = {"build": 0, "probe": 0, "overlap": 0}

        def stage(kind: str) -> None:
            with activity.slot(kind):
                with lock:
                    now[kind] += 1
                    most[kind] = max(most[kind], now[kind])
                    if now["build"] and now["probe"]:
                        most["overlap"] += 1
                time.sleep(0.05)
                with lock:
                    now[kind] -= 1

        def task() -> None:
            stage("build")
            stage("probe")

        list(LocalExecutor(jobs).run_all([task] * 8))
        return most

    two = observe(2)
    assert two["probe"] == 2 and two["build"] == 4 and two["overlap"] > 0
    one = observe(1)
    assert (one["probe"], one["build"], one["overlap"]) == (1, 1, 0)


def test_a_failing_display_never_fails_the_cell():
    def broken(stage: str) -> None:
        raise RuntimeError("a display bug")

    with activity.reporting(broken):
        activity.say("building the environment: 3 packages")  # no exception reaches the build


def test_the_eta_gives_way_to_what_is_still_running_and_rows_fit_80_columns():
    """When every cell left is running, a rate-based ETA says nothing (it sat still for 24 s
    while the last cell ran): the bar says how many are running. A running cell's row is cut
    to leave the bar its width on an 80-column terminal."""
    import time

    from harness.commands.common import EtaColumn

    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=80), 0)
    progress.start(4)
    for n in range(3):
        progress.cell_stage(f"c{n}", "loading")
        time.sleep(0.01)
        progress.cell_done([CellResult("m.h5", f"c{n}", "loaded")])
    long_id = "py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy-with-a-long-suffix"
    progress.cell_stage(long_id, "building the environment: 40 packages")
    task = progress.bar.tasks[0]
    assert EtaColumn().render(task).plain == "1 running"
    from harness.commands.common import RunningRows

    rows = RunningRows(progress).__rich__().plain.splitlines()
    assert len(rows) == 1 and len(rows[0]) <= 80 and rows[0].endswith("…")
    progress.stop()
