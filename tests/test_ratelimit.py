"""The shared rate-limit mechanism: windows, checks, clearing, housekeeping and how
addresses are counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gonghui import clock, housekeeping, ratelimit

pytestmark = pytest.mark.usefixtures("database")


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


def test_housekeeping_deletes_ended_windows_only() -> None:
    ratelimit.hit("t:short", limit=1, window_s=60)
    ratelimit.hit("t:long", limit=1, window_s=3600)
    clock.advance(timedelta(seconds=61))
    assert housekeeping.run()["rate_limits"] == 1
    assert ratelimit.check("t:long", limit=1).count == 1


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
