"""Broadcasts: written by one staff member, approved by another, sent at a bounded rate."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.notifications.models import Notification
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.activities.conftest import staff_headers
from tests.fixtures import StaffFactory, Tree
from tests.notifications.conftest import MemberFactory


def _broadcasts_sent() -> int:
    with unit_of_work(read_only=True) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.broadcast_id.is_not(None))
            )
            or 0
        )


def _write(api: httpx.Client, headers: dict[str, str], org_id: int) -> dict[str, object]:
    resp = api.post(
        "/api/v1/notifications/broadcasts",
        json={
            "org_id": org_id,
            "title": "年终慰问",
            "body": "12月31日前领取慰问品。",
            "channels": ["sms"],
        },
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_a_broadcast_needs_a_second_staff_member_to_approve_it(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    make_member(tree.grassroots_a1x)
    author = make_staff(tree.city_a, Role.OPERATOR)
    outsider = make_staff(tree.city_b, Role.ADMIN)
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    reviewer = make_staff(tree.province, Role.OPERATOR)
    written = _write(api, author.headers, tree.city_a)
    assert written["status"] == "pending"
    url = f"/api/v1/notifications/broadcasts/{written['id']}"

    own = api.post(f"{url}/approve", json={}, headers=author.headers)
    assert own.status_code == 403
    assert own.json()["error"]["code"] == "notifications.same_reviewer"
    # Staff of another city do not see it; an auditor may read but not approve.
    assert api.post(f"{url}/approve", json={}, headers=outsider.headers).status_code == 404
    assert api.get(url, headers=outsider.headers).status_code == 404
    assert api.post(f"{url}/approve", json={}, headers=auditor.headers).status_code == 404
    tasks.run_due()
    assert api.get(url, headers=author.headers).json()["status"] == "pending"
    assert _broadcasts_sent() == 0

    approved = api.post(f"{url}/approve", json={"note": "同意"}, headers=reviewer.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "sending"
    assert approved.json()["total"] == 1
    again = api.post(f"{url}/approve", json={}, headers=reviewer.headers)
    assert again.status_code == 409
    tasks.run_due()
    done = api.get(url, headers=author.headers).json()
    assert (done["status"], done["sent_count"]) == ("sent", 1)
    assert _broadcasts_sent() == 1


def test_a_broadcast_goes_out_no_faster_than_the_rate(
    tree: Tree,
    api: httpx.Client,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "notifications_broadcast_per_s", 2)
    for org in (
        tree.grassroots_a1x,
        tree.grassroots_a1x,
        tree.district_a1,
        tree.city_a,
        tree.city_a,
    ):
        make_member(org)
    make_member(tree.grassroots_b1)  # another city: not a recipient
    author = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.ADMIN)
    written = _write(api, author.headers, tree.city_a)
    url = f"/api/v1/notifications/broadcasts/{written['id']}"
    api.post(f"{url}/approve", json={}, headers=reviewer.headers)

    progress = []
    for _ in range(4):
        tasks.run_due()
        progress.append(_broadcasts_sent())
        clock.advance(timedelta(seconds=1))
    # Two a second, however often the worker looks.
    assert progress == [2, 4, 5, 5]
    done = api.get(url, headers=staff_headers(author)).json()
    assert (done["status"], done["total"], done["sent_count"]) == ("sent", 5, 5)
    log = api.get(
        "/api/v1/notifications/deliveries",
        params={"broadcast_id": written["id"], "status": "sent"},
        headers=staff_headers(reviewer),
    ).json()
    assert sorted({row["channel"] for row in log}) == ["inbox", "sms"]
    assert len(log) == 10
