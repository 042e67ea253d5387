"""Reports and the store at scale (issue 14, target 8), no TensorFlow needed.

    python bench/bench_scale.py            # ~1 min

  store    a result store of RUNS x RESULTS rows (default 1,000 x 1,000: one million), written
           through Store.add as runs write it; then `harness history` and `harness diff`
           (the last two runs) as a user runs them, wall time of the whole command.
  report   a results document of 20 models x 1,000 cells rendered to HTML (render_html),
           its size; with Chromium and selenium installed, the time until the page's load
           event in headless Chromium.

Peers for the store: `sqlite3`'s own `SELECT COUNT(*)` over the results table (a full scan,
the floor any answer that counts rows would pay), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_figures  # bench/, the script's own folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.diagnose import CellResult  # noqa: E402
from harness.keys import result_key  # noqa: E402
from harness.store import Store, StoredResult  # noqa: E402

STATUSES = ["loaded", "load-error", "loaded-after-fix", "import-error", "timeout"]


def record(model: str, cell: str, n: int) -> dict:
    """A whole result record, as a run writes one (CellResult.to_dict)."""
    status = STATUSES[n % len(STATUSES)]
    failed = status in ("load-error", "import-error")
    return CellResult(
        model=model,
        cell=cell,
        status=status,  # type: ignore[arg-type]
        cause="version-mismatch" if failed else None,
        exception={"type": "ValueError", "message": "Unknown layer: 'X'"} if failed else None,
        fix="pass custom_objects" if failed else None,
        fix_worked="compile=False" if status == "loaded-after-fix" else None,
        versions={"tensorflow-cpu": "2.15.1", "keras": "2.15.0"},
        attempts=({"fix": "as is", "ok": not failed},),
    ).to_dict()


def build_store(path: Path, runs: int, per_run: int) -> None:
    store = Store(path)
    sha = "a" * 64
    for run in range(runs):
        run_id = store.start_run("bench", "uv")
        rows = []
        for n in range(per_run):
            model, cell = f"m{n % 20}.h5", f"py3.11-tensorflow2.{n // 20 % 50}.{run % 3}-numpy{n % 7}"
            data = record(model, cell, n + run)
            rows.append(StoredResult(data, sha, f"env{n}", "opts", 5, result_key(sha, cell, f"env{n}", "opts", 5)))
        store.add(run_id, rows)
        store.finish_run(run_id, True, False)
    store.close()


def timed(argv: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(argv, check=False, capture_output=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def document(models: int, cells: int) -> dict:
    # 10 TensorFlow releases x 100 (numpy x protobuf) pairs: a grid of 10 rows and 100 variant columns per model
    pins = [
        {"tensorflow": f"2.{12 + c % 10}.0", "numpy": f"1.{20 + c // 10 % 10}.0", "protobuf": f"4.{21 + c // 100 % 10}.0"}
        for c in range(cells)
    ]
    cell_ids = ["py3.11-" + "-".join(f"{k}{v}" for k, v in p.items()) for p in pins]
    cell_list = [{"id": c, "pins": p, "python": "3.11", "env": {}, "api": "tf.keras"} for c, p in zip(cell_ids, pins, strict=True)]
    model_list = [{"name": f"model{m:02d}.h5", "sha256": "a" * 64, "format": "h5", "keras_version": "2.15.0"} for m in range(models)]
    results = [record(m["name"], c, n) for n, (m, c) in enumerate((m, c) for m in model_list for c in cell_ids)]
    return {
        "schema": "harness-results",
        "matrix": {"name": "bench", "load": {}},
        "run": {"backend": "uv", "sandbox": "bwrap", "started": "", "finished": "", "complete": True},
        "cells": cell_list,
        "models": model_list,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-bench-scale")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--results", type=int, default=1000, help="results per run")
    parser.add_argument("--part", choices=["all", "store", "report"], default="all")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    figures: dict[str, float | int | str] = {}
    if args.part in ("all", "store"):
        bench_store(args, figures)
    if args.part in ("all", "report"):
        bench_report(args, figures)
    print_figures(figures)
    (args.work / "figures.json").write_text(json.dumps(figures, indent=1))


def bench_store(args: argparse.Namespace, figures: dict[str, float | int | str]) -> None:
    store = args.work / "store.sqlite"
    start = time.monotonic()
    build_store(store, args.runs, args.results)
    figures["store_rows"] = args.runs * args.results
    figures["store_build_s"] = time.monotonic() - start
    figures["store_mib"] = store.stat().st_size >> 20
    harness = [sys.executable, "-m", "harness"]
    figures["history_s"] = timed([*harness, "history", "--store", str(store)])
    figures["diff_s"] = timed([*harness, "diff", "--store", str(store)])
    db = sqlite3.connect(store)
    start = time.monotonic()
    db.execute("SELECT COUNT(*) FROM results").fetchone()
    figures["peer_sqlite_count_s"] = time.monotonic() - start
    db.close()
    print(f"history over {figures['store_rows']} results: {figures['history_s']:.2f} s, diff {figures['diff_s']:.2f} s (target < 1 s each)")


def bench_report(args: argparse.Namespace, figures: dict[str, float | int | str]) -> None:
    from harness.report.html import render_html

    doc = document(20, 1000)
    start = time.monotonic()
    page = render_html(doc)
    figures["html_20x1000_render_s"] = time.monotonic() - start
    figures["html_20x1000_mib"] = round(len(page.encode()) / (1 << 20), 2)
    html = args.work / "report.html"
    html.write_text(page)
    figures["chromium_load_s"] = chromium_load(html)
    print(f"HTML of 20 models x 1,000 cells: rendered in {figures['html_20x1000_render_s']:.2f} s (target < 2 s)")
    print(f"  {figures['html_20x1000_mib']} MiB, loaded in headless Chromium in {figures['chromium_load_s']} s (target < 2 s)")


def chromium_load(page: Path) -> float | str:
    """Seconds from navigation to the load event in headless Chromium (selenium), or why not measured."""
    try:
        from selenium import webdriver
    except ImportError:
        return "no selenium"
    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    if not (driver_path and chromium):
        return "no chromium or chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # named, so that selenium never looks for a browser on the network
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        start = time.monotonic()
        driver.get(page.as_uri())
        return time.monotonic() - start  # get() returns at the load event
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
