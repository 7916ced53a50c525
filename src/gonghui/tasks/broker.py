"""The broker that carries tasks from their rows to the workers: Dramatiq's.

With ``GONGHUI_REDIS_URL`` set it is Dramatiq's Redis broker, shared by every worker of
the deployment: what one worker's relay sends, any worker may run, and a worker that dies
with messages taken is found by its missed heartbeats and its messages put back. Without
Redis (the embedded default) it is Dramatiq's in-process broker: each process that runs a
worker sends to itself, and the rows' relay covers what a process takes with it when it
stops.

A message is only ``(task id, token, slot)``; what to do is in the row
(:mod:`gonghui.tasks.queue`).
Dramatiq's retries are not used (the rows keep the retry schedule), nor its dead letters.
"""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import ShutdownNotifications, TimeLimit

from gonghui.settings import get_settings
from gonghui.tasks import queue

QUEUE_NAME = "gonghui"
NAMESPACE = "gonghui-tasks"

_lock = threading.Lock()
_broker: dramatiq.Broker | None = None
_actors: dict[str, dramatiq.Actor[..., object]] = {}


def get() -> dramatiq.Broker:
    """This process's broker (made on first use), with an actor for every kind of task."""
    global _broker
    with _lock:
        if _broker is None:
            middleware = [TimeLimit(), ShutdownNotifications()]
            settings = get_settings()
            if settings.redis_url:
                _broker = RedisBroker(  # type: ignore[no-untyped-call]
                    # Bounded waits, as every Redis client here has (redis_conn.py).
                    client=redis.Redis.from_url(
                        settings.redis_url, socket_connect_timeout=1.0, socket_timeout=5.0
                    ),
                    namespace=NAMESPACE,
                    middleware=middleware,
                    heartbeat_timeout=int(settings.task_heartbeat_timeout_s * 1000),
                )
            else:
                _broker = StubBroker(middleware=middleware)
            _broker.declare_queue(QUEUE_NAME)
        for name in queue.kinds():
            if name not in _actors:
                _actors[name] = _declare(_broker, name)
        return _broker


def _declare(broker: dramatiq.Broker, name: str) -> dramatiq.Actor[..., object]:
    kind = queue.kinds()[name]

    def run(task_id: int, token: str, slot: str | None = None) -> None:
        queue.execute(name, task_id, token, slot)

    return dramatiq.Actor(
        run,
        broker=broker,
        actor_name=name,
        queue_name=QUEUE_NAME,
        priority=0,
        options={
            "max_retries": 0,
            # The row's lease outlasts this by GRACE_S: a run killed here is sent again.
            "time_limit": int(kind.time_limit_s * 1000),
        },
    )


def shared() -> bool:
    """Whether the broker reaches other processes (Redis), rather than this one only."""
    return isinstance(get(), RedisBroker)


def send(name: str, task_id: int, token: str, slot: str | None, *, delay_s: float = 0) -> None:
    get()
    delay = int(delay_s * 1000) or None
    _actors[name].send_with_options(args=(task_id, token, slot), delay=delay)


def ping() -> None:
    """Raise if the broker cannot be reached (the readiness check)."""
    broker = get()
    if isinstance(broker, RedisBroker):
        broker.client.ping()


def reset() -> None:
    """Forget this process's broker (tests switch Redis on and off); the next use makes
    one from the settings of then."""
    global _broker
    with _lock:
        old, _broker = _broker, None
        _actors.clear()
    if old is not None:
        old.close()
