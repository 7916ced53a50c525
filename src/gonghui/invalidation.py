"""How every per-process cache learns that what it holds has changed: one change feed.

A cache (sign-in principals, the hub's catalog, BaaS table definitions, app keys, function
definitions) registers a callback for its topic with :func:`subscribe`. A service that
changes what such a cache holds calls :func:`changed` with the topic and a key (None: all of
the topic) in its transaction. The change is written as a ``core_cache_change`` row as that
transaction commits, stamped with the time of the commit, and handed to the subscribers of
this process right after the commit. Every other process learns of it through a transport:

- The table itself (the embedded default): every process reads the rows it has not seen
  once its last read is more than ``FEED_MAX_LAG_S`` old (the request that notices does it,
  through :func:`catch_up`), and hands each to the subscribers of its topic. So a change
  shows at once in the process that made it and within ``FEED_MAX_LAG_S`` in every other.
  Between reads, :func:`current` costs one clock read: no request pays a database read for
  freshness.
- Redis pub/sub, when ``GONGHUI_REDIS_URL`` is set: the committing process also publishes
  the change (from a thread of its own, so no commit waits on Redis), and a listener thread
  in every process hands what it receives to the subscribers, within milliseconds. The
  rows are still written and read: they are the record that a process starting reads back
  (the replay window its subscribers ask for; pub/sub keeps nothing for a process that
  was not listening), and while the listener is live the table is read only every
  ``SUBSCRIBED_FEED_MAX_LAG_S``, in case a publish was lost. While the listener is not
  live (Redis unreachable, or no answer to its pings for ``_LIVE_S``) the table is read
  every ``FEED_MAX_LAG_S`` again: caches fall back to the polled feed, and nothing stale
  is served for longer than before. When the listener (re)subscribes, the feed is due at
  once, so the changes published while it was away are read from the table.

Writers (:func:`changed`), subscribers, :class:`TopicCache` and :func:`forget_all` do not
depend on the transport; a cache's own TTL is only a safety net. The polled table survives
what polling a table meets: ids that PostgreSQL hands out before commit (an id missing below
the highest seen is looked for again for ``_GAP_S``), ids that go backwards (a database
replaced: every subscriber is told that everything changed), and a process starting (it
reads back the replay window its subscribers ask for). :func:`purge` deletes rows older
than any process can need (housekeeping).

:func:`forget_all` clears every registered cache and what this process knows of the feed
(tests; a database replaced under a running process).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from redis.client import PubSub
from sqlalchemy import Connection, String, delete, event, func, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gonghui import redis_conn
from gonghui.clock import now
from gonghui.db import Base, IdPk, on_commit, rowcount

log = logging.getLogger(__name__)

FEED_MAX_LAG_S = 1.0
# With Redis: how often the table is still read while the listener is live (a publish lost
# with its publisher's connection shows within this).
SUBSCRIBED_FEED_MAX_LAG_S = 30.0
# The listener pings Redis this often, and is live while it heard from Redis less than
# _LIVE_S ago (a silent network shows as fast as a closed connection).
_PING_S = 1.0
_LIVE_S = 3.0
# A listener that lost Redis tries again this often.
_RETRY_S = 0.5
# Changes waiting to be published, at most (beyond: dropped, read from the table instead).
_PUBLISH_QUEUE_MAX = 10_000
# An id below the highest seen that is not there yet belongs to a transaction still open
# (PostgreSQL hands out ids before commit) or rolled back: looked for again this long.
_GAP_S = 600.0
_GAPS_MAX = 1_000
# A process starting reads back at least this far, so that a transaction in flight as it
# starts (its id below the highest visible) is followed as a gap, not missed.
_MIN_REPLAY_S = 60.0
# Rows are kept at least this long, whatever the subscribers of the purging process ask.
_RETAIN_S = 24 * 3600.0
# A TopicCache entry expires between (1 - _TTL_SPREAD) and all of its cache's ttl_s after it
# was kept, at random: entries loaded together (a server's first minute, every member's
# token at an opening) then do not all expire together and send every request of one
# moment to the database at once.
_TTL_SPREAD = 0.25


class CacheChange(Base):
    """Something a per-process cache holds changed: ``key`` within ``topic`` (all of the
    topic when None). Written as the changing transaction commits; read by every process."""

    __tablename__ = "core_cache_change"
    # Ids never reused: a reader knows what it has seen by id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[IdPk]
    topic: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(160))
    committed_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class Change:
    topic: str
    key: str | None  # None: everything in the topic
    at: float  # when it committed (POSIX seconds, by the committing server's clock)


@dataclass(frozen=True)
class _Subscriber:
    topic: str
    on_change: Callable[[Change], None]
    forget: Callable[[], None]
    replay_s: float


_subscribers: dict[str, list[_Subscriber]] = {}
_all: list[_Subscriber] = []


def subscribe(
    topic: str,
    *,
    on_change: Callable[[Change], None],
    forget: Callable[[], None],
    replay_s: float = 0.0,
) -> None:
    """Hand every change of ``topic`` to ``on_change`` (made here: after its commit; made
    elsewhere: within ``FEED_MAX_LAG_S``); :func:`forget_all` calls ``forget``. A process
    starting hands over the changes of the last ``replay_s`` seconds too."""
    subscriber = _Subscriber(topic, on_change, forget, replay_s)
    _subscribers.setdefault(topic, []).append(subscriber)
    _all.append(subscriber)


def _deliver(changes: list[Change]) -> None:
    for change in changes:
        for subscriber in _subscribers.get(change.topic, ()):
            subscriber.on_change(change)


def _everything_changed(at: float) -> None:
    """The feed lost track (ids went back, too many gaps): every cache starts afresh."""
    _deliver([Change(topic, None, at) for topic in list(_subscribers)])


_PENDING = "cache_changes"


def changed(session: Session, topic: str, key: str | None = None) -> None:
    """Record in this transaction that ``key`` of ``topic`` (None: all of it) changed."""
    session.info.setdefault(_PENDING, []).append((topic, key))


def pending(session: Session, topic: str) -> bool:
    """Whether this transaction has recorded a change of ``topic`` not yet committed (a
    cache of the topic does not hold it yet: read the database instead)."""
    return any(t == topic for t, _ in session.info.get(_PENDING, ()))


@event.listens_for(Session, "before_commit")
def _write_changes(session: Session) -> None:
    """The changes of a transaction go in as it commits, stamped with the time of its
    commit (give or take the commit itself): readers date them by that stamp."""
    # Flush first: changes recorded by flush hooks (the catalog's) are then pending too.
    session.flush()
    pending: list[tuple[str, str | None]] = session.info.pop(_PENDING, [])
    if not pending:
        return
    at = now()
    unique = list(dict.fromkeys(pending))
    session.execute(
        insert(CacheChange),
        [{"topic": topic, "key": key, "committed_at": at} for topic, key in unique],
    )
    stamp = at.timestamp()
    changes = [Change(topic, key, stamp) for topic, key in unique]
    on_commit(session, lambda: _committed(changes))


def _committed(changes: list[Change]) -> None:
    _deliver(changes)
    if _transport_started or start_transport():
        _pubsub.publish(changes)


@event.listens_for(Session, "after_rollback")
def _drop_changes(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _clock() -> float:
    return now().timestamp()


@dataclass
class _PollingFeed:
    """The transport: the ``core_cache_change`` table, polled. What this process has read
    of it: when it last read, the highest id seen and the ids missing below it."""

    read_at: float = float("-inf")  # when the last successful read started
    max_id: int | None = None  # None: never read
    gaps: dict[int, float] = field(default_factory=dict)  # missing id -> when first missed
    reading: threading.Lock = field(default_factory=threading.Lock)
    # Counts the times the feed was made due (:func:`_feed_due`): a read that started
    # before one does not make the feed current.
    dues: int = 0

    def current(self, at: float) -> bool:
        # A clock that went back makes the feed due, not current for longer.
        return self.read_at <= at < self.read_at + _max_lag()

    def read(self, db: Connection | Session) -> bool:
        """Read and deliver the rows not seen yet, if a read is due; True if it read."""
        if self.current(_clock()):
            return False
        with self.reading:
            if self.current(_clock()):
                return False  # another thread read it meanwhile
            started, dues = _clock(), self.dues
            top = db.execute(_TOP).scalar() or 0
            first = self.max_id is None
            known = self.max_id or 0
            gaps = dict(self.gaps)
            if first:
                since = now() - timedelta(seconds=_replay_s())
                query: Any = select(*_COLUMNS).where(CacheChange.committed_at >= since)
            elif top > known or gaps:
                query = select(*_COLUMNS).where(
                    or_(CacheChange.id > known, CacheChange.id.in_(list(gaps)))
                )
            else:
                query = None
            rows = list(db.execute(query)) if query is not None else []
            seen_at = _clock()
            if not first and top < known:
                # Ids went back: the database was replaced. Trust nothing read before.
                _everything_changed(seen_at)
                self.max_id, self.gaps = top, {}
            else:
                _deliver([Change(topic, key, at.timestamp()) for _, topic, key, at in rows])
                found = {row[0] for row in rows}
                highest = max([top, known, *found])
                low = (min(found) if found else highest + 1) if first else known + 1
                gaps = {i: t for i, t in gaps.items() if i not in found and t > seen_at - _GAP_S}
                new_gaps = highest + 1 - low - sum(1 for i in found if i >= low)
                if len(gaps) + new_gaps > _GAPS_MAX:
                    _everything_changed(seen_at)  # too many to follow
                    gaps = {}
                else:
                    gaps |= {i: seen_at for i in range(low, highest + 1) if i not in found}
                self.max_id, self.gaps = highest, gaps
            # Last: a reader that finds the feed current finds every change delivered.
            if dues == self.dues:
                self.read_at = started
            return True


_TOP = select(func.max(CacheChange.id))
_COLUMNS = (CacheChange.id, CacheChange.topic, CacheChange.key, CacheChange.committed_at)
_feed = _PollingFeed()


def _replay_s() -> float:
    return max([_MIN_REPLAY_S, *(s.replay_s for s in _all)])


def current() -> bool:
    """Whether this process has every change committed up to ``FEED_MAX_LAG_S`` ago (no
    I/O): a cache may then answer from memory."""
    if not _transport_started:
        start_transport()
    return _feed.current(_clock())


def catch_up(db: Connection | Session) -> bool:
    """Read the feed through ``db`` if the last read is due (otherwise no I/O); True if it
    read."""
    return _feed.read(db)


def _max_lag() -> float:
    """How old the last read of the table may be for the feed to be current."""
    listener = _pubsub.listener
    if listener is not None and listener.live():
        return SUBSCRIBED_FEED_MAX_LAG_S
    return FEED_MAX_LAG_S


def _feed_due() -> None:
    """The next :func:`current` is False and :func:`catch_up` reads the table, even if a
    read is under way now."""
    feed = _feed
    feed.dues += 1
    feed.read_at = float("-inf")


class _Listener(threading.Thread):
    """Subscribes to the changes channel and hands what other processes publish to the
    subscribers here; reconnects for as long as the process runs."""

    def __init__(self, channel: str, origin: str) -> None:
        super().__init__(name="gonghui-cache-changes", daemon=True)
        self.channel = channel
        self.origin = origin
        self.stopping = threading.Event()
        self._live_until = 0.0  # by time.monotonic()
        self.subscribed = threading.Event()  # set while subscribed
        self._lost = False

    def live(self) -> bool:
        return time.monotonic() < self._live_until

    def run(self) -> None:
        client = redis_conn.pubsub_client()
        while not self.stopping.is_set():
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                self._listen(pubsub)
            except redis_conn.Unavailable as exc:
                if self.subscribed.is_set() or not self._lost:
                    log.warning("cache changes: Redis unreachable, reading the table (%s)", exc)
                self._lost = True
            except Exception:
                # A subscriber that failed on a change: start afresh rather than stop
                # listening for good.
                log.exception("cache changes: listener failed")
            finally:
                self._live_until = 0.0
                self.subscribed.clear()
                try:
                    pubsub.close()
                except redis_conn.Unavailable:
                    pass
            self.stopping.wait(_RETRY_S)
        client.close()

    def _listen(self, pubsub: PubSub) -> None:
        pubsub.subscribe(self.channel)
        deadline = time.monotonic() + redis_conn.TIMEOUT_S
        while True:
            message = pubsub.get_message(timeout=redis_conn.TIMEOUT_S)
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise TimeoutError("Redis did not confirm the subscription")
        # Subscribed: every change published from now on arrives here. Those published
        # while this process did not listen are in the table: it is read at once.
        _feed_due()
        self._live_until = time.monotonic() + _LIVE_S
        self.subscribed.set()
        if self._lost:
            log.warning("cache changes: listening on Redis again")
        self._lost = False
        ping_at = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= ping_at:
                pubsub.ping()
                ping_at = time.monotonic() + _PING_S
            message = pubsub.get_message(timeout=_PING_S / 2)
            if message is not None and message["type"] in ("pong", "message"):
                self._live_until = time.monotonic() + _LIVE_S
                if message["type"] == "message":
                    self._receive(message["data"])
            if not self.live():
                raise TimeoutError(f"no answer from Redis for {_LIVE_S}s")

    def _receive(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
            if payload["o"] == self.origin:
                return  # made here: delivered as it committed
            changes = [
                Change(str(t), None if k is None else str(k), float(a)) for t, k, a in payload["c"]
            ]
        except (ValueError, KeyError, TypeError):
            log.warning("cache changes: a message this version does not read: %r", data[:200])
            _everything_changed(_clock())
            return
        _deliver(changes)


class _Publisher(threading.Thread):
    """Publishes the changes committed here, in order, so that no commit waits on Redis.
    A change it cannot publish is dropped: the others read it from the table."""

    def __init__(self, channel: str, origin: str) -> None:
        super().__init__(name="gonghui-cache-publish", daemon=True)
        self.channel = channel
        self.origin = origin
        self.queue: queue.Queue[list[Change] | None] = queue.Queue(_PUBLISH_QUEUE_MAX)

    def run(self) -> None:
        while (changes := self.queue.get()) is not None:
            payload = json.dumps(
                {"o": self.origin, "c": [[c.topic, c.key, c.at] for c in changes]},
                separators=(",", ":"),
            )
            try:
                redis_conn.client().publish(self.channel, payload)
            except redis_conn.Unavailable as exc:
                log.warning("cache changes: not published, Redis unreachable (%s)", exc)


@dataclass
class _PubSub:
    """This process's Redis transport, when Redis is configured."""

    listener: _Listener | None = None
    publisher: _Publisher | None = None

    def publish(self, changes: list[Change]) -> None:
        if self.publisher is not None:
            try:
                self.publisher.queue.put_nowait(changes)
            except queue.Full:
                log.warning("cache changes: publish queue full, change left to the table")


