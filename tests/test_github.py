"""Inside GitHub Actions (GITHUB_ACTIONS=true): the step summary and ::error annotations."""

from __future__ import annotations

from harness.report.github import error_annotations, report_to_github


def doc(reference: str | None, exception: str = "ValueError") -> dict:
    regression = {"model": "m.h5", "cell": "py3.11-tensorflow2.16.2", "status": "load-error", "exception": exception, "why": "was loaded"}
    return {
        "matrix": {"name": "mx"},
        "models": [{"name": "m.h5", "format": "h5", "keras_version": "2.15.0"}],
        "cells": [{"id": "py3.11-tensorflow2.16.2", "pins": {"tensorflow": "2.16.2"}}],
        "results": [{"model": "m.h5", "cell": "py3.11-tensorflow2.16.2", "status": "load-error", "cause": "custom-object"}],
        "gate": {"fail_on": "regression", "reference": reference, "regressions": [regression], "failed": True, "reason": "1 regression"},
    }


def test_off_github_nothing_happens(tmp_path):
    emitted: list[str] = []
    assert not report_to_github(doc("run 3"), {"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}, emitted.append)
    assert emitted == [] and not (tmp_path / "s.md").exists()


def test_the_summary_is_appended_and_each_regression_annotated(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("an earlier step's summary\n")
    emitted: list[str] = []
    assert report_to_github(doc("run 3"), {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}, emitted.append)
    text = summary.read_text()
    assert text.startswith("an earlier step's summary\n") and "m.h5" in text  # appended, not replaced
    assert emitted == ["::error title=harness%3A m.h5 regressed::m.h5 @ py3.11-tensorflow2.16.2: load-error ValueError (was loaded)"]


def test_no_reference_no_regression_and_a_cells_text_cannot_start_a_command():
    assert error_annotations(doc(None)) == []  # a first run has nothing to regress from
    [line] = error_annotations(doc("run 3", exception="X\n::add-mask::secret"))
    assert "\n" not in line and "X\\n::add-mask::secret" in line  # the newline shown, not made


def test_a_shard_writes_one_partial_line_and_no_annotation(tmp_path):
    """A shard never decides: its summary is one line marked partial; the merge annotates."""
    summary = tmp_path / "s.md"
    shard = doc("run 3")
    shard["run"] = {**shard.get("run", {}), "shard": {"index": 2, "count": 3}}
    emitted: list[str] = []
    assert report_to_github(shard, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}, emitted.append)
    said = summary.read_text()
    assert said.startswith("**harness: shard 2/3** ran") and "partial" in said and said.count("\n") == 2  # the line, then a blank
    assert not any(line.startswith("::error") for line in emitted)
    assert error_annotations(doc("run 3"))  # the same document unsharded is annotated
