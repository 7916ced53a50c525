"""Gallery functions: installed with their trigger in one call, they award points to
participants and text winners, once per event however often it is delivered."""

from __future__ import annotations

import httpx
import pytest

from gonghui import tasks
from gonghui.integrations.sms import dev_outbox
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, lottery_config
from tests.baas.devapp import functions_url, make_app
from tests.baas.functions.conftest import signed_in_member
from tests.fixtures import StaffFactory, Tree

# The story counts the triggers' tasks and SMS messages alone, not members' notifications.
pytestmark = pytest.mark.usefixtures("quiet_notifications")

PHONE = "13912345678"


def test_gallery_functions_award_points_and_text_winners_once_per_event(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev = make_staff(tree.city_a, Role.DEVELOPER)
    app = make_app(api, dev, tree.city_a, "月度活动")
    listed = api.get("/api/v1/baas/function-gallery", headers=dev.headers).json()
    assert {g["name"] for g in listed} == {"award-points", "notify-winners"}
    for template, name in (("award-points", "points"), ("notify-winners", "sms")):
        resp = api.post(
            functions_url(app, f"/{name}/install"),
            json={"template": template, "env": {"POINTS": "15"} if name == "points" else None},
            headers=dev.headers,
        )
        assert resp.status_code == 201, resp.text
    member = signed_in_member(tree.grassroots_a1x, phone=PHONE).headers
    operator = make_staff(tree.city_a, Role.OPERATOR)
    prize = [{"name": "电影票", "kind": "voucher", "weight": 1, "stock": 3, "value": 5000}]
    activity = create_activity(
        api, operator.headers, tree.district_a1, config=lottery_config(prize), budget_points=100
    )
    drawn = api.post(
        f"/api/v1/activities/{activity['id']}/draws", json={"entropy": "x"}, headers=member
    )
    assert drawn.json()["won"] is True
    assert tasks.run_due() == 2

    wallet = api.get("/api/v1/me/wallet", headers=member).json()
    assert wallet["points"] == 15
    texts = [m["text"] for m in dev_outbox(PHONE)]
    assert texts == ["【工会服务】恭喜您在工会活动中获得电影票，请到“我的权益”查看。"]

    # Deliveries are at least once: sending both events again changes nothing.
    rows = api.get(f"/api/v1/baas/apps/{app.id}/deliveries", headers=dev.headers).json()
    assert {r["status"] for r in rows} == {"delivered"}
    for row in rows:
        api.post(
            f"/api/v1/baas/apps/{app.id}/deliveries/{row['id']}/redeliver", headers=dev.headers
        )
    assert tasks.run_due() == 2
    assert api.get("/api/v1/me/wallet", headers=member).json()["points"] == 15
    assert len(dev_outbox(PHONE)) == 1


def test_member_calls_need_server_rights_and_stay_in_the_apps_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev = make_staff(tree.city_b, Role.DEVELOPER)
    app = make_app(api, dev, tree.city_b, "深圳应用")
    signed_in_member(tree.grassroots_a1x)  # membership 1, in city A
    call = (
        "def handler(event, context):\n"
        "    return context.sdk.call('benefits.award_points',"
        " {'membership_id': 1, 'points': 5, 'key': 'k1'})\n"
    )
    for name, runs_as in (("as-caller", "caller"), ("as-server", "server")):
        api.put(
            functions_url(app, f"/{name}"),
            json={"source": call, "runs_as": runs_as},
            headers=dev.headers,
        )
    caller = api.post(functions_url(app, "/as-caller/invoke"), json=None, headers=app.client)
    assert caller.json()["error"]["message"].startswith("functions.server_rights_required")
    server = api.post(functions_url(app, "/as-server/invoke"), json=None, headers=app.client)
    assert server.json()["error"]["message"].startswith("functions.member_not_found")
