"""The change feed: a change committed in one process reaches every process's caches, and
the feed survives what polling a table meets (ids handed out before commit, ids going back,
too many gaps to follow). Here the table is the transport, as without Redis or while it is
unreachable (``polled_feed``); test_invalidation_pubsub.py has Redis as the transport."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from gonghui import clock, invalidation
from gonghui.db import unit_of_work
from gonghui.invalidation import CacheChange, TopicCache

pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("polled_feed")]

NOTES = "tests.notes"
OTHER = "tests.other"
notes: TopicCache[str, str] = TopicCache(NOTES, key_of=lambda key, _: key, ttl_s=300)
others: TopicCache[str, str] = TopicCache(OTHER, key_of=lambda key, _: key, ttl_s=300)
# Holds values that depend on what NOTES describes: any change there clears it.
derived: TopicCache[str, str] = TopicCache(
    OTHER + ".derived", key_of=lambda key, _: key, ttl_s=300, cleared_by=(NOTES,)
)
# Whose entries' expiry is checked.
expiring: TopicCache[str, str] = TopicCache(OTHER + ".expiring", key_of=lambda k, _: k, ttl_s=100)
# Whose loads may find nothing (None), which is never kept.
nothing: TopicCache[str, str | None] = TopicCache(OTHER + ".none", key_of=lambda k, _: k, ttl_s=300)
# What a subscriber of its own (not a TopicCache) was handed, and whether it was forgotten.
handed: list[invalidation.Change] = []
forgotten: list[bool] = []
invalidation.subscribe(NOTES, on_change=handed.append, forget=lambda: forgotten.append(True))


@pytest.fixture(autouse=True)
def _fresh_subscriber() -> None:
    handed.clear()
    forgotten.clear()


def _read_feed() -> None:
    with unit_of_work(read_only=True) as session:
        invalidation.catch_up(session)


def _held(cache: TopicCache[str, str], key: str, value: str) -> None:
    """``value`` loaded into ``cache`` by this process, the feed read first as a cache does."""
    with unit_of_work(read_only=True) as session:
        assert cache.read_through(session, key, lambda: value) == value
    assert cache.get(key) == value


def _committed_elsewhere(topic: str, key: str | None, **row: object) -> None:
    """A change as another server process commits it: in the database only."""
    with unit_of_work() as session:
        session.execute(
            insert(CacheChange).values(topic=topic, key=key, committed_at=clock.now(), **row)
        )


def _feed_due() -> None:
    clock.advance(timedelta(seconds=invalidation.FEED_MAX_LAG_S + 0.5))


def _top_id() -> int:
    with unit_of_work(read_only=True) as session:
        return session.scalar(select(func.max(CacheChange.id))) or 0


def test_a_change_made_elsewhere_reaches_the_cache_once_its_feed_read_is_due() -> None:
    _held(notes, "a", "old a")
    _held(notes, "b", "b")
    _committed_elsewhere(NOTES, "a")
    assert notes.get("a") == "old a"  # read less than the lag ago: still current
    _feed_due()
    assert notes.get("a") is None  # due: nothing is answered from memory
    _read_feed()
    assert notes.get("a") is None
    assert notes.get("b") == "b"  # only the changed key went
    assert [(c.topic, c.key) for c in handed] == [(NOTES, "a")]


def _fails_after_recording(key: str) -> None:
    with unit_of_work() as session:
        invalidation.changed(session, NOTES, key)
        raise RuntimeError("the transaction fails")


def test_a_change_made_here_applies_as_it_commits_and_not_on_rollback() -> None:
    _held(notes, "a", "a")
    before = _top_id()
    with pytest.raises(RuntimeError):
        _fails_after_recording("a")
    assert notes.get("a") == "a"
    assert _top_id() == before  # nothing written
    with unit_of_work() as session:
        invalidation.changed(session, NOTES, "a")
        invalidation.changed(session, NOTES, "a")  # once is enough
        assert notes.get("a") == "a"  # not before the commit
    assert notes.get("a") is None  # no feed read needed here
    with unit_of_work(read_only=True) as session:
        rows = session.execute(select(CacheChange.topic, CacheChange.key)).all()
    assert [tuple(r) for r in rows] == [(NOTES, "a")]


def test_a_change_committed_after_a_later_id_is_still_delivered() -> None:
    """PostgreSQL hands out ids before commit, so id n+1 can be visible before id n."""
    _held(notes, "late", "late")
    top = _top_id()
    _committed_elsewhere(NOTES, "early", id=top + 2)
    _feed_due()
    _read_feed()  # the feed now has a gap at top + 1
    assert notes.get("late") == "late"
    _committed_elsewhere(NOTES, "late", id=top + 1)
    _feed_due()
    _read_feed()
    assert notes.get("late") is None
    assert [c.key for c in handed] == ["early", "late"]


def test_ids_going_back_make_every_cache_start_afresh() -> None:
    _committed_elsewhere(NOTES, "x")
    _held(notes, "a", "a")
    _held(others, "b", "b")
    handed.clear()
    # The database is replaced by one whose feed is behind what this process read.
    with unit_of_work() as session:
        session.execute(delete(CacheChange))
    _feed_due()
    _read_feed()
    assert notes.get("a") is None
    assert others.get("b") is None  # a topic no row named
    assert [(c.topic, c.key) for c in handed] == [(NOTES, None)]


def test_more_gaps_than_it_can_follow_make_every_cache_start_afresh() -> None:
    _held(others, "b", "b")
    _committed_elsewhere(NOTES, "far", id=_top_id() + invalidation._GAPS_MAX + 2)
    _feed_due()
    _read_feed()
    assert others.get("b") is None


def test_a_cache_cleared_by_another_topic_drops_everything_on_its_change() -> None:
    _held(derived, "a", "a")
    _held(derived, "b", "b")
    _committed_elsewhere(NOTES, "unrelated key")
    _feed_due()
    _read_feed()
    assert derived.get("a") is None
    assert derived.get("b") is None


def test_a_load_that_raced_a_change_is_not_kept() -> None:
    _read_feed()

    def load_racing_a_change() -> str:
        with unit_of_work() as session:  # the change commits while the load runs
            invalidation.changed(session, NOTES, "a")
        return "read before the change"

    assert notes.keep("a", load_racing_a_change) == "read before the change"
    assert notes.get("a") is None
    assert notes.keep("a", lambda: "read after it") == "read after it"
    assert notes.get("a") == "read after it"


def test_read_through_answers_from_memory_and_keeps_no_failure_nor_none() -> None:
    _held(notes, "a", "a")
    with unit_of_work(read_only=True) as session:
        assert notes.read_through(session, "a", lambda: pytest.fail("read again")) == "a"

        def refused() -> str:
            raise LookupError("not found")

        with pytest.raises(LookupError):
            notes.read_through(session, "b", refused)
        assert notes.get("b") is None
    with unit_of_work(read_only=True) as session:
        assert nothing.read_through(session, "c", lambda: None) is None
    assert nothing.get("c") is None


def test_a_held_value_answers_when_another_thread_caught_the_feed_up_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load many requests find the feed due at once; one reads it, and the others'
    catch_up then reads nothing. They answer from memory too, not by loading again."""
    _held(notes, "a", "a")
    _feed_due()
    assert notes.get("a") is None
    read = invalidation.catch_up

    def another_thread_read_it_first(db: object) -> bool:
        assert read(db)  # the other thread's read
        return read(db)  # this one's: nothing left to read

    monkeypatch.setattr(invalidation, "catch_up", another_thread_read_it_first)
    with unit_of_work(read_only=True) as session:
        assert notes.read_through(session, "a", lambda: pytest.fail("loaded again")) == "a"


