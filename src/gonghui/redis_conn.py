"""The connection to Redis, when ``GONGHUI_REDIS_URL`` is set: one client per process, shared
by the rate limits (:mod:`gonghui.ratelimit`) and the change feed's pub/sub
(:mod:`gonghui.invalidation`).

Redis is an outside service that may be down or far away, and a request must not hang on
it: connecting and every reply wait at most ``TIMEOUT_S``, a failed command is retried once
at once (a pooled connection left over from a Redis that restarted fails on first use) and
then raised, never retried with backoff. Pooled connections idle for ``HEALTH_CHECK_S`` are
pinged before use. Callers decide what an outage means: the rate limits refuse (fail
closed), the caches fall back to reading the database feed.

Without a URL nothing here connects and :func:`configured` is False: the embedded default
runs on its database alone.
"""

from __future__ import annotations

import os
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gonghui.settings import get_settings

TIMEOUT_S = 1.0
HEALTH_CHECK_S = 30
# Errors that mean "Redis is unreachable or unwell" (connection refused or reset, a
# timeout, a server still loading its data, out of memory...): what callers catch.
Unavailable = (redis.RedisError, OSError)

_lock = threading.Lock()
_client: redis.Redis | None = None


def configured() -> bool:
    return bool(get_settings().redis_url)


def _new(*, retries: int) -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url,
        socket_connect_timeout=TIMEOUT_S,
        socket_timeout=TIMEOUT_S,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), retries),
        health_check_interval=HEALTH_CHECK_S,
        client_name=f"gonghui-{os.getpid()}",
    )


def client() -> redis.Redis:
    """This process's client (a thread-safe connection pool); only when :func:`configured`."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = _new(retries=1)
    return _client


def pubsub_client() -> redis.Redis:
    """A client of its own for one pub/sub listener: it never reconnects by itself (a
    listener that reconnects must know it, since messages sent meanwhile are lost)."""
    return _new(retries=0)


def namespace() -> str:
    """What keeps one deployment's keys and channels apart from another's on a shared
    server: the database number of the URL (pub/sub channels ignore database numbers)."""
    return f"gonghui:{client().connection_pool.connection_kwargs.get('db', 0)}"


def ping() -> bool:
    """Whether Redis answers now (a health check)."""
    try:
        return bool(client().ping())
    except Unavailable:
        return False


def reset() -> None:
    """Drop this process's client (after a fork; tests that change the URL)."""
    global _client
    with _lock:
        old, _client = _client, None
    if old is not None:
        old.close()


def _after_fork() -> None:
    # A child must not share its parent's sockets; the lock may have been held at the fork.
    global _client, _lock
    _lock = threading.Lock()
    _client = None


os.register_at_fork(after_in_child=_after_fork)
