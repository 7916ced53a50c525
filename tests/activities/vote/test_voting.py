"""Members vote within the limits; operators void and freeze; anyone checks the result."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from gonghui import clock
from gonghui.activities.models import Counter as UseCounter
from gonghui.activities.vote.models import Vote
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.deps import PUBLIC_LOGS_PER_MINUTE
from tests.activities.conftest import MemberFactory, create_activity, staff_headers, window
from tests.activities.vote.conftest import (
    People,
    approved_candidates,
    vote,
    vote_activity,
    vote_config,
)
from tests.fixtures import Tree, to_the_next_minute


def _votes(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).where(Vote.activity_id == activity_id)) or 0)


def _used(activity_id: int, membership_id: int) -> dict[str, int]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(UseCounter.scope, UseCounter.used).where(
                UseCounter.activity_id == activity_id, UseCounter.membership_id == membership_id
            )
        )
        return dict(rows.all())


def test_each_limit_refuses_the_vote_past_it_and_writes_nothing(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(
        api, tree, people.organiser, votes_per_day=3, votes_per_candidate_per_day=2, votes_total=4
    )["id"]
    a, b, c = approved_candidates(api, aid, tree, people, ["甲", "乙", "丙"])
    member = make_member(tree.grassroots_a1x)
    first = vote(api, aid, member.headers, a)
    assert first.status_code == 201, first.text
    assert first.json()["votes_left_today"] == 2
    assert first.json()["votes_left_total"] == 3
    assert vote(api, aid, member.headers, a).status_code == 201
    third = vote(api, aid, member.headers, a)
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "vote.limit_per_candidate_reached"
    assert vote(api, aid, member.headers, b).status_code == 201
    fourth = vote(api, aid, member.headers, c)
    assert fourth.json()["error"]["code"] == "vote.limit_per_day_reached"
    assert _votes(aid) == 3
    left = api.get(f"/api/v1/activities/{aid}/votes/remaining", headers=member.headers).json()
    assert left["votes_left_today"] == 0
    assert left["votes_left_total"] == 1
    assert left["used_by_candidate_today"] == {str(a): 2, str(b): 1}

    # Tomorrow: a new day's votes, but only one left in all.
    clock.advance(timedelta(days=1))
    assert vote(api, aid, member.headers, c).status_code == 201
    over = vote(api, aid, member.headers, a)
    assert over.status_code == 409
    assert over.json()["error"]["code"] == "vote.limit_total_reached"
    assert _votes(aid) == 4
    # Refusals left nothing: each counter holds exactly the votes cast.
    day1, day2 = (clock.local_day() - timedelta(days=1)).isoformat(), clock.local_day().isoformat()
    assert _used(aid, member.membership_id) == {
        "vote:total": 4,
        f"vote:day:{day1}": 3,
        f"vote:day:{day2}": 1,
        f"vote:c:{a}:{day1}": 2,
        f"vote:c:{b}:{day1}": 1,
        f"vote:c:{c}:{day2}": 1,
    }


def test_a_retry_with_the_same_key_is_the_same_vote(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser, votes_per_day=5)["id"]
    (a,) = approved_candidates(api, aid, tree, people, ["甲"])
    member = make_member(tree.district_a1)
    once = vote(api, aid, member.headers, a, key="v-1")
    again = vote(api, aid, member.headers, a, key="v-1")
    assert once.status_code == again.status_code == 201
    assert once.json() == again.json()
    assert _votes(aid) == 1


def test_only_verified_eligible_members_of_the_subtree_vote(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser)["id"]
    (a,) = approved_candidates(api, aid, tree, people, ["甲"])
    outsider = make_member(tree.grassroots_b1)  # city B: not under the organiser
    assert vote(api, aid, outsider.headers, a).status_code == 404
    staff = vote(api, aid, people.organiser.headers, a)  # staff, not a verified member
    assert staff.status_code == 403
    tagged = api.post(
        "/api/v1/activities",
        json={
            "org_id": tree.city_a,
            "title": "女职工评选",
            "starts_at": clock.now().isoformat(),
            "ends_at": (clock.now() + timedelta(days=3)).isoformat(),
            "config": {"kind": "vote", "vote": {}},
            "eligibility": {"tags_any": ["女职工"]},
        },
        headers=people.organiser.headers,
    ).json()
    api.post(f"/api/v1/activities/{tagged['id']}/publish", headers=people.organiser.headers)
    (b,) = approved_candidates(api, tagged["id"], tree, people, ["乙"])
    member = make_member(tree.district_a1)
    refused = vote(api, tagged["id"], member.headers, b)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "activities.not_eligible"
    assert _votes(aid) == _votes(tagged["id"]) == 0


def test_hidden_counts_are_hidden_from_members_until_the_end_never_from_operators(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser, hide_counts_until_end=True)["id"]
    a, b = approved_candidates(api, aid, tree, people, ["甲", "乙"])
    member = make_member(tree.district_a1)
    vote(api, aid, member.headers, b)
    ranking = api.get(f"/api/v1/activities/{aid}/ranking", headers=member.headers).json()
    assert ranking["counts_hidden"] is True
    assert [(i["candidate_id"], i["votes"]) for i in ranking["items"]] == [(a, None), (b, None)]
    listed = api.get(f"/api/v1/activities/{aid}/candidates", headers=member.headers).json()
    assert [c["votes"] for c in listed] == [None, None]
    seen = api.get(f"/api/v1/activities/{aid}/vote-ranking", headers=people.organiser.headers)
    assert [(i["candidate_id"], i["votes"]) for i in seen.json()["items"]] == [(b, 1), (a, 0)]
    api.post(f"/api/v1/activities/{aid}/end", headers=people.organiser.headers)
    ended = api.get(f"/api/v1/activities/{aid}/ranking", headers=member.headers).json()
    assert ended["counts_hidden"] is False
    assert [(i["candidate_id"], i["votes"]) for i in ended["items"]] == [(b, 1), (a, 0)]


def _recompute(lines: list[dict[str, Any]]) -> tuple[str, Counter[int]]:
    """The log's hash and totals, worked out here as any outsider would (not with the
    server's code)."""
    result, entries = lines[0], lines[1:]
    digest = hashlib.sha256(f"gonghui-vote-v1:{result['activity_id']}".encode()).hexdigest()
    totals: Counter[int] = Counter()
    for e in entries:
        state = "ok" if e["valid"] else "void"
        line = f"{e['n']}|{e['voter']}|{e['candidate_id']}|{e['day']}|{state}"
        digest = hashlib.sha256(f"{digest}\n{line}".encode()).hexdigest()
        if e["valid"]:
            totals[e["candidate_id"]] += 1
    return digest, totals