def test_a_process_starting_reads_back_changes_its_subscribers_need() -> None:
    _committed_elsewhere(NOTES, "recent")
    clock.advance(timedelta(seconds=5))
    invalidation.forget_all()  # as a process that just started
    _read_feed()
    assert [c.key for c in handed] == ["recent"]


def test_forget_all_clears_every_registered_cache_and_the_feed() -> None:
    _held(notes, "a", "a")
    _held(others, "b", "b")
    invalidation.forget_all()
    assert forgotten == [True]
    assert not invalidation.current()
    _read_feed()
    assert notes.get("a") is None
    assert others.get("b") is None


def test_the_feed_is_not_current_on_a_clock_that_went_back() -> None:
    _read_feed()
    assert invalidation.current()
    clock.advance(timedelta(seconds=-60))
    assert not invalidation.current()


def test_entries_kept_together_expire_spread_over_the_last_quarter_of_their_ttl() -> None:
    keys = [str(i) for i in range(200)]
    for key in keys:
        _held(expiring, key, "v")

    def held_after(seconds: float) -> int:
        clock.advance(timedelta(seconds=seconds))
        _read_feed()
        return sum(expiring.get(key) is not None for key in keys)

    assert held_after(74) == len(keys)  # none before 75 % of the ttl
    assert 0 < held_after(13) < len(keys)  # at 87 s: some gone, not all at once
    assert held_after(14) == 0  # none past the ttl (101 s)
