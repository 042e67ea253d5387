"""Reports rendered from the canonical JSON (a real run's results, tests/data)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from docs import synthetic_doc

from harness import cli
from harness.errors import UsageError
from harness.exits import exit_code
from harness.report import load_results, write_reports
from harness.report.summary import boundary, exception_label, failure_groups, variant_grid

SAMPLE = Path(__file__).resolve().parent / "data" / "seed-article-results.json"


def doc_with(statuses: dict[str, str]) -> dict:
    """A document with one model whose cells differ only in their tensorflow pin."""
    cells = [{"id": f"py3.11-tensorflow{v}", "pins": {"tensorflow": v}} for v in statuses]
    results = [
        {"model": "m.h5", "cell": f"py3.11-tensorflow{v}", "status": s, "exception": {"type": "ValueError"} if s == "load-error" else None}
        for v, s in statuses.items()
    ]
    return {"cells": cells, "results": results, "models": [{"name": "m.h5"}]}


@pytest.mark.parametrize(
    ("statuses", "sentence"),
    [
        (
            {"2.15.1": "loaded", "2.16.2": "load-error", "2.21.0": "load-error"},
            "loads up to tensorflow 2.15.1; fails from 2.16.2 on (ValueError)",
        ),
        ({"2.21.0": "loaded", "2.15.1": "load-error"}, "fails up to tensorflow 2.15.1; loads from 2.21.0 on (ValueError)"),
        ({"2.15.1": "loaded", "2.16.2": "loaded"}, "loads with every tensorflow release tried (2.15.1 to 2.16.2)"),
        ({"2.15.1": "load-error"}, "fails with tensorflow 2.15.1 (ValueError)"),
        ({"2.15.1": "load-error", "2.16.2": "load-error"}, "fails with every tensorflow release tried (2.15.1 to 2.16.2) (ValueError)"),
        (
            {"2.13.1": "loaded", "2.14.1": "load-error", "2.15.1": "loaded"},
            "loads with tensorflow 2.13.1, 2.15.1; fails with 2.14.1 (ValueError)",
        ),
        ({"2.15.1": "unresolvable"}, "no cell could be tried (1 unresolvable)"),
    ],
)
def test_boundary_sentence(statuses, sentence):
    assert boundary(doc_with(statuses), "m.h5") == sentence


def test_boundary_names_an_attribute_error_printed_on_the_way_and_keeps_causes_apart():
    doc = doc_with({"2.14.0": "load-error", "2.15.1": "loaded"})
    doc["results"][0].update(attribute_error=True, exception={"type": "TypeError"}, cause="version-mismatch")
    assert boundary(doc, "m.h5") == "fails up to tensorflow 2.14.0; loads from 2.15.1 on (AttributeError, TypeError; cause: version-mismatch)"
    assert exception_label(doc["results"][0]) == "AttributeError → TypeError"


def test_a_broken_environment_is_not_counted_against_the_model():
    """TF 2.14 beside numpy 2 never imports: "fails up to 2.14.0" would blame the model."""
    doc = doc_with({"2.14.0": "import-error", "2.15.1": "loaded", "2.16.2": "loaded"})
    doc["results"][0].update(exception={"type": "TypeError"}, cause="environment")
    said = boundary(doc, "m.h5")
    assert said.startswith("loads with every tensorflow release tried (2.15.1 to 2.16.2)") and "fails" not in said
    assert "not counted: py3.11-tensorflow2.14.0, where the framework does not import" in said
    from harness.report.summary import broken_cells

    assert broken_cells(doc) == {"py3.11-tensorflow2.14.0": "TypeError"}


def test_markdown_opens_on_the_overview_with_broken_environments_said_as_such(tmp_path):
    doc = load_results(SAMPLE)
    write_reports(doc, tmp_path)
    md = (tmp_path / "report.md").read_text()
    head = md.split("\n## `")[0]  # before the first model's section
    assert "## Every model in every environment" in head
    rows = [line for line in head.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == [m["name"] for m in doc["models"]]
    assert all(r.count("|") == len(doc["cells"]) + 2 for r in rows)
    broken = [line for line in head.splitlines() if "environment broken" in line]
    assert len(broken) == 2 and "not counted against the models" in broken[0]


def test_markdown_junit_and_html_from_a_real_run(tmp_path):
    doc = load_results(SAMPLE)
    write_reports(doc, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## `dense_keras3.keras`" in md
    assert "**fails up to tensorflow 2.15.1; loads from 2.16.2 on" in md
    assert md.count("| `py3.11-") == len(doc["results"])
    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert sum(len(s.findall("testcase")) for s in suites) == len(doc["results"])
    failures = sum(len(s.findall("testcase/failure")) for s in suites)
    assert failures == sum(r["status"] in ("load-error", "import-error", "timeout", "crash") for r in doc["results"])
    html = (tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # self-contained: nothing fetched
    assert html.count('<button type="button" class="cell s-') == len(doc["results"])  # the models' grids
    assert html.count('<button type="button" class="cell mini ') == len(doc["results"])  # the overview
    assert html.count(' attr"') == sum(bool(r["attribute_error"]) for r in doc["results"])


def test_partial_run_is_marked(tmp_path):
    doc = load_results(SAMPLE)
    doc["run"]["complete"] = False
    write_reports(doc, tmp_path)
    assert "Partial report" in (tmp_path / "report.md").read_text()
    assert "Partial report" in (tmp_path / "report.html").read_text()


def test_exit_code_follows_failures():
    doc = load_results(SAMPLE)
    assert exit_code(doc) == 1
    fixed = copy.deepcopy(doc)
    fixed["results"] = [r for r in fixed["results"] if r["status"] in ("loaded", "loaded-after-fix", "skipped")]
    assert exit_code(fixed) == 0


def test_load_results_rejects_other_files(tmp_path):
    other = tmp_path / "x.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(UsageError, match="not a harness results file"):
        load_results(other)
    with pytest.raises(UsageError, match="no such results file"):
        load_results(tmp_path / "missing.json")


def test_report_command_rerenders(tmp_path, capsys):
    code = cli.main(["report", str(SAMPLE), "-o", str(tmp_path)])
    assert code == 0  # rendered; the sample's failed cells were its run's verdict, not this command's
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "report.html", "junit.xml"}
    assert "dense_keras3.keras" in capsys.readouterr().out


def test_the_headline_never_merges_a_variant_into_the_plain_cells():
    doc = doc_with({"2.15.1": "loaded", "2.16.2": "load-error"})
    legacy = "py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy"
    doc["cells"].append({"id": legacy, "pins": {"tensorflow": "2.16.2", "tf-keras": "2.16.0"}, "env": {"TF_USE_LEGACY_KERAS": "1"}})
    doc["results"].append({"model": "m.h5", "cell": legacy, "status": "loaded"})
    assert boundary(doc, "m.h5") == (
        "loads up to tensorflow 2.15.1; fails from 2.16.2 on (ValueError); with tf-keras, TF_USE_LEGACY_KERAS=1: loads with tensorflow 2.16.2"
    )


def test_keras_3_backends_are_named_side_by_side_and_a_different_answer_is_said():
    """The issue's sentence: "loads on jax, answers differently from tensorflow: max abs diff 0.4"."""
    cells = [
        {"id": f"py3.11-keras3.15.1-on-{b}", "pins": {"keras": "3.15.1"}, "env": {"KERAS_BACKEND": b}, "api": "keras"}
        for b in ("torch", "jax", "tensorflow")
    ]
    diff = {"reference": "py3.11-keras3.15.1-on-tensorflow", "backend": "tensorflow", "max_abs": 0.4, "max_rel": 0.2}
    results = [
        {"model": "m.keras", "cell": cells[2]["id"], "status": "loaded"},
        {"model": "m.keras", "cell": cells[1]["id"], "status": "loaded-output-mismatch", "cause": "backend", "output_diff": diff},
        {"model": "m.keras", "cell": cells[0]["id"], "status": "loaded-after-fix", "fix_worked": "repaired config"},
    ]
    doc = {"cells": cells, "models": [{"name": "m.keras"}], "results": results}
    assert boundary(doc, "m.keras") == (
        "on tensorflow: loads with keras 3.15.1; "
        "on jax: loads with keras 3.15.1, but answers differently from tensorflow: max abs diff 0.4 (cause: backend); "
        "on torch: loads with keras 3.15.1, with repaired config"
    )


