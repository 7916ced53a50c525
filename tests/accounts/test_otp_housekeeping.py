"""Housekeeping deletes spent one-time codes, but only once no send limit counts them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gonghui import clock, housekeeping
from gonghui.settings import get_settings
from tests.accounts.helpers import otp_rows, send_code

pytestmark = pytest.mark.database_fallback

PHONE = "13800138000"
OTHER = "13900139000"


def test_codes_are_purged_only_after_the_daily_cap_stops_counting_them(api: httpx.Client) -> None:
    settings = get_settings()
    # 10:00 local tomorrow, so that the day does not roll over under the test.
    morning = clock.start_of_local_day(clock.now() + timedelta(days=1)) + timedelta(hours=10)
    clock.advance(morning - clock.now())
    for _ in range(settings.otp_max_per_phone_per_day):
        assert send_code(api, PHONE).status_code == 200
        clock.advance(timedelta(seconds=settings.otp_resend_cooldown_s))

    # Late the same local day every code has long expired, yet each still counts: purging
    # them would reopen the daily cap.
    clock.advance(morning + timedelta(hours=13, minutes=50) - clock.now())
    assert housekeeping.run()["otp_codes"] == 0
    assert len(otp_rows()) == settings.otp_max_per_phone_per_day
    resp = send_code(api, PHONE)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "accounts.otp_phone_throttled"

    # The next morning another phone gets a code; a day and an hour after the first ones
    # nothing counts them any more and they go, while the new one (expired, but counted
    # today) stays.
    clock.advance(morning + timedelta(days=1) - clock.now())
    assert send_code(api, OTHER).status_code == 200
    clock.advance(morning + timedelta(days=1, hours=1, minutes=10) - clock.now())
    assert housekeeping.run()["otp_codes"] == settings.otp_max_per_phone_per_day
    left = otp_rows()
    assert len(left) == 1
    assert left[0].created_at >= morning + timedelta(days=1)
    assert housekeeping.run()["otp_codes"] == 0
