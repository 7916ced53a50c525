"""WeChat Pay's notifications over HTTP, as the simulator sends them: each kept and acted
on once however often it comes, and one that is not as WeChat Pay sent it refused with
nothing written."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.integrations.wechatpay import Notification, WechatPayClient, configured_merchant
from gonghui.payments import service
from gonghui.payments.models import PaymentNotification

NOTIFY = "/api/v1/payments/wechatpay/notifications"
HANDLED: list[tuple[str, str]] = []


def _on_use(session: Session, notification: Notification) -> None:
    HANDLED.append((notification.id, notification.resource["coupon_id"]))


@pytest.fixture(autouse=True)
def _handler(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """COUPON.USE handled by the test's handler instead of the voucher grab's."""
    sim.reset()
    assert api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0}).status_code == 200
    HANDLED.clear()
    monkeypatch.setitem(service.load_handlers(), "COUPON.USE", _on_use)
    yield
    sim.reset()


def _kept() -> list[tuple[str, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(select(PaymentNotification.id, PaymentNotification.event_type))
        return [(i, e) for i, e in rows]


def _coupon(server: str) -> str:
    client = WechatPayClient(configured_merchant())
    mchid = client.merchant.mchid
    stock = client.call(
        "POST",
        "/v3/marketing/favor/coupon-stocks",
        {
            "stock_name": "工会消费券",
            "belong_merchant": mchid,
            "available_begin_time": "2026-12-01T00:00:00+08:00",
            "available_end_time": "2026-12-31T23:59:59+08:00",
            "stock_use_rule": {"max_coupons": 1, "max_amount": 500, "max_coupons_per_user": 1},
            "coupon_use_rule": {
                "fixed_normal_coupon": {"coupon_amount": 500, "transaction_minimum": 0}
            },
            "out_request_no": f"s-{time.monotonic_ns()}",
        },
    )["stock_id"]
    client.call("POST", f"/v3/marketing/favor/stocks/{stock}/start", {"stock_creator_mchid": mchid})
    client.call(
        "POST",
        "/v3/marketing/favor/callbacks",
        {"mchid": mchid, "notify_url": f"{server}{NOTIFY}", "switch": True},
    )
    sent = client.call(
        "POST",
        "/v3/marketing/favor/users/openid-a/coupons",
        {"stock_id": stock, "out_request_no": "n-1", "appid": "wx_sim_mini"},
    )
    return str(sent["coupon_id"])


def test_a_notification_sent_twice_and_one_sent_late_are_each_kept_and_handled_once(
    api: httpx.Client, server: str
) -> None:
    coupon = _coupon(server)
    resp = api.post(f"/_sim/wechatpay/_control/coupons/{coupon}/use", json={"duplicate": True})
    assert resp.json()["statuses"] == [204, 204]  # both acknowledged
    assert [c for _, c in HANDLED] == [coupon]
    assert [e for _, e in _kept()] == ["COUPON.USE"]
    assert _kept()[0][0] == HANDLED[0][0]


def test_a_late_notification_is_kept_when_it_comes(api: httpx.Client, server: str) -> None:
    coupon = _coupon(server)
    resp = api.post(f"/_sim/wechatpay/_control/coupons/{coupon}/use", json={"hold": True})
    assert resp.json() == {"used": True, "notified": False}
    assert HANDLED == []
    released = api.post("/_sim/wechatpay/_control/notifications/release")
    assert released.json()["statuses"] == [204]
    assert [c for _, c in HANDLED] == [coupon]


def test_a_notification_not_as_wechat_pay_sent_it_is_refused_and_nothing_is_written(
    api: httpx.Client,
) -> None:
    resource = {"coupon_id": "9000000001", "status": "USED"}
    body, headers = sim.notification("COUPON.USE", resource, summary="代金券核销通知")
    stale_body, stale_headers = sim.notification(
        "COUPON.USE", resource, summary="x", timestamp=int(time.time()) - 3600
    )
    forged = [
        (body.replace(b"COUPON", b"COUPOM"), headers),
        (body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}),
        (body, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}),
        (stale_body, stale_headers),
        (b"\xff" * 10, headers),
    ]
    for forged_body, forged_headers in forged:
        resp = api.post(NOTIFY, content=forged_body, headers=forged_headers)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "wechatpay.bad_signature"
    assert _kept() == []
    assert HANDLED == []
    too_big = api.post(NOTIFY, content=json.dumps({"x": "y" * 70_000}), headers=headers)
    assert too_big.status_code == 413
    # The genuine one, after all that, is kept.
    assert api.post(NOTIFY, content=body, headers=headers).status_code == 204
    assert [c for _, c in HANDLED] == ["9000000001"]