_pubsub = _PubSub()
_transport_started = False
_transport_lock = threading.Lock()


def start_transport() -> bool:
    """Start the Redis listener and publisher of this process if Redis is configured (once;
    later calls cost a flag; a server starts them as it starts, anything else on first
    use). True if they run."""
    global _transport_started, _drain_registered
    with _transport_lock:
        if not _transport_started:
            _transport_started = True
            if redis_conn.configured():
                channel = f"{redis_conn.namespace()}:cache-changes"
                origin = uuid.uuid4().hex
                _pubsub.listener = _Listener(channel, origin)
                _pubsub.publisher = _Publisher(channel, origin)
                _pubsub.listener.start()
                _pubsub.publisher.start()
                if not _drain_registered:
                    # A command that exits right after its commit still publishes it.
                    atexit.register(_drain)
                    _drain_registered = True
    return _pubsub.publisher is not None


_drain_registered = False


def _drain() -> None:
    publisher = _pubsub.publisher
    if publisher is not None and publisher.is_alive():
        try:
            publisher.queue.put(None, timeout=redis_conn.TIMEOUT_S)
        except queue.Full:
            return
        publisher.join(timeout=2 * redis_conn.TIMEOUT_S)


def listen(*, timeout_s: float) -> bool:
    """Start the Redis transport now (it otherwise starts on first use) and wait until it
    is subscribed; True if it is (False without Redis, or not within ``timeout_s``)."""
    start_transport()
    listener = _pubsub.listener
    return listener is not None and listener.subscribed.wait(timeout_s)


