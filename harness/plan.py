"""Cells -> environment jobs. Pure: what to build and what runs in it, nothing started.

An environment's key hashes what goes into it (Python, the full lock, the backend and
its template), so cells that need the same packages share one environment across runs
and models. Environment variables are not part of it: they change a run, not a build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .keys import env_key
from .matrix import Cell


@dataclass(frozen=True)
class EnvSpec:
    python: str
    lock: str
    backend: str = "uv"
    template: str = ""

    @property
    def key(self) -> str:
        return env_key(self.python, self.lock, self.backend, self.template)


@dataclass(frozen=True)
class EnvJob:
    env: EnvSpec
    cells: tuple[Cell, ...]


def plan(locked: Sequence[tuple[Cell, str]], backend: str = "uv", template: str = "") -> list[EnvJob]:
    """Group cells by environment key, first-seen order kept (stable ids, stable reports)."""
    groups: dict[EnvSpec, list[Cell]] = {}
    for cell, lock in locked:
        groups.setdefault(EnvSpec(cell.python, lock, backend, template), []).append(cell)
    return [EnvJob(env, tuple(cells)) for env, cells in groups.items()]
