"""Planning: cells grouped into environments by what is installed, not by their names."""

from __future__ import annotations

from harness.matrix import Cell
from harness.plan import plan


def cell(tf: str, **env: str) -> Cell:
    return Cell(python="3.11", pins=(("tensorflow", tf),), env=tuple(sorted(env.items())))


def test_cells_with_one_lock_share_one_environment_in_first_seen_order():
    lock_a, lock_b = "tensorflow-cpu==2.15.1\n", "tensorflow-cpu==2.16.2\n"
    a, a_legacy, b = cell("2.15"), cell("2.15", TF_USE_LEGACY_KERAS="1"), cell("2.16")
    jobs = plan([(b, lock_b), (a, lock_a), (a_legacy, lock_a)])
    assert [job.cells for job in jobs] == [(b,), (a, a_legacy)]  # env vars change the cell, not its environment
    assert len({job.env.key for job in jobs}) == 2


def test_the_backend_and_its_template_are_part_of_the_environment():
    lock = "tensorflow-cpu==2.15.1\n"
    keys = {
        plan([(cell("2.15"), lock)], backend, template)[0].env.key for backend, template in (("uv", ""), ("docker", "a"), ("docker", "b"))
    }
    assert len(keys) == 3
