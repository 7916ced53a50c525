"""The hub: a member's live and upcoming activities from their whole chain."""

from __future__ import annotations

import httpx

from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree


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


def test_member_sees_their_chain_with_their_own_state(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    config = lottery_config(
        [{"name": "积分", "kind": "points", "weight": 1, "stock": 5, "value": 10}],
        free_draws_per_day=2,
    )
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