def test_first_run_gate_names_no_option_and_counts_results_and_cells(tmp_path):
    from harness.gate import evaluate
    from harness.report.markdown import render_markdown
    from harness.report.summary import gate_text

    doc = load_results(SAMPLE)
    failures = [r for r in doc["results"] if r["status"] in ("load-error", "import-error", "crash", "timeout", "loaded-output-mismatch")]
    doc["gate"] = dict(evaluate(doc, "any", None, None), given=False)
    broken = {r["cell"] for r in doc["results"]} - {r["cell"] for r in doc["results"] if r["status"] != "import-error"}
    assert len(broken) == 2  # TF 2.14 and the numpy 2 override: their framework never imports
    models = [r for r in failures if r["cell"] not in broken]
    cells = len({r["cell"] for r in models})
    in_broken = len(failures) - len(models)
    assert gate_text(doc) == f"fails: {len(models)} failed results in {cells} cells and 2 broken environment(s) ({in_broken} results)"
    text = render_markdown(doc)
    assert "--fail-on" not in text and "Regressions" not in text
    # each failure's message, first line, beside its type
    assert "ValueError: Unknown layer: 'ResidualBlock'" in text
    doc["gate"] = dict(evaluate(doc, "regression", None, None), given=True)  # no reference: nothing to regress from
    assert "Regressions" not in render_markdown(doc)


