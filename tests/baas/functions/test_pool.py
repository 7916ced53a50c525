"""The warm pool: spares make first calls warm, it grows with demand up to its maximum,
caps one app's share, recycles workers and shrinks when idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome
from gonghui.errors import RateLimited

BLOCKING = "def handler(event, context):\n    return context.sdk.call('wait', {'tag': event})\n"
ECHO = "def handler(event, context):\n    return event\n"


class Gate:
    """An SDK handler that holds each function until released: a barrier without sleeps."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, op: str, args: dict[str, Any]) -> Any:
        self.entered.release()
        assert self.release.wait(30)
        return args["tag"]

    def wait_entered(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=30)


def invoke(pool: WorkerPool, key: str, source: str, event: Any, sdk: Callable[..., Any]) -> Outcome:
    return pool.invoke(key=key, source=source, event=event, context={}, sdk=sdk, limits=Limits())


def test_the_first_call_of_an_app_is_served_by_a_warm_spare() -> None:
    pool = WorkerPool(PoolConfig(min_workers=1, max_workers=2))
    try:
        assert pool.idle_count() == 1
        first = invoke(pool, "app-1", ECHO, 1, print)
        second = invoke(pool, "app-1", ECHO, 2, print)
        assert (first.value, first.cold, second.value, second.cold) == (1, False, 2, False)
        assert pool.stats.cold_starts == 0
        assert pool.idle_count() == 2  # the bound worker, and a new spare
    finally:
        pool.close()


def test_one_app_cannot_take_more_than_its_share() -> None:
    pool = WorkerPool(PoolConfig(min_workers=0, max_workers=3, per_key_max=1, queue_timeout_s=0.3))
    gate = Gate()
    try:
        with ThreadPoolExecutor(2) as executor:
            held: Future[Outcome] = executor.submit(invoke, pool, "greedy", BLOCKING, "a", gate)
            gate.wait_entered(1)
            with pytest.raises(RateLimited) as refused:
                invoke(pool, "greedy", ECHO, "b", print)
            assert refused.value.code == "functions.busy"
            other = invoke(pool, "modest", ECHO, "c", print)
            assert (other.status, other.value) == ("ok", "c")
            gate.release.set()
            assert held.result(30).value == "a"
    finally:
        gate.release.set()
        pool.close()


def test_the_pool_grows_with_demand_to_its_maximum_then_shrinks_when_idle() -> None:
    pool = WorkerPool(PoolConfig(min_workers=0, max_workers=3, per_key_max=3, idle_s=60))
    gate = Gate()
    try:
        with ThreadPoolExecutor(4) as executor:
            futures = [executor.submit(invoke, pool, "app", BLOCKING, i, gate) for i in range(3)]
            gate.wait_entered(3)
            assert pool.size() == 3
            gate.release.set()
            assert sorted(f.result(30).value for f in futures) == [0, 1, 2]
        assert (pool.size(), pool.idle_count()) == (3, 3)
        assert pool.reap_idle() == 0
        assert pool.reap_idle(now=time.monotonic() + 61) == 3
        assert pool.size() == 0
    finally:
        gate.release.set()
        pool.close()


def test_workers_are_recycled_after_their_run_budget() -> None:
    pool = WorkerPool(PoolConfig(min_workers=0, max_workers=2, recycle_after=2))
    try:
        outcomes = [invoke(pool, "app", ECHO, i, print) for i in range(5)]
        assert [o.value for o in outcomes] == [0, 1, 2, 3, 4]
        assert [o.cold for o in outcomes] == [True, False, True, False, True]
        assert pool.stats.spawned == 3
    finally:
        pool.close()
