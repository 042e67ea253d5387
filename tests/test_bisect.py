"""Bisection: the search (pure) and a real run over TensorFlow 2.12 to the newest release."""

from __future__ import annotations

import pytest
from packaging.version import Version

from harness import cli
from harness.bisect import Step, candidates, max_steps, search
from harness.diagnose import CellResult

LINES = [f"2.{minor}.{patch}" for minor in range(12, 22) for patch in range(3)]


def step(version: str, changes_at: str | None) -> Step:
    status = "loaded" if changes_at and Version(version) >= Version(changes_at) else "load-error"
    return Step(version, CellResult(model="m", cell=version, status=status))


def test_candidates_are_the_newest_patch_per_minor_line():
    versions = [Version(v) for v in [*LINES, "2.22.0rc0"]]
    assert [str(v) for v in candidates(versions, "2.12", "latest")] == [f"2.{m}.2" for m in range(12, 22)]
    assert [str(v) for v in candidates(versions, "2.14", "2.16")] == ["2.14.2", "2.15.2", "2.16.2"]
    assert len(candidates(versions, "2.20", None, patches=True)) == 6


@pytest.mark.parametrize("changes_at", [None, "2.13.2", "2.16.2", "2.21.2"])
def test_search_finds_the_first_change_within_1_plus_log2_n(changes_at):
    points = [f"2.{m}.2" for m in range(12, 22)]
    seen: list[str] = []

    def evaluate(version: str) -> Step:
        seen.append(version)
        return step(version, changes_at)

    result = search(points, evaluate)
    assert len(seen) == len(set(seen)) <= max_steps(len(points)) == 5
    if changes_at is None:
        assert result.first_change is None
    else:
        assert result.first_change is not None and result.before is not None
        assert result.first_change.version == changes_at
        assert points.index(result.before.version) == points.index(changes_at) - 1


@pytest.mark.e2e
def test_bisect_a_keras3_file_over_real_tensorflow_releases(tmp_path, monkeypatch, capsys, saved_models, harness_cache):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    code = cli.main(
        ["bisect", str(saved_models["dense_keras3.keras"]), "--axis", "tensorflow", "--package", "tensorflow-cpu", "--from", "2.12"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "the outcome changes at tensorflow 2.16.2 (after 2.15.1)" in out
    evaluated = out.split("candidates (at most 5): ")[1].splitlines()[0].split(", ")
    assert len(evaluated) <= 5 and evaluated[0] == "2.12.1"