def test_rows_come_in_version_order_whatever_the_matrix_order():
    from harness.report.summary import results_for

    doc = doc_with({"2.15.1": "loaded", "2.21.0": "load-error", "2.14.0": "import-error"})  # 2.14 added by an include, last
    assert [r["cell"] for r in results_for(doc, "m.h5")] == [
        "py3.11-tensorflow2.14.0",
        "py3.11-tensorflow2.15.1",
        "py3.11-tensorflow2.21.0",
    ]


def test_the_grid_has_release_rows_and_only_the_variant_columns_that_have_cells():
    doc = load_results(SAMPLE)
    grid = variant_grid(doc, "residual_block.h5")
    assert grid.axis == "tensorflow" and grid.rows == ["2.14.0", "2.15.1", "2.16.2", "2.21.0"]
    # tf-keras moves with TensorFlow: one column, its release in the tile; the plain cells first
    assert grid.columns == ["plain", "tensorflow-addons", "numpy · override", "tf-keras · TF_USE_LEGACY_KERAS=1", "tf-keras · api keras"]
    assert grid.companions["py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy"] == "tf-keras 2.16.0"
    assert sum(len(v) for v in grid.slots.values()) == 8 and all(len(v) == 1 for v in grid.slots.values())
    assert ("2.14.0", "tensorflow-addons") not in grid.slots  # an empty slot, not a result


def test_a_package_that_varies_within_a_release_names_its_columns():
    doc = synthetic_doc(3, 2, 2)
    grid = variant_grid(doc, "model00.h5")
    assert grid.rows == ["2.12.0", "2.13.0", "2.14.0"]
    assert grid.columns == [
        "tf-keras",
        "numpy 1.20.0 · protobuf 4.21.0",
        "numpy 1.20.0 · protobuf 4.22.0",
        "numpy 1.21.0 · protobuf 4.21.0",
        "numpy 1.21.0 · protobuf 4.22.0",
    ]
    # several Pythons: named in the tile where each release has one, a column each where they vary within a release
    for c in doc["cells"]:
        c["python"] = "3.10" if c["pins"]["tensorflow"] == "2.12.0" else "3.11"
    grid = variant_grid(doc, "model00.h5")
    assert grid.companions["py3.11-tensorflow2.12.0-tf-keras2.12.0"] == "py3.10, tf-keras 2.12.0" and len(grid.columns) == 5
    for c in doc["cells"]:
        c["python"] = "3.10" if "tf-keras" in c["id"] else "3.11"
    assert variant_grid(doc, "model00.h5").columns[:2] == ["py3.10 · tf-keras", "py3.11 · numpy 1.20.0 · protobuf 4.21.0"]


def test_cells_the_pins_cannot_tell_apart_keep_a_column_each():
    doc = synthetic_doc(1, 3)
    for c in doc["cells"]:
        c["pins"] = {"tensorflow": c["pins"]["tensorflow"]}  # a document whose cells lost their other pins
    grid = variant_grid(doc, "model00.h5")
    assert len(grid.columns) == 4 and all(len(v) == 1 for v in grid.slots.values())
    assert "py3.11-numpy1.20.0-protobuf4.21.0" in grid.columns


def test_failures_are_grouped_by_what_they_raised_cause_and_fix():
    doc = synthetic_doc(4, 5)
    results = [r for r in doc["results"] if r["status"] == "load-error"]
    groups = failure_groups(doc["results"])
    load_errors = [g for g in groups if g["status"] == "load-error"]
    assert len(load_errors) == 1 and load_errors[0]["cells"] == [r["cell"] for r in results]
    assert load_errors[0]["cause"] == "custom-object-not-registered" and load_errors[0]["raised"].startswith("ValueError: Unknown layer")
    assert not any(g["status"] in ("loaded", "skipped") for g in groups)