def test_void_then_freeze_publishes_totals_and_a_hash_anyone_can_recompute(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser, votes_per_day=2)["id"]
    a, b = approved_candidates(api, aid, tree, people, ["甲", "乙"])
    members = [make_member(tree.grassroots_a1x) for _ in range(3)]
    for m in members:
        assert vote(api, aid, m.headers, a).status_code == 201
    assert vote(api, aid, members[0].headers, b).status_code == 201
    organiser = people.organiser.headers
    log = api.get(f"/api/v1/activities/{aid}/vote-log", headers=organiser).json()
    assert [(v["candidate_id"], v["membership_id"]) for v in log] == [
        (a, members[0].membership_id),
        (a, members[1].membership_id),
        (a, members[2].membership_id),
        (b, members[0].membership_id),
    ]
    # One candidate's votes, newest first, a page before a given vote.
    newest = api.get(
        f"/api/v1/activities/{aid}/vote-log",
        params={"candidate_id": a, "before": log[-1]["id"] + 1, "limit": 2},
        headers=organiser,
    ).json()
    assert [v["id"] for v in newest] == [log[2]["id"], log[1]["id"]]
    brushed = log[1]["id"]
    voided = api.post(
        f"/api/v1/activities/{aid}/votes/{brushed}/void", json={"reason": "刷票"}, headers=organiser
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["void_reason"] == "刷票"
    twice = api.post(
        f"/api/v1/activities/{aid}/votes/{brushed}/void", json={"reason": "刷票"}, headers=organiser
    )
    assert twice.json()["error"]["code"] == "vote.already_void"
    ranking = api.get(f"/api/v1/activities/{aid}/vote-ranking", headers=organiser).json()
    assert [(i["candidate_id"], i["votes"]) for i in ranking["items"]] == [(a, 2), (b, 1)]

    early = api.post(f"/api/v1/activities/{aid}/vote-results", headers=organiser)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "vote.not_ended"
    assert api.get(f"/api/v1/public/votes/{aid}/results").status_code == 404

    clock.advance(timedelta(days=8))  # past the end
    organiser = staff_headers(people.organiser)
    late = vote(api, aid, members[1].headers, b)
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "activities.not_live"
    frozen = api.post(f"/api/v1/activities/{aid}/vote-results", headers=organiser)
    assert frozen.status_code == 200, frozen.text
    published = frozen.json()
    assert published["entries"] == 4
    assert published["voided"] == 1
    assert [(t["candidate_id"], t["votes"]) for t in published["totals"]] == [(a, 2), (b, 1)]

    download = api.get(f"/api/v1/public/votes/{aid}/log")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in download.text.splitlines()]
    digest, totals = _recompute(lines)
    assert digest == published["log_hash"] == lines[0]["log_hash"]
    assert {t["candidate_id"]: t["votes"] for t in published["totals"]} == dict(totals)
    # The log names pseudonyms, never membership ids; one member's votes share one.
    voters = [e["voter"] for e in lines[1:]]
    assert voters[0] == voters[3]
    assert len(set(voters)) == 3
    assert str(members[0].membership_id) not in set(voters)
    # Anyone downloads it, a few times a minute per network: it grows with the vote.
    codes = [api.get(f"/api/v1/public/votes/{aid}/log").status_code for _ in range(10)]
    assert codes == [200] * (PUBLIC_LOGS_PER_MINUTE - 1) + [429]
    throttled = api.get(f"/api/v1/public/votes/{aid}/log")
    assert throttled.json()["error"]["code"] == "public.too_many_downloads"
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    clock.advance(timedelta(seconds=61))
    assert api.get(f"/api/v1/public/votes/{aid}/log").status_code == 200

    # Frozen: no void, the same answer on a second freeze and for everyone.
    refused = api.post(
        f"/api/v1/activities/{aid}/votes/{log[0]['id']}/void",
        json={"reason": "迟到的举报"},
        headers=organiser,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "vote.frozen"
    again = api.post(f"/api/v1/activities/{aid}/vote-results", headers=organiser).json()
    public = api.get(f"/api/v1/public/votes/{aid}/results").json()
    assert again == public == published
    with unit_of_work(read_only=True) as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.in_(["vote.void", "vote.freeze"]))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["vote.void", "vote.freeze"]


