"""The per-target rate jump the praise vote will use: a target's actions this minute far
above its recent minutes raise one flag, with the evidence."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gonghui import clock
from gonghui.db import unit_of_work
from gonghui.risk import note_target
from gonghui.risk.models import Flag
from tests.fixtures import Tree, to_the_next_minute


def test_a_targets_jump_far_above_its_recent_rate_is_flagged_once(tree: Tree) -> None:
    key = "vote:7:candidate:3"
    to_the_next_minute()  # each minute's notes in that minute's bucket
    for _ in range(10):  # ten quiet minutes: 4 a minute
        assert not any(note_target(key, org_id=tree.city_a, activity_id=None) for _ in range(4))
        clock.advance(timedelta(seconds=60))
    raised = [note_target(key, org_id=tree.city_a, activity_id=None) for _ in range(80)]
    assert raised.count(True) == 1
    assert raised.index(True) == 50  # the 51st this minute: past max(50, 5 x 4)
    with unit_of_work(read_only=True) as session:
        (flag,) = session.scalars(select(Flag)).all()
    assert (flag.kind, flag.subject, flag.org_id) == (
        "target_jump",
        f"target:{key}",
        tree.city_a,
    )
    assert flag.evidence["this_minute"] == 51
    assert flag.evidence["mean_per_minute_before"] == 4.0


def test_a_steady_target_is_not_flagged(tree: Tree) -> None:
    for _ in range(12):
        for _ in range(60):
            assert not note_target("vote:7:candidate:4", org_id=tree.city_a, activity_id=None)
        clock.advance(timedelta(seconds=60))
    with unit_of_work(read_only=True) as session:
        assert session.scalars(select(Flag)).all() == []
