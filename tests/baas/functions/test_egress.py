"""A function reaches the network only through the platform, and only the hosts it
declared: anything else, private addresses and redirects out are refused; a declared name
is reached at the address that was checked, within one deadline and a capped answer."""

from __future__ import annotations

import httpx
import pytest

from gonghui.baas.functions.egress import host_allowed
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.baas.conftest import AppHandle
from tests.baas.devapp import deploy, invoke, make_app
from tests.fixtures import FakeDns, StaffFactory, Tree
from tests.receiver import running_receiver

# A global address: what answers there does not matter, only that it is not the receiver.
PUBLIC_UNREACHABLE = "2001:db9::1"
CALL = (
    "def handler(event, context):\n"
    "    try:\n"
    "        r = context.http.request('POST', event['url'], body='{\"ping\": 1}',"
    " headers={'Content-Type': 'application/json'})\n"
    "        return {'status': r['status']}\n"
    "    except Exception as exc:\n"
    "        return {'refused': str(exc)}\n"
)


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "外呼")


def test_host_patterns() -> None:
    allowed = ("api.example.com", "*.union.cn")
    assert host_allowed("api.example.com", allowed)
    assert host_allowed("API.example.com.", allowed)
    assert host_allowed("a.b.union.cn", allowed)
    assert not host_allowed("union.cn", allowed)
    assert not host_allowed("evil-api.example.com", allowed)
    assert not host_allowed("api.example.com.evil.cn", allowed)


def test_a_declared_host_is_reached_and_others_are_refused(
    api: httpx.Client, app_a: AppHandle, loopback_allowed: None
) -> None:
    with running_receiver() as receiver:
        assert deploy(api, app_a, "call", CALL, allowed_hosts=["127.0.0.1"]).status_code == 201
        ok = invoke(api, app_a, "call", {"url": receiver.url}).json()["result"]
        assert ok == {"status": 200}
        assert [r.json for r in receiver.requests] == [{"ping": 1}]
        other = invoke(api, app_a, "call", {"url": "http://localhost:9/x"}).json()["result"]
        assert other["refused"].startswith("functions.host_not_allowed")
    assert len(receiver.requests) == 1


def test_private_addresses_are_refused_by_default(api: httpx.Client, app_a: AppHandle) -> None:
    with running_receiver() as receiver:
        deploy(api, app_a, "call", CALL, allowed_hosts=["127.0.0.1"])
        refused = invoke(api, app_a, "call", {"url": receiver.url}).json()["result"]
        assert "does not resolve to a public address" in refused["refused"]
    assert receiver.requests == []


def test_bad_host_lists_are_refused(api: httpx.Client, app_a: AppHandle) -> None:
    resp = deploy(api, app_a, "call", CALL, allowed_hosts=["http://x.cn/path"])
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "allowed_hosts"


def test_a_rebinding_host_is_reached_only_at_the_address_that_was_checked(
    api: httpx.Client, app_a: AppHandle, loopback_allowed: None, fake_dns: FakeDns
) -> None:
    with running_receiver() as checked:
        # The name answers the allowed address first, then an internal service listening on
        # the same port: the call must never ask again.
        with running_receiver(host="127.0.0.2", port=checked.port) as internal:
            fake_dns.answers["api.partner.example"] = ["127.0.0.1", "127.0.0.2"]
            deploy(api, app_a, "call", CALL, allowed_hosts=["api.partner.example"])
            url = f"http://api.partner.example:{checked.port}/hook"
            result = invoke(api, app_a, "call", {"url": url}).json()["result"]
    assert result == {"status": 200}
    assert [r.json for r in checked.requests] == [{"ping": 1}]
    assert checked.requests[0].headers["host"] == f"api.partner.example:{checked.port}"
    assert internal.requests == []
    assert fake_dns.lookups == ["api.partner.example"]


def test_a_host_that_answers_public_then_loopback_is_never_reached_at_loopback(
    api: httpx.Client, app_a: AppHandle, fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the first answer (a public address, unreachable or not from here) is
    # the one checked; a second lookup would hand the connection to the loopback receiver.
    monkeypatch.setattr(get_settings(), "outbound_timeout_s", 1.0)
    with running_receiver() as internal:
        fake_dns.answers["api.partner.example"] = [PUBLIC_UNREACHABLE, "127.0.0.1"]
        deploy(api, app_a, "call", CALL, allowed_hosts=["api.partner.example"])
        url = f"http://api.partner.example:{internal.port}/hook"
        invoke(api, app_a, "call", {"url": url})
    assert internal.requests == []
    assert fake_dns.lookups == ["api.partner.example"]


def test_a_declared_host_that_trickles_its_answer_is_cut_at_the_deadline(
    api: httpx.Client,
    app_a: AppHandle,
    loopback_allowed: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "outbound_timeout_s", 0.3)
    with running_receiver(mode="trickle") as receiver:
        deploy(api, app_a, "call", CALL, allowed_hosts=["127.0.0.1"], timeout_s=10)
        result = invoke(api, app_a, "call", {"url": receiver.url}).json()["result"]
        receiver.release.set()
    assert result["refused"].startswith("functions.http_failed")
    assert "outbound.deadline" in result["refused"]
    assert len(receiver.requests) == 1


def test_an_answer_over_one_mebibyte_is_refused_without_reading_it_all(
    api: httpx.Client, app_a: AppHandle, loopback_allowed: None
) -> None:
    flood = 64 * 1024 * 1024
    with running_receiver(mode="flood", flood_bytes=flood) as receiver:
        deploy(api, app_a, "call", CALL, allowed_hosts=["127.0.0.1"], timeout_s=10)
        result = invoke(api, app_a, "call", {"url": receiver.url}).json()["result"]
        receiver.release.set()
    assert result["refused"].startswith("functions.http_failed")
    assert "outbound.too_large" in result["refused"]
    assert receiver.sent < flood