def test_a_candidate_whose_votes_jump_is_flagged_to_the_organiser(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    activity = vote_activity(api, tree, people.organiser)
    aid = activity["id"]
    (a,) = approved_candidates(api, aid, tree, people, ["张三"])
    members = [make_member(tree.district_a1) for _ in range(54)]
    to_the_next_minute()  # the 51 votes below must share one minute
    for m in members[:3]:  # three quiet minutes: a vote in each
        assert vote(api, aid, m.headers, a).status_code == 201
        clock.advance(timedelta(seconds=60))
    for m in members[3:53]:  # fifty this minute: not yet past max(50, 5 x 0.3)
        assert vote(api, aid, m.headers, a).status_code == 201
    flags = api.get("/api/v1/risk/flags", headers=people.organiser.headers)
    assert flags.status_code == 200, flags.text
    assert [f for f in flags.json() if f["kind"] == "target_jump"] == []
    assert vote(api, aid, members[53].headers, a).status_code == 201
    jumps = [
        f
        for f in api.get("/api/v1/risk/flags", headers=people.organiser.headers).json()
        if f["kind"] == "target_jump"
    ]
    assert [(f["subject"], f["activity_id"], f["evidence"]["this_minute"]) for f in jumps] == [
        (f"target:vote:{aid}:candidate:{a}", aid, 51)
    ]


def test_a_vote_takes_no_participation_limits_of_the_activity_created_or_edited(
    api: httpx.Client, tree: Tree, people: People
) -> None:
    headers = staff_headers(people.organiser)
    body = {
        "org_id": tree.city_a,
        "title": "评选",
        "config": vote_config(),
        **window(0),
    }
    created = api.post("/api/v1/activities", json={**body, "limit_total": 5}, headers=headers)
    assert created.status_code == 422
    assert created.json()["error"]["code"] == "activities.bad_config"
    assert [d["field"] for d in created.json()["error"]["details"]] == ["limit_total"]

    draft = create_activity(api, headers, tree.city_a, publish=False, config=vote_config())
    edited = api.patch(
        f"/api/v1/activities/{draft['id']}", json={"limit_per_day": 2}, headers=headers
    )
    assert edited.status_code == 422
    assert edited.json()["error"]["code"] == "activities.bad_config"
    # A lottery with a limit turned into a vote keeps neither: nothing changes.
    lottery = create_activity(api, headers, tree.city_a, publish=False, limit_total=3)
    turned = api.patch(
        f"/api/v1/activities/{lottery['id']}", json={"config": vote_config()}, headers=headers
    )
    assert turned.status_code == 422
    again = api.get(f"/api/v1/activities/{lottery['id']}", headers=headers).json()
    assert (again["kind"], again["limit_total"]) == ("lottery", 3)
    cleared = api.patch(
        f"/api/v1/activities/{lottery['id']}",
        json={"config": vote_config(), "limit_total": None},
        headers=headers,
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["kind"], cleared.json()["limit_total"]) == ("vote", None)
