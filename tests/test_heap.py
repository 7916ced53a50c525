"""A long-lived process's start-up objects are frozen and its young objects collected less
often than CPython's default (heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gonghui import heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_ones_collected_at_the_raised_threshold() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    kept = [[] for _ in range(1000)]  # containers that exist before the process takes work

    heap.freeze_startup_objects()

    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
    # What the process makes afterwards is still collected: a cycle made now is found.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
