"""The change feed with Redis as its transport: changes are published as they commit and
reach every process without a read of the table; while Redis is unreachable, the table is
read every ``FEED_MAX_LAG_S`` again; after Redis comes back the listener subscribes again
by itself and reads the table at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert

from gonghui import clock, invalidation, redis_conn
from gonghui.db import unit_of_work
from gonghui.invalidation import CacheChange, TopicCache
from tests.conftest import redis_configured
from tests.redisproc import RedisProcess
from tests.serverproc import free_port

NOTES = "tests.pubsub.notes"
notes: TopicCache[str, str] = TopicCache(NOTES, key_of=lambda key, _: key, ttl_s=300)
handed: list[invalidation.Change] = []
invalidation.subscribe(NOTES, on_change=handed.append, forget=lambda: None)
WAIT_S = 20.0  # for a thread of this process to act; never reached unless it is broken


@pytest.fixture(autouse=True)
def _fresh_subscriber() -> None:
    handed.clear()


def _channel() -> str:
    return f"{redis_conn.namespace()}:cache-changes"


def _read_feed() -> None:
    with unit_of_work(read_only=True) as session:
        invalidation.catch_up(session)


def _held(key: str, value: str) -> None:
    with unit_of_work(read_only=True) as session:
        assert notes.read_through(session, key, lambda: value) == value
    assert notes.get(key) == value


def _in_the_table_only(key: str) -> None:
    """A change committed by another process whose publish was lost."""
    with unit_of_work() as session:
        session.execute(insert(CacheChange).values(topic=NOTES, key=key, committed_at=clock.now()))


def _eventually(condition: object) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the listener did not act"
        time.sleep(0.01)


@pytest.mark.usefixtures("with_redis")
def test_a_change_published_by_another_process_reaches_the_cache_without_a_read() -> None:
    _held("a", "a")
    _held("b", "b")
    message = {"o": "another process", "c": [[NOTES, "a", clock.now().timestamp()]]}
    redis_conn.client().publish(_channel(), json.dumps(message))
    _eventually(lambda: notes.get("a") is None)
    assert notes.get("b") == "b"
    assert [(c.topic, c.key) for c in handed] == [(NOTES, "a")]


@pytest.mark.usefixtures("with_redis")
def test_a_change_committed_here_is_published_once_for_the_others() -> None:
    pubsub = redis_conn.pubsub_client().pubsub()
    pubsub.subscribe(_channel())
    try:
        _eventually(lambda: (m := pubsub.get_message(timeout=0.1)) and m["type"] == "subscribe")
        with unit_of_work() as session:
            invalidation.changed(session, NOTES, "a")
            invalidation.changed(session, NOTES, None)
        assert [(c.topic, c.key) for c in handed] == [(NOTES, "a"), (NOTES, None)]
        message = None
        while message is None or message["type"] != "message":
            message = pubsub.get_message(timeout=WAIT_S)
            assert message is not None
        payload = json.loads(message["data"])
        assert [(t, k) for t, k, _ in payload["c"]] == [(NOTES, "a"), (NOTES, None)]
        # Its own message is not handed to the subscribers here a second time: one published
        # after it by another process is the next they are handed.
        marker = {"o": "another process", "c": [[NOTES, "next", clock.now().timestamp()]]}
        redis_conn.client().publish(_channel(), json.dumps(marker))
        _eventually(lambda: len(handed) > 2)
        assert [c.key for c in handed] == ["a", None, "next"]
    finally:
        pubsub.close()


@pytest.mark.usefixtures("with_redis")
def test_while_the_listener_is_live_the_table_is_read_only_as_a_safety_net() -> None:
    _read_feed()
    clock.advance(timedelta(seconds=invalidation.FEED_MAX_LAG_S + 0.5))
    assert invalidation.current()
    clock.advance(timedelta(seconds=invalidation.SUBSCRIBED_FEED_MAX_LAG_S))
    assert not invalidation.current()


@pytest.fixture
def unreachable_redis(fresh_state: None) -> Iterator[None]:
    with redis_configured(f"redis://127.0.0.1:{free_port()}/0", reachable=False):
        yield


@pytest.mark.usefixtures("unreachable_redis")
def test_with_redis_unreachable_caches_fall_back_to_reading_the_table() -> None:
    _held("a", "a")
    _in_the_table_only("a")
    clock.advance(timedelta(seconds=invalidation.FEED_MAX_LAG_S + 0.5))
    assert notes.get("a") is None  # not current: nothing is answered from memory
    _read_feed()
    assert [(c.topic, c.key) for c in handed] == [(NOTES, "a")]
    # A change committed here still applies here, publishing it fails quietly.
    _held("b", "b")
    with unit_of_work() as session:
        invalidation.changed(session, NOTES, "b")
    assert notes.get("b") is None


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_state")
def test_after_redis_restarts_the_listener_subscribes_again_and_reads_the_table() -> None:
    redis = RedisProcess().start()
    try:
        with redis_configured(redis.url):
            listener = invalidation._pubsub.listener
            assert listener is not None
            _held("a", "a")
            redis.kill()
            _eventually(lambda: not listener.subscribed.is_set())
            assert not listener.live()
            _in_the_table_only("a")  # published while no one could listen
            redis.start()
            _eventually(listener.subscribed.is_set)
            # The last read of the table is recent, but it came before the subscription.
            assert not invalidation.current()
            assert notes.get("a") is None  # not answered from memory
            _read_feed()
            assert notes.get("a") is None
            assert invalidation.current()
    finally:
        redis.stop()
