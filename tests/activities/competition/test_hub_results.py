"""Published results on the member's hub (结果公示): a competition's published ranking and a
praise vote's frozen result, of the member's union and the unions above it, newest first
with their first lines, over the API and in the H5, after the activities' own pages have
closed; nothing before publication, nothing of another branch."""

from __future__ import annotations

from typing import Any

import httpx

from gonghui.orgs.models import Role
from tests.activities.competition.conftest import ResultsStory, results_story
from tests.activities.conftest import Member, MemberFactory, h5_get
from tests.fixtures import StaffFactory, Tree


def test_published_rankings_and_frozen_votes_are_listed_for_the_member_s_chain(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    def listed(member: Member, **params: Any) -> dict[str, Any]:
        resp = api.get("/api/v1/hub/results", params=params, headers=member.headers)
        assert resp.status_code == 200, resp.text
        page: dict[str, Any] = resp.json()
        return page

    def nothing_yet(story: ResultsStory) -> None:  # scored, not published nor frozen
        assert listed(story.reader) == {"items": [], "next_cursor": None}

    story = results_story(
        api, tree, make_competition, make_member, make_staff, before_publication=nothing_yet
    )
    competition, praise, still_open = story.competition, story.vote, story.open_vote
    reader = story.reader

    page = listed(reader)
    assert page["next_cursor"] is None
    assert [(i["id"], i["kind"], i["org_name"]) for i in page["items"]] == [
        (praise, "vote", "广州市总工会"),
        (competition, "competition", "广州市总工会"),
    ]
    assert [(line["rank"], line["name"], line["votes"]) for line in page["items"][0]["top"]] == [
        (1, "张劳模", 3),
        (2, "赵工匠", 1),
        (2, "钱技师", 1),
    ]
    ranking = page["items"][1]["top"]
    assert [(line["rank"], line["name"], line["votes"]) for line in ranking] == [
        (1, "王师傅", None),
        (2, "李工匠", None),
    ]
    assert ranking[0]["score"] > ranking[1]["score"]
    assert still_open not in {i["id"] for i in page["items"]}

    first = listed(reader, limit=1)
    assert [i["id"] for i in first["items"]] == [praise]
    rest = listed(reader, limit=1, cursor=first["next_cursor"])
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([competition], None)
    bad = api.get("/api/v1/hub/results?cursor=nonsense", headers=reader.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "request.bad_cursor"

    elsewhere = make_member(tree.city_b)
    assert listed(elsewhere)["items"] == []

    # The H5: the hub links to the list; the list and each result, after the windows closed.
    assert 'href="/h5/results"' in h5_get(api, reader, "/h5/").text
    shown = h5_get(api, reader, "/h5/results").text
    assert shown.index("2026年度劳模评选") < shown.index("职工技能大赛")
    contest = h5_get(api, reader, f"/h5/results/{competition}").text
    assert contest.index("王师傅") < contest.index("李工匠")
    result = h5_get(api, reader, f"/h5/results/{praise}").text
    assert story.log_hash in result
    assert f'href="/api/v1/public/votes/{praise}/log"' in result
    for path in (f"/h5/results/{still_open}", f"/h5/results/{competition + 10_000}"):
        assert h5_get(api, reader, path).status_code == 404
    assert h5_get(api, elsewhere, f"/h5/results/{competition}").status_code == 404

    # An archived union's results are gone from the list and from their pages.
    admin = make_staff(tree.province, Role.ADMIN)
    for org in (tree.grassroots_a1x, tree.district_a1, tree.city_a):
        resp = api.post(f"/api/v1/orgs/{org}/archive", headers=admin.headers)
        assert resp.status_code == 200, resp.text
    assert listed(reader)["items"] == []
    for activity in (competition, praise):
        assert h5_get(api, reader, f"/h5/results/{activity}").status_code == 404
