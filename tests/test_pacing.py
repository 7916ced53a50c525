"""Pacing calls to an outside service across processes, in the database and in Redis: the
processes (here, paces with their own blocks, as each process holds one) share one
window's calls; none is granted past it; the next window grants again; with Redis
unreachable, nobody calls."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from gonghui import clock, pacing, ratelimit
from gonghui.errors import ServiceUnavailable
from tests.conftest import redis_configured
from tests.serverproc import free_port

pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("database")]


@pytest.fixture(params=["database", "redis"], autouse=True)
def store(request: pytest.FixtureRequest) -> str:
    name = "without_redis" if request.param == "database" else "with_redis"
    request.getfixturevalue(name)
    return str(request.param)


def test_a_block_is_granted_only_as_far_as_the_window_holds() -> None:
    first = ratelimit.take("p:k", n=3, limit=5, window_s=0.5)
    second = ratelimit.take("p:k", n=3, limit=5, window_s=0.5)
    third = ratelimit.take("p:k", n=3, limit=5, window_s=0.5)
    assert (first.granted, second.granted, third.granted) == (3, 2, 0)
    assert first.window_ends_at == second.window_ends_at == third.window_ends_at
    clock.advance(timedelta(seconds=1))
    assert ratelimit.take("p:k", n=3, limit=5, window_s=0.5).granted == 3


@pytest.fixture
def long_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of a minute rather than a tenth of a second: what a test checks within one
    window is not cut short by the machine's speed."""
    monkeypatch.setattr(pacing, "WINDOW_S", 60.0)


@pytest.mark.usefixtures("long_windows")
def test_two_processes_share_one_windows_calls_then_wait_for_the_next() -> None:
    # 440 a second: windows allowing 40, taken 10 at a time.
    one, other = pacing.Pace("p:m", 440), pacing.Pace("p:m", 440)
    assert (one.limit, one.block) == (40, 10)
    for _ in range(20):
        one.wait()
        other.wait()
    for pace in (one, other):
        assert pace._left == 0
    # Both blocks spent: the window has no call left for either process.
    assert ratelimit.take("p:m", n=1, limit=40, window_s=60).granted == 0
    assert ratelimit.check("p:m", limit=40).count == 41

    clock.advance(timedelta(seconds=61))  # the window ends
    one.wait()
    assert ratelimit.check("p:m", limit=40).count == 10  # a new window, one block taken


@pytest.mark.usefixtures("long_windows")
def test_a_pace_hands_out_its_block_before_it_asks_again() -> None:
    pace = pacing.Pace("p:b", 440)
    for _ in range(pace.block):
        pace.wait()
    assert ratelimit.check("p:b", limit=pace.limit).count == 10  # written once for ten calls
    pace.wait()
    assert ratelimit.check("p:b", limit=pace.limit).count == 20


def test_callers_of_a_spent_window_wait_for_its_end_without_asking_the_counter_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pacing, "WINDOW_S", 2.0)
    other, one = pacing.Pace("p:w", 440), pacing.Pace("p:w", 440)
    for _ in range(other.limit):  # another process spends the window
        other.wait()
    takes: list[int] = []
    take = ratelimit.take

    def counted(key: str, **kwargs: Any) -> ratelimit.Grant:
        grant = take(key, **kwargs)
        takes.append(grant.granted)
        return grant

    monkeypatch.setattr(ratelimit, "take", counted)
    callers = [threading.Thread(target=one.wait) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    assert not any(caller.is_alive() for caller in callers)
    # Asked once in the spent window (nothing granted), once in the next (a block of ten
    # for the eight); eight asks of a spent window before.
    assert takes in ([0, 10], [10])


def test_the_windows_keep_every_second_within_the_rate() -> None:
    pace = pacing.Pace("p:r", 500)
    assert (pace.window_s, pace.limit) == (0.1, 45)
    assert pace.limit * pacing.SPAN <= 500


def test_slow_rates_get_windows_of_a_second() -> None:
    pace = pacing.Pace("p:s", 5)
    assert (pace.window_s, pace.limit, pace.block) == (1.0, 2, 1)
    assert pacing.Pace("p:s", 1).limit == 1


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_with_redis_unreachable_nobody_calls() -> None:
    with redis_configured(f"redis://127.0.0.1:{free_port()}/0", reachable=False):
        with pytest.raises(ServiceUnavailable):
            pacing.Pace("p:u", 500).wait()
