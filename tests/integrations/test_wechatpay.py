"""The WeChat Pay API v3 client against the simulator over HTTP: requests signed and
answers verified both ways, stocks and coupons within their limits, a coupon never sent
twice for one request number (even when an answer is lost), and notifications refused
unless signed by a key we hold, fresh and sealed under our API v3 key."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.utils import rsa_sign

from gonghui.integrations import wechatpay_simulator as sim
from gonghui.integrations.wechatpay import (
    NotificationRefused,
    WechatPayClient,
    WechatPayRefused,
    WechatPayUnavailable,
    configured_merchant,
    parse_notification,
)
from tests.receiver import running_receiver

STOCKS = "/v3/marketing/favor/coupon-stocks"


@pytest.fixture(autouse=True)
def _fresh_simulator(api: httpx.Client) -> Iterator[None]:
    sim.reset()
    _faults(api, latency_ms=0)
    yield
    sim.reset()


def _faults(api: httpx.Client, *faults: str, **options: Any) -> None:
    resp = api.post("/_sim/wechatpay/_control/faults", json={"faults": list(faults), **options})
    assert resp.status_code == 200, resp.text
    assert "refused" not in resp.json()


@pytest.fixture
def client() -> WechatPayClient:
    return WechatPayClient(configured_merchant())


def _stock(client: WechatPayClient, *, coupons: int = 2, per_user: int = 1) -> str:
    mchid = client.merchant.mchid
    body = {
        "stock_name": "工会消费券",
        "belong_merchant": mchid,
        "available_begin_time": "2026-12-01T00:00:00+08:00",
        "available_end_time": "2026-12-31T23:59:59+08:00",
        "stock_use_rule": {
            "max_coupons": coupons,
            "max_amount": coupons * 1000,
            "max_coupons_per_user": per_user,
            "natural_person_limit": False,
            "prevent_api_abuse": False,
        },
        "coupon_use_rule": {
            "fixed_normal_coupon": {"coupon_amount": 1000, "transaction_minimum": 5000},
            "available_merchants": [mchid],
        },
        "no_cash": False,
        "stock_type": "NORMAL",
        "out_request_no": f"stock-{time.monotonic_ns()}",
    }
    return str(client.call("POST", STOCKS, body)["stock_id"])


def _send(client: WechatPayClient, stock_id: str, openid: str, request_no: str) -> str:
    answer = client.call(
        "POST",
        f"/v3/marketing/favor/users/{openid}/coupons",
        {
            "stock_id": stock_id,
            "out_request_no": request_no,
            "appid": "wx_sim_mini",
            "stock_creator_mchid": client.merchant.mchid,
        },
    )
    return str(answer["coupon_id"])


def _refusal(exc: pytest.ExceptionInfo[WechatPayRefused]) -> str:
    return str(exc.value.details["code"])  # type: ignore[index]


def _move(client: WechatPayClient, stock_id: str, move: str) -> dict[str, Any]:
    return client.call(
        "POST",
        f"/v3/marketing/favor/stocks/{stock_id}/{move}",
        {"stock_creator_mchid": client.merchant.mchid},
    )


def test_a_stock_sends_within_its_limits_and_one_request_number_is_one_coupon(
    client: WechatPayClient,
) -> None:
    stock_id = _stock(client, coupons=2, per_user=1)
    with pytest.raises(WechatPayRefused) as not_started:
        _send(client, stock_id, "openid-a", "r1")
    assert _refusal(not_started) == "RULE_LIMIT"
    assert _move(client, stock_id, "start")["stock_id"] == stock_id
    first = _send(client, stock_id, "openid-a", "r1")
    assert _send(client, stock_id, "openid-a", "r1") == first  # the same request again
    with pytest.raises(WechatPayRefused) as per_user:
        _send(client, stock_id, "openid-a", "r2")
    assert _refusal(per_user) == "RULE_LIMIT"
    second = _send(client, stock_id, "openid-b", "r3")
    assert second != first
    with pytest.raises(WechatPayRefused) as exhausted:
        _send(client, stock_id, "openid-c", "r4")
    assert _refusal(exhausted) == "NOT_ENOUGH"
    query = f"/v3/marketing/favor/stocks/{stock_id}?stock_creator_mchid={client.merchant.mchid}"
    stock = client.call("GET", query)
    assert (stock["status"], stock["distributed_coupons"]) == ("running", 2)
    assert "pause_time" in _move(client, stock_id, "pause")
    assert client.call("GET", query)["status"] == "paused"
    assert "restart_time" in _move(client, stock_id, "restart")
    assert client.call("GET", query)["status"] == "running"


def test_a_lost_answer_leaves_the_outcome_unknown_and_the_same_request_finds_the_coupon(
    api: httpx.Client, client: WechatPayClient
) -> None:
    stock_id = _stock(client, coupons=5)
    _move(client, stock_id, "start")
    _faults(api, "lost", latency_ms=0)
    with pytest.raises(WechatPayUnavailable):
        _send(client, stock_id, "openid-a", "lost-1")  # sent, but the answer was lost
    coupon = _send(client, stock_id, "openid-a", "lost-1")
    _faults(api, "error", latency_ms=0)
    with pytest.raises(WechatPayUnavailable):
        _send(client, stock_id, "openid-b", "err-1")  # refused before it took effect
    _faults(api, "timeout", latency_ms=0)
    impatient = WechatPayClient(client.merchant, timeout_s=0.5)
    with pytest.raises(WechatPayUnavailable):
        _send(impatient, stock_id, "openid-c", "slow-1")
    query = f"/v3/marketing/favor/stocks/{stock_id}?stock_creator_mchid={client.merchant.mchid}"
    assert client.call("GET", query)["distributed_coupons"] == 1
    assert coupon


def test_answers_are_verified_by_the_key_their_serial_names(
    api: httpx.Client, client: WechatPayClient
) -> None:
    stock_id = _stock(client)
    query = f"/v3/marketing/favor/stocks/{stock_id}?stock_creator_mchid={client.merchant.mchid}"
    _faults(api, latency_ms=0, sign_with_certificate=True)  # the platform certificate's serial
    assert client.call("GET", query)["stock_id"] == stock_id
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    forged = dataclasses.replace(
        client.merchant, verifying_keys=dict.fromkeys(client.merchant.verifying_keys, other)
    )
    with pytest.raises(WechatPayUnavailable, match="fails verification"):
        WechatPayClient(forged).call("GET", query)
    stranger = dataclasses.replace(
        client.merchant, private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    with pytest.raises(WechatPayRefused) as refused:
        WechatPayClient(stranger).call("GET", query)
    assert _refusal(refused) == "SIGN_ERROR"


def _resealed(body: bytes, headers: dict[str, str], change: Any) -> tuple[bytes, dict[str, str]]:
    """The notification with ``change`` applied to its envelope, signed again by the
    platform (a valid signature over a body whose ciphertext was tampered with)."""
    envelope = json.loads(body)
    change(envelope)
    text = json.dumps(envelope, separators=(",", ":"))
    stamp, nonce = headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"]
    platform = sim.load_secrets().platform_key
    signature = rsa_sign(platform, f"{stamp}\n{nonce}\n{text}\n")
    return text.encode(), {**headers, "Wechatpay-Signature": signature}


def test_a_notification_is_accepted_only_as_wechat_pay_sent_it(client: WechatPayClient) -> None:
    merchant = client.merchant
    resource = {"coupon_id": "9000000001", "status": "USED"}
    body, headers = sim.notification("COUPON.USE", resource, summary="代金券核销通知")
    parsed = parse_notification(merchant, headers, body)
    assert (parsed.event_type, parsed.resource) == ("COUPON.USE", resource)

    def refused(body: bytes, headers: dict[str, str]) -> str:
        with pytest.raises(NotificationRefused) as exc:
            parse_notification(merchant, headers, body)
        return exc.value.message

    assert refused(body.replace(b"COUPON.USE", b"COUPON.USF"), headers) == "bad signature"
    assert refused(body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_UNKNOWN"}) == (
        "unknown Wechatpay-Serial"
    )
    stale_body, stale_headers = sim.notification(
        "COUPON.USE", resource, summary="x", timestamp=int(time.time()) - 600
    )
    assert "too far" in refused(stale_body, stale_headers)

    def flip(envelope: dict[str, Any]) -> None:
        sealed = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
        sealed[0] ^= 1
        envelope["resource"]["ciphertext"] = base64.b64encode(bytes(sealed)).decode()

    assert "does not decrypt" in refused(*_resealed(body, headers, flip))
    other_key = dataclasses.replace(merchant, apiv3_key="x" * 32)
    with pytest.raises(NotificationRefused, match="does not decrypt"):
        parse_notification(other_key, headers, body)


def test_a_spent_coupon_is_notified_to_the_callback_signed_and_sealed(
    api: httpx.Client, client: WechatPayClient
) -> None:
    stock_id = _stock(client)
    _move(client, stock_id, "start")
    coupon = _send(client, stock_id, "openid-a", "spend-1")
    with running_receiver() as receiver:
        answer = client.call(
            "POST",
            "/v3/marketing/favor/callbacks",
            {"mchid": client.merchant.mchid, "notify_url": receiver.url, "switch": True},
        )
        assert answer["notify_url"] == receiver.url
        resp = api.post(f"/_sim/wechatpay/_control/coupons/{coupon}/use", json={"duplicate": True})
        assert resp.json() == {"used": True, "notified": True, "statuses": [200, 200]}
        held = api.post(f"/_sim/wechatpay/_control/coupons/{coupon}/use", json={})
        assert held.json() == {"used": False}  # spent once only
        delivered = [
            parse_notification(client.merchant, r.headers, r.body) for r in receiver.requests
        ]
    assert len(delivered) == 2
    assert delivered[0].id == delivered[1].id  # a duplicate: the same notification id
    use = delivered[0].resource
    assert (use["coupon_id"], use["stock_id"], use["status"]) == (coupon, stock_id, "USED")
    assert use["normal_coupon_information"] == {"coupon_amount": 1000, "transaction_minimum": 5000}


def test_threads_share_a_few_http_clients_each_keeping_its_connections_alive() -> None:
    """httpcore's pool costs grow with the square of its connections and it closes idle
    ones past its keep-alive limit (see wechatpay.CLIENTS): threads spread over a few
    clients, each a thread's for its life, whose pools keep every connection alive."""
    from concurrent.futures import ThreadPoolExecutor

    from gonghui.integrations import wechatpay

    threads = 2 * wechatpay.CLIENTS
    barrier = threading.Barrier(threads)

    def clients_of_one_thread(_: int) -> tuple[int, int]:
        barrier.wait()  # every thread alive at once: none reuses another's thread
        first = wechatpay._http()
        return id(first), id(wechatpay._http())

    with ThreadPoolExecutor(threads) as pool:
        seen = list(pool.map(clients_of_one_thread, range(threads)))
    assert all(first == again for first, again in seen)  # a thread keeps its client
    per_client = Counter(first for first, _ in seen)
    assert len(per_client) == wechatpay.CLIENTS  # every client used ...
    assert set(per_client.values()) == {2}  # ... by as many threads as any other
    for client in wechatpay._clients:
        pool_ = client._transport._pool  # type: ignore[attr-defined]
        assert pool_._max_keepalive_connections == pool_._max_connections
