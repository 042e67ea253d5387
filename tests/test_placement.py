"""Where a cluster runs each cell (ray_executor.place): pure, no Ray; the cluster itself is
tested in tests/test_ray_executor.py."""

from __future__ import annotations

from harness.ray_executor import NodeView, place


def test_cells_go_where_their_environment_is_and_shared_ones_stay_together():
    keys = ["k1", "k2", "k3", "k4", "k1"]
    # every environment on node a only: a takes the cells until a build on b pays off; k1's two cells stay together
    placed = place(keys, {"a": NodeView(2, frozenset(keys)), "b": NodeView(2, frozenset())})
    assert placed[0] == placed[4] == "a" and set(placed) == set(range(5))
    # each environment on one node: every cell goes to its own
    placed = place(keys, {"a": NodeView(2, frozenset({"k1", "k2"})), "b": NodeView(2, frozenset({"k3", "k4"}))})
    assert [placed[n] for n in range(5)] == ["a", "a", "b", "b", "a"]
    # a shared cache (every environment everywhere): the cells spread over the slots
    many = [f"k{n}" for n in range(8)]
    placed = place(many, {"a": NodeView(2, frozenset(many)), "b": NodeView(2, frozenset(many))})
    assert sorted(list(placed.values()).count(node) for node in ("a", "b")) == [4, 4]
    # nothing built anywhere: spread too, each build once
    placed = place(many, {"a": NodeView(1, frozenset()), "b": NodeView(1, frozenset())})
    assert sorted(list(placed.values()).count(node) for node in ("a", "b")) == [4, 4]
