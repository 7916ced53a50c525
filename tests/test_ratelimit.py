"""The shared rate-limit mechanism: windows, checks, clearing, housekeeping and how
addresses are counted, in the database and in Redis; with Redis unreachable, limits fail
closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from gonghui import clock, housekeeping, ratelimit, redis_conn
from gonghui.errors import ServiceUnavailable
from tests.conftest import redis_configured
from tests.serverproc import free_port

pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("database")]


@pytest.fixture(params=["database", "redis"], autouse=True)
def store(request: pytest.FixtureRequest) -> str:
    """Every test here runs against each store (Redis: the run's, or a throwaway one)."""
    name = "without_redis" if request.param == "database" else "with_redis"
    request.getfixturevalue(name)
    return str(request.param)


@pytest.fixture
def unreachable_redis(fresh_state: None) -> Iterator[None]:
    """Redis configured on a port where nothing listens."""
    with redis_configured(f"redis://127.0.0.1:{free_port()}/0", reachable=False):
        yield


def test_a_key_is_allowed_up_to_its_limit_in_one_window() -> None:
    decisions = [ratelimit.hit("t:k", limit=2, window_s=60) for _ in range(3)]
    assert [(d.allowed, d.count) for d in decisions] == [(True, 1), (True, 2), (False, 3)]
    assert decisions[2].retry_after_s == 60
    assert ratelimit.check("t:k", limit=2) == ratelimit.Decision(False, 3, 2, 60)
    assert ratelimit.check("t:other", limit=2) == ratelimit.Decision(True, 0, 2, 0)
    clock.advance(timedelta(seconds=45))
    assert ratelimit.hit("t:k", limit=2, window_s=60).retry_after_s == 15
    clock.advance(timedelta(seconds=15))
    assert ratelimit.hit("t:k", limit=2, window_s=60) == ratelimit.Decision(True, 1, 2, 60)


def test_clear_forgets_a_key() -> None:
    ratelimit.hit("t:k", limit=1, window_s=60)
    ratelimit.hit("t:k", limit=1, window_s=60)
    ratelimit.clear("t:k")
    assert ratelimit.check("t:k", limit=1).count == 0


@pytest.mark.parametrize("store", ["database"], indirect=True)
def test_housekeeping_deletes_ended_windows_only() -> None:
    ratelimit.hit("t:short", limit=1, window_s=60)
    ratelimit.hit("t:long", limit=1, window_s=3600)
    clock.advance(timedelta(seconds=61))
    assert housekeeping.run()["rate_limits"] == 1
    assert ratelimit.check("t:long", limit=1).count == 1


@pytest.mark.parametrize("store", ["database"], indirect=True)
@pytest.mark.parametrize(
    ("ip", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, None),
    ],
)
def test_addresses_are_counted_ipv4_as_is_and_ipv6_by_64(ip: str | None, bucket: str) -> None:
    assert ratelimit.address_bucket(ip) == bucket


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_windows_in_redis_expire_by_themselves() -> None:
    ratelimit.hit("t:k", limit=1, window_s=60)
    ttl_ms = redis_conn.client().pttl(f"{redis_conn.namespace()}:rl:t:k")
    assert 60_000 < ttl_ms <= 120_000


@pytest.mark.parametrize("store", ["redis"], indirect=True)
@pytest.mark.usefixtures("unreachable_redis")
def test_with_redis_unreachable_limits_refuse_rather_than_allow() -> None:
    with pytest.raises(ServiceUnavailable) as refused:
        ratelimit.hit("t:k", limit=5, window_s=60)
    assert refused.value.code == ratelimit.UNAVAILABLE
    with pytest.raises(ServiceUnavailable):
        ratelimit.check("t:k", limit=5)
    ratelimit.clear("t:k")  # a window left in place is only stricter: no error


@pytest.mark.parametrize("store", ["redis"], indirect=True)
@pytest.mark.usefixtures("unreachable_redis")
def test_a_rate_limited_request_with_redis_unreachable_is_a_clean_503(api: httpx.Client) -> None:
    resp = api.post("/api/v1/auth/sms/send", json={"phone": "13800138000", "purpose": "login"})
    assert resp.status_code == 503
    assert resp.json() == {
        "error": {
            "code": "ratelimit.unavailable",
            "message": resp.json()["error"]["message"],
            "details": None,
        }
    }
    assert resp.headers["Retry-After"] == str(ratelimit.UNAVAILABLE_RETRY_AFTER_S)


def test_a_tally_counts_several_windows_at_once_reads_without_counting_and_counts_distinct() -> (
    None
):
    def tally() -> list[int]:
        return ratelimit.tally(
            [
                ratelimit.Window("t:plain", 60),
                ratelimit.Window("t:peek", 60, add=0),
                ratelimit.Window("t:accounts", 600, distinct=f"m{len(seen)}"),
            ]
        )

    seen: list[list[int]] = []
    for _ in range(3):
        seen.append(tally())
    assert seen == [[1, 0, 1], [2, 0, 2], [3, 0, 3]]
    assert ratelimit.tally([ratelimit.Window("t:accounts", 600, distinct="m0")]) == [3]
    assert ratelimit.tally([ratelimit.Window("t:peek", 60)]) == [1]
    clock.advance(timedelta(seconds=61))
    assert ratelimit.tally([ratelimit.Window("t:plain", 60, add=0)]) == [0]
    assert ratelimit.tally([ratelimit.Window("t:plain", 60)]) == [1]


@pytest.mark.usefixtures("unreachable_redis")
def test_a_tally_fails_closed_when_redis_is_unreachable() -> None:
    with pytest.raises(ServiceUnavailable):
        ratelimit.tally([ratelimit.Window("t:any", 60)])