def accepted_doc() -> dict:
    """The sample run gated against a baseline that accepted every result but dense.h5's."""
    from harness.gate import evaluate, outcomes_of

    doc = load_results(SAMPLE)
    accepted = outcomes_of([r for r in doc["results"] if r["model"] != "dense.h5"])
    doc["gate"] = evaluate(doc, "regression", accepted, "baseline b.json")
    return doc


def test_junit_reads_in_a_junit_parser_as_a_suite_per_model(tmp_path):
    from junitparser import JUnitXml, Properties

    doc = accepted_doc()
    write_reports(doc, tmp_path)
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    suites = list(xml)
    assert [s.name for s in suites] == [m["name"] for m in doc["models"]]
    suite = next(s for s in suites if s.name == "residual_block.h5")
    assert {p.name: p.value for p in suite.properties()}["keras_version"] == "2.15.0"
    cases = list(suite)
    assert sorted(c.name for c in cases) == sorted(r["cell"] for r in doc["results"] if r["model"] == "residual_block.h5")
    # the model's dots never split it into package and class
    assert {c.classname for c in cases} == {"harness.seed-article.residual_block_h5"}
    legacy = next(c for c in cases if c.name.endswith("-legacy"))
    props = {p.name: p.value for p in legacy.child(Properties)}
    assert props["tensorflow"] == "2.16.2" and props["tf-keras"] == "2.16.0" and props["env TF_USE_LEGACY_KERAS"] == "1"
    assert props["installed tensorflow-cpu"] == "2.16.2" and props["python"] == "3.11"

    # the baseline accepted every failure but dense.h5's two: those fail, the others are skipped with the reason
    regressions = {(r["model"], r["cell"]) for r in doc["gate"]["regressions"]}
    assert len(regressions) == 2 and {m for m, _ in regressions} == {"dense.h5"}
    failed = [(s.name, c.name) for s in suites for c in s if c.result and c.is_failure]
    assert sorted(failed) == sorted(regressions)
    skipped = [c for s in suites for c in s if c.is_skipped]
    failures = [r for r in doc["results"] if r["status"] in ("load-error", "import-error", "timeout", "crash")]
    assert len(skipped) == len(failures) - 2
    assert all(c.result[0].message.startswith("accepted: it failed in baseline b.json too") for c in skipped)
    assert (xml.tests, xml.failures, xml.skipped, xml.errors) == (len(doc["results"]), 2, len(failures) - 2, 0)
    assert sum(s.failures for s in suites) == 2  # each suite's counts are its own


def test_junit_times_are_each_models_own_and_timestamps_iso_8601(tmp_path):
    """A cell's probe loads every model in one run: a model's case takes its own load attempts'
    time (load_seconds), else its share of the run; never the whole run's time per model."""
    import datetime

    from junitparser import JUnitXml

    doc = load_results(SAMPLE)
    doc["run"]["started"] = "2026-12-07T06:00:00+0000"
    cells: dict[str, int] = {}
    for r in doc["results"]:
        cells[r["cell"]] = cells.get(r["cell"], 0) + 1
    first = doc["results"][0]
    first["load_seconds"] = 0.25
    write_reports(doc, tmp_path)
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    cases = {(s.name, c.name): c.time for s in xml for c in s}
    assert cases[(first["model"], first["cell"])] == 0.25
    other = next(r for r in doc["results"][1:] if not r.get("load_seconds"))
    assert abs(cases[(other["model"], other["cell"])] - (other["seconds"] or 0) / cells[other["cell"]]) < 1e-3
    probe_runs = sum({r["cell"]: r["seconds"] or 0 for r in doc["results"]}.values())  # each cell's run once
    assert sum(s.time for s in xml) <= probe_runs + 0.3
    for suite in xml:
        assert suite.timestamp == "2026-12-07T06:00:00+00:00"
        datetime.datetime.fromisoformat(suite.timestamp)


def test_junit_without_a_reference_fails_every_failure(tmp_path):
    from junitparser import JUnitXml

    doc = load_results(SAMPLE)
    write_reports(doc, tmp_path)
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    assert xml.failures == sum(r["status"] in ("load-error", "import-error", "timeout", "crash") for r in doc["results"])
    assert xml.skipped == 0


def test_the_terminal_prints_a_models_text_as_written(tmp_path, capsys):
    """Rich turns ':fire:' into an emoji by default; a file name that holds one is shown as is."""
    doc = synthetic_doc(1, 1)
    for result in doc["results"]:
        result["model"] = "net:fire:.h5"
    doc["models"] = [{**doc["models"][0], "name": "net:fire:.h5"}]
    source = tmp_path / "results.json"
    source.write_text(json.dumps(doc))
    assert cli.main(["report", str(source), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "net:fire:.h5" in out and "\N{FIRE}" not in out
