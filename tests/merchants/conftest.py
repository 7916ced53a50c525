"""Merchants, their tills and the union vouchers they redeem, built as operators build them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from gonghui.accounts.models import SessionKind
from gonghui.accounts.service import get_user
from gonghui.accounts.tokens import start_session
from gonghui.benefits import service as benefits
from gonghui.db import unit_of_work
from tests.activities.conftest import create_activity, lottery_config, make_member
from tests.fixtures import PASSWORD

__all__ = ["make_member"]

VOUCHER = {
    "name": "满50减10",
    "kind": "voucher",
    "weight": 1,
    "stock": 10,
    "value": 1000,
    "threshold_cents": 5000,
    "valid_days": 7,
}

_usernames = itertools.count(1)


@dataclass(frozen=True)
class Till:
    merchant_id: int
    cashier_id: int
    user_id: int

    @property
    def headers(self) -> dict[str, str]:
        """A password (staff-kind) sign-in started now, so it outlives ``clock.advance``."""
        with unit_of_work() as session:
            user = get_user(session, user_id=self.user_id)
            assert user is not None
            tokens = start_session(session, user=user, kind=SessionKind.STAFF)
        return {"Authorization": f"Bearer {tokens.access_token}"}


def open_merchant(
    api: httpx.Client, headers: dict[str, str], org_id: int, name: str = "天河助农超市"
) -> int:
    made = api.post(
        "/api/v1/merchants",
        json={"org_id": org_id, "name": name, "address": "天河路1号"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def add_till(api: httpx.Client, headers: dict[str, str], merchant_id: int) -> Till:
    username = f"till{next(_usernames)}"
    added = api.post(
        f"/api/v1/merchants/{merchant_id}/cashiers",
        json={"username": username, "password": PASSWORD, "name": f"收银员{username}"},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    body = added.json()
    return Till(merchant_id=merchant_id, cashier_id=body["id"], user_id=body["user_id"])


def voucher_activity(api: httpx.Client, headers: dict[str, str], org_id: int) -> int:
    """A live lottery of ``org_id`` whose one prize is a union voucher (满50减10)."""
    return int(create_activity(api, headers, org_id, config=lottery_config([VOUCHER]))["id"])


def issue(
    activity_id: int, membership_id: int, n: int = 1, merchant_ids: Sequence[int] = ()
) -> list[int]:
    """``n`` vouchers of the activity for the member, as the lottery issues them (spent
    only at ``merchant_ids`` when it names some)."""
    with unit_of_work() as session:
        return benefits.issue_vouchers(
            session,
            members=[membership_id] * n,
            activity_id=activity_id,
            name=str(VOUCHER["name"]),
            value_cents=1000,
            threshold_cents=5000,
            valid_days=7,
            source="test",
            merchant_ids=merchant_ids,
        )


def code_of(api: httpx.Client, voucher_id: int, member_headers: dict[str, str]) -> str:
    """The code the member's app shows now for the voucher."""
    shown = api.get(f"/api/v1/me/vouchers/{voucher_id}/code", headers=member_headers)
    assert shown.status_code == 200, shown.text
    return str(shown.json()["code"])
