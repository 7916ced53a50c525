"""The hub: a member's live and upcoming activities from their whole chain."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gonghui import clock
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree
from tests.serverproc import ServerProcess, settles

pytestmark = pytest.mark.database_fallback


def _all_pages(api: httpx.Client, url: str, headers: dict[str, str] | None = None) -> list[dict]:  # type: ignore[type-arg]
    items: list[dict] = []  # type: ignore[type-arg]
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(url, params=params, headers=headers or {}).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _points_lottery(*, free_draws_per_day: int) -> dict[str, Any]:
    return lottery_config(
        [{"name": "积分", "kind": "points", "weight": 1, "stock": 5, "value": 10}],
        free_draws_per_day=free_draws_per_day,
    )


def test_member_sees_their_chain_with_their_own_state(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    config = _points_lottery(free_draws_per_day=2)
    province = create_activity(api, admin.headers, tree.province, title="省", config=config)
    city = create_activity(api, admin.headers, tree.city_a, title="市", starts_in_hours=5)
    district = create_activity(api, admin.headers, tree.district_a1, title="区")
    create_activity(api, admin.headers, tree.city_b, title="别的市")
    create_activity(api, admin.headers, tree.city_a, title="草稿", publish=False)
    ended = create_activity(api, admin.headers, tree.city_a, title="已结束")
    api.post(f"/api/v1/activities/{ended['id']}/end", headers=admin.headers)
    paused = create_activity(api, admin.headers, tree.city_a, title="暂停")
    api.post(f"/api/v1/activities/{paused['id']}/pause", headers=admin.headers)

    member = make_member(tree.grassroots_a1x)
    drawn = api.post(f"/api/v1/activities/{province['id']}/draws", headers=member.headers)
    assert drawn.json()["outcome"] == "won"

    items = _all_pages(api, "/api/v1/hub", member.headers)
    assert [i["title"] for i in items] == ["省", "区", "市"]
    by_title = {i["title"]: i for i in items}
    assert by_title["省"]["me"] == {"joined": True, "chances_left": 1, "prizes_won": 1}
    assert by_title["区"]["me"] == {"joined": False, "chances_left": 1, "prizes_won": 0}
    assert by_title["市"]["status"] == "scheduled"
    assert by_title["省"]["status"] == "live"
    assert {i["id"] for i in items} == {province["id"], city["id"], district["id"]}

    outsider = make_member(tree.grassroots_b1)
    assert [i["title"] for i in _all_pages(api, "/api/v1/hub", outsider.headers)] == [
        "省",
        "别的市",
    ]


def test_a_new_day_gives_back_the_free_draws_and_keeps_what_was_won(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    config = _points_lottery(free_draws_per_day=1)
    won = create_activity(api, admin.headers, tree.province, title="中奖", config=config)
    other = create_activity(api, admin.headers, tree.province, title="没抽", config=config)
    member = make_member(tree.grassroots_a1x)
    drawn = api.post(f"/api/v1/activities/{won['id']}/draws", headers=member.headers)
    assert drawn.json()["outcome"] == "won"
    today = _titles(api, member.headers)
    assert today["中奖"]["me"] == {"joined": True, "chances_left": 0, "prizes_won": 1}
    assert today["没抽"]["me"] == {"joined": False, "chances_left": 1, "prizes_won": 0}

    clock.advance(timedelta(days=1))
    tomorrow = _titles(api, member.headers)
    assert tomorrow["中奖"]["me"] == {"joined": True, "chances_left": 1, "prizes_won": 1}
    assert tomorrow["没抽"]["me"] == {"joined": False, "chances_left": 1, "prizes_won": 0}
    one = api.get(f"/api/v1/hub/activities/{won['id']}", headers=member.headers).json()
    assert one == tomorrow["中奖"]
    assert other["id"] == tomorrow["没抽"]["id"]


def test_visitors_see_teasers_without_signing_in(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    create_activity(api, admin.headers, tree.province, title="省")
    create_activity(api, admin.headers, tree.city_b, title="深圳")
    create_activity(api, admin.headers, tree.city_a, title="草稿", publish=False)
    assert [i["title"] for i in _all_pages(api, "/api/v1/public/activities")] == ["省", "深圳"]
    resp = api.get("/api/v1/public/activities", params={"org_id": tree.grassroots_a1x})
    assert [i["title"] for i in resp.json()["items"]] == ["省"]
    assert set(resp.json()["items"][0]) == {
        "id",
        "org_name",
        "kind",
        "title",
        "status",
        "starts_at",
        "ends_at",
    }
    bad = api.get("/api/v1/public/activities", params={"cursor": "!!"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "cursor"


def test_member_opens_one_activity_with_the_same_state_as_the_hub(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    config = lottery_config(
        [{"name": "积分", "kind": "points", "weight": 1, "stock": 5, "value": 10}],
        free_draws_per_day=3,
    )
    province = create_activity(api, admin.headers, tree.province, title="省", config=config)
    city = create_activity(api, admin.headers, tree.city_a, title="市", starts_in_hours=5)
    other_city = create_activity(api, admin.headers, tree.city_b, title="别的市")
    draft = create_activity(api, admin.headers, tree.city_a, title="草稿", publish=False)
    member = make_member(tree.grassroots_a1x)
    assert (
        api.post(f"/api/v1/activities/{province['id']}/draws", headers=member.headers).json()[
            "outcome"
        ]
        == "won"
    )

    hub_items = {i["id"]: i for i in _all_pages(api, "/api/v1/hub", member.headers)}
    for activity in (province, city):
        one = api.get(f"/api/v1/hub/activities/{activity['id']}", headers=member.headers)
        assert one.status_code == 200, one.text
        assert one.json() == hub_items[activity["id"]]
    assert hub_items[province["id"]]["me"] == {"joined": True, "chances_left": 2, "prizes_won": 1}

    for hidden in (other_city, draft):
        missing = api.get(f"/api/v1/hub/activities/{hidden['id']}", headers=member.headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "activity.not_found"
    assert api.get(f"/api/v1/hub/activities/{city['id']}").status_code == 401


def _titles(api: httpx.Client, headers: dict[str, str]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {i["title"]: i for i in _all_pages(api, "/api/v1/hub", headers)}


def test_hub_shows_each_publish_pause_resume_edit_and_end_at_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    create_activity(api, admin.headers, tree.province, title="省")
    draft = create_activity(api, admin.headers, tree.city_a, title="市", publish=False)
    member = make_member(tree.grassroots_a1x)
    assert list(_titles(api, member.headers)) == ["省"]  # the catalog is now held

    def act(verb: str) -> None:
        resp = api.post(f"/api/v1/activities/{draft['id']}/{verb}", headers=admin.headers)
        assert resp.status_code == 200, resp.text

    act("publish")
    assert list(_titles(api, member.headers)) == ["省", "市"]
    act("pause")
    assert list(_titles(api, member.headers)) == ["省"]
    act("resume")
    assert list(_titles(api, member.headers)) == ["省", "市"]
    resp = api.patch(
        f"/api/v1/activities/{draft['id']}", json={"title": "市(改)"}, headers=admin.headers
    )
    assert resp.status_code == 200, resp.text
    assert list(_titles(api, member.headers)) == ["省", "市(改)"]
    act("end")
    assert list(_titles(api, member.headers)) == ["省"]
    # Visitors' teasers come from the same catalog.
    teasers = api.get("/api/v1/public/activities").json()["items"]
    assert [i["title"] for i in teasers] == ["省"]


def test_hub_shows_org_renames_and_archives_at_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    create_activity(api, admin.headers, tree.district_a1, title="区")
    create_activity(api, admin.headers, tree.grassroots_a1x, title="基层")
    member = make_member(tree.grassroots_a1x)
    assert _titles(api, member.headers)["区"]["org_name"] == "天河区总工会"

    resp = api.patch(
        f"/api/v1/orgs/{tree.district_a1}", json={"name": "天河区工会"}, headers=admin.headers
    )
    assert resp.status_code == 200, resp.text
    assert _titles(api, member.headers)["区"]["org_name"] == "天河区工会"
    resp = api.post(f"/api/v1/orgs/{tree.grassroots_a1x}/archive", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert list(_titles(api, member.headers)) == ["区"]


def test_hub_follows_the_clock_without_any_write(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    create_activity(api, admin.headers, tree.province, title="下午开始", starts_in_hours=5)
    create_activity(api, admin.headers, tree.province, title="一周")  # ends in 7 days
    member = make_member(tree.grassroots_a1x)
    assert _titles(api, member.headers)["下午开始"]["status"] == "scheduled"
    clock.advance(timedelta(hours=6))
    assert _titles(api, member.headers)["下午开始"]["status"] == "live"
    clock.advance(timedelta(days=7) - timedelta(hours=6) + timedelta(minutes=1))
    assert list(_titles(api, member.headers)) == ["下午开始"]


def test_a_cursor_without_a_time_zone_is_refused(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    naive = base64.urlsafe_b64encode(b"2026-11-25T08:00:00|7").decode().rstrip("=")
    resp = api.get("/api/v1/hub", params={"cursor": naive}, headers=member.headers)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "cursor"


@pytest.mark.slow
def test_every_server_process_sees_a_pause_made_in_another(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    lottery = create_activity(api, admin.headers, tree.province, title="省")
    create_activity(api, admin.headers, tree.city_a, title="市")
    member = make_member(tree.grassroots_a1x)
    server = ServerProcess(workers=2).start()
    try:

        def hub_titles_seen(times: int) -> set[tuple[str, ...]]:
            seen = set()
            for _ in range(times):  # a new connection each time: either worker may answer
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    seen.add(tuple(_titles(client, member.headers)))
            return seen

        assert hub_titles_seen(12) == {("省", "市")}  # both workers hold the catalog
        # Paused through this test process's server: the other processes learn it from
        # the database alone, within the catalog's lag.
        resp = api.post(f"/api/v1/activities/{lottery['id']}/pause", headers=admin.headers)
        assert resp.status_code == 200, resp.text
        settles(hub_titles_seen, ("市",))
    finally:
        server.stop()