def stop_transport() -> None:
    """Stop the Redis transport (tests that change the configuration); the next use
    starts it again if Redis is configured."""
    global _pubsub, _transport_started
    with _transport_lock:
        old, _pubsub, _transport_started = _pubsub, _PubSub(), False
    if old.listener is not None:
        old.listener.stopping.set()
        old.listener.join(timeout=10)
    if old.publisher is not None:
        old.publisher.queue.put(None)
        old.publisher.join(timeout=10)


def _after_fork() -> None:
    # Threads do not survive a fork: the child starts its own on first use.
    global _pubsub, _transport_started, _transport_lock
    _pubsub, _transport_started, _transport_lock = _PubSub(), False, threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def forget_all() -> None:
    """Clear every registered cache and what this process has read of the feed."""
    global _feed
    _feed = _PollingFeed()
    for subscriber in _all:
        subscriber.forget()


def purge(session: Session) -> int:
    """Delete the rows no process needs any more (older than any replay window, and than
    ``_RETAIN_S``); returns how many."""
    keep_s = max(_RETAIN_S, _replay_s() + 3600)
    before = now() - timedelta(seconds=keep_s)
    return rowcount(session.execute(delete(CacheChange).where(CacheChange.committed_at < before)))


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TopicCache(Generic[K, V]):
    """A per-process map kept current by the feed: a change of ``topic`` drops the entries
    whose ``key_of(key, value)`` is the change's key (all of them for a change of the whole
    topic, or any change of a topic in ``cleared_by``). Entries also expire, at most
    ``ttl_s`` after they were kept (spread over its last quarter: :data:`_TTL_SPREAD`), a
    safety net only.

    :meth:`get` answers only while the feed is current. :meth:`read_through` is the one
    way to fill it: on a miss it catches the feed up, and :meth:`keep` loads and keeps the
    value only if no change came in meanwhile (so a load that raced a change is never
    kept)."""

    def __init__(
        self,
        topic: str,
        *,
        key_of: Callable[[K, V], str],
        ttl_s: float,
        cleared_by: tuple[str, ...] = (),
        max_entries: int = 10_000,
    ) -> None:
        self.topic = topic
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._key_of = key_of
        self._entries: dict[K, tuple[float, V]] = {}  # key -> (expires at, value)
        self._generation = 0
        self._lock = threading.Lock()
        subscribe(topic, on_change=self._on_change, forget=self.forget)
        for other in cleared_by:
            subscribe(other, on_change=self._clear, forget=self.forget)

    def get(self, key: K) -> V | None:
        """The value held for ``key`` if the feed is current and it has not expired."""
        at = _clock()
        if not _feed.current(at):
            return None
        hit = self._entries.get(key)
        if hit is None or hit[0] <= at:
            return None
        return hit[1]

    def read_through(self, db: Connection | Session, key: K, load: Callable[[], V]) -> V:
        """The value held for ``key``; else, once the feed has caught up through ``db``,
        what ``load()`` reads (through ``db``), kept by :meth:`keep`. An exception from
        ``load`` (not found, refused) propagates and nothing is kept."""
        hit = self.get(key)
        if hit is None:
            # Whoever reads the feed (this thread, or another one just now, in which case
            # catch_up reads nothing), a value held through it answers without a load.
            catch_up(db)
            hit = self.get(key)
        if hit is not None:
            return hit
        return self.keep(key, load)

    def keep(self, key: K, load: Callable[[], V]) -> V:
        """What ``load()`` reads now, kept for ``key`` unless a change came in while it
        read (the value may predate the change). None is never kept: it reads as a miss."""
        generation = self._generation
        value = load()
        if value is not None:
            self._put(key, value, generation=generation)
        return value

    def _put(self, key: K, value: V, *, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # changed while it was loaded: the value may predate the change
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            lifetime = self.ttl_s * (1 - _TTL_SPREAD * random.random())
            self._entries[key] = (_clock() + lifetime, value)

    def forget(self) -> None:
        """Drop every entry (tests; a database replaced)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def _clear(self, _change: Change) -> None:
        self.forget()

    def _on_change(self, change: Change) -> None:
        with self._lock:
            self._generation += 1
            if change.key is None:
                self._entries.clear()
                return
            for key in [
                k for k, (_, v) in self._entries.items() if self._key_of(k, v) == change.key
            ]:
                del self._entries[key]
