"""The vote's dry run: the organiser sees a vote's limits as members will meet them, and
what does not add up, before publishing."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from gonghui import clock
from tests.activities.conftest import create_activity, staff_headers
from tests.activities.vote.conftest import People, approved_candidates, nominate, vote_config
from tests.fixtures import Tree

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _three_days() -> dict[str, str]:
    """From tomorrow's local midnight to the midnight three days later."""
    start = datetime.combine(clock.local_day() + timedelta(days=1), time(), tzinfo=SHANGHAI)
    return {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=3)).isoformat(),
    }


def _preview(api: httpx.Client, aid: int, people: People) -> httpx.Response:
    return api.get(
        f"/api/v1/activities/{aid}/vote-preview", headers=staff_headers(people.organiser)
    )


def _draft(api: httpx.Client, tree: Tree, people: People, **rules: Any) -> int:
    activity = create_activity(
        api,
        staff_headers(people.organiser),
        tree.city_a,
        publish=False,
        config=vote_config(**rules),
        **_three_days(),
    )
    return int(activity["id"])


def test_a_draft_without_candidates_and_an_unreachable_total_is_warned(
    api: httpx.Client, tree: Tree, people: People
) -> None:
    aid = _draft(api, tree, people, votes_per_day=2, votes_total=10)
    resp = _preview(api, aid, people)
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert (seen["days"], seen["candidates"], seen["pending_nominations"]) == (3, 0, 0)
    assert (seen["first_day_votes"], seen["most_votes_per_member"]) == (0, 0)
    # Two a day for three days never reach ten.
    assert seen["warnings"] == ["no_candidates", "votes_total_unreachable"]


def test_the_limits_follow_from_the_rules_the_window_and_the_candidates(
    api: httpx.Client, tree: Tree, people: People
) -> None:
    aid = _draft(
        api,
        tree,
        people,
        votes_per_day=3,
        votes_per_candidate_per_day=1,
        votes_total=7,
        hide_counts_until_end=True,
    )
    approved_candidates(api, aid, tree, people, ["张三", "李四"])
    assert nominate(api, aid, people.district, tree.district_a1, "王五").status_code == 201
    seen = _preview(api, aid, people).json()
    # Two candidates approved, one vote a day each: two of the three daily votes can be
    # spent; three days make six, under the total of seven.
    assert seen["candidates"] == 2
    assert seen["pending_nominations"] == 1
    assert seen["first_day_votes"] == 2
    assert seen["most_votes_per_member"] == 6
    assert seen["most_votes_for_one_candidate"] == 3
    assert seen["counts_hidden_until_end"] is True
    assert seen["warnings"] == ["votes_per_day_unspendable", "nominations_pending"]

    approved_candidates(api, aid, tree, people, ["赵六"])
    again = _preview(api, aid, people).json()
    # Now all three daily votes can be spent, and the total of seven caps the nine.
    assert (again["first_day_votes"], again["most_votes_per_member"]) == (3, 7)
    assert again["warnings"] == ["nominations_pending"]


def test_only_the_organiser_previews_it(api: httpx.Client, tree: Tree, people: People) -> None:
    aid = _draft(api, tree, people)
    for staff in (people.district, people.other_city):
        resp = api.get(f"/api/v1/activities/{aid}/vote-preview", headers=staff_headers(staff))
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "activity.not_found"
