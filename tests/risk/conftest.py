"""Clients from addresses of our choosing (Linux routes all of 127.0.0.0/8 to loopback,
and only 127.0.0.1 is trusted by default), a captcha whose answer the test knows, and an
operator's risk limits."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gonghui.risk import captcha
from gonghui.risk.captcha import Puzzle
from tests.activities.conftest import MemberFactory, create_member

ANSWER = "K7MQX"
_devices = itertools.count(1)


class KnownCaptcha(captcha.ImageCaptcha):
    """The built-in image captcha, always with the same answer."""

    def pose(self) -> Puzzle:
        return Puzzle(ANSWER, captcha.render(ANSWER))


@pytest.fixture(autouse=True)
def known_captcha(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(captcha.PROVIDERS, "image", KnownCaptcha())


@pytest.fixture
def make_member() -> MemberFactory:
    return create_member


ClientFrom = Callable[[str], httpx.Client]


@pytest.fixture
def client_from(server: str) -> Iterator[ClientFrom]:
    """An HTTP client whose requests come from ``ip`` (a loopback address)."""
    clients: list[httpx.Client] = []

    def make(ip: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=ip)
        client = httpx.Client(base_url=server, timeout=30, transport=transport)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def device() -> dict[str, str]:
    """A device id as the H5 sends it (one per phone)."""
    return {"X-Device-Id": f"h5-device-{next(_devices):06d}"}


def set_limits(
    api: httpx.Client, operator: dict[str, str], activity_id: int, **limits: Any
) -> dict[str, Any]:
    resp = api.put(f"/api/v1/activities/{activity_id}/risk-limits", json=limits, headers=operator)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def answered(challenge_id: str, answer: str = ANSWER) -> dict[str, str]:
    return {"X-Risk-Challenge": challenge_id, "X-Risk-Answer": answer}


def challenge_of(resp: httpx.Response) -> str:
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "risk.challenge_required"
    challenge_id: str = error["details"]["challenge_id"]
    return challenge_id


def fetch_picture(client: httpx.Client, challenge_id: str, headers: dict[str, str]) -> bytes:
    resp = client.get(f"/api/v1/risk/challenges/{challenge_id}/image", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG")
    return resp.content
