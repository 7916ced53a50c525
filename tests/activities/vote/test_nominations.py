"""Lower unions nominate, the organiser reviews; only approved candidates are votable."""

from __future__ import annotations

import io
from urllib.parse import unquote

import httpx
from PIL import Image
from sqlalchemy import select

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from tests.activities.conftest import MemberFactory
from tests.activities.vote.conftest import (
    MP4,
    People,
    media_app_key,
    nominate,
    upload_file,
    vote,
    vote_activity,
)
from tests.fixtures import Tree


def _audited(activity_id: int) -> list[str]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("vote.%"))
            .order_by(AuditEntry.id)
        )
        return list(rows)


def test_a_district_nominates_and_the_organiser_approves_or_rejects(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    activity = vote_activity(api, tree, people.organiser)
    aid = activity["id"]
    first = nominate(api, aid, people.district, tree.district_a1, "张师傅", category="")
    second = nominate(api, aid, people.district, tree.grassroots_a1x, "李工匠")
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["status"] == "nominated"
    assert first.json()["org_id"] == tree.district_a1

    # The district sees its own nominations, waiting; it cannot review them.
    queue = api.get(
        f"/api/v1/activities/{aid}/nominations",
        params={"status": "nominated"},
        headers=people.district.headers,
    )
    assert [c["name"] for c in queue.json()] == ["张师傅", "李工匠"]
    denied = api.post(
        f"/api/v1/activities/{aid}/nominations/{first.json()['id']}/review",
        json={"decision": "approve"},
        headers=people.district.headers,
    )
    assert denied.status_code == 404

    review = f"/api/v1/activities/{aid}/nominations"
    no_reason = api.post(
        f"{review}/{second.json()['id']}/review",
        json={"decision": "reject"},
        headers=people.organiser.headers,
    )
    assert no_reason.status_code == 422
    rejected = api.post(
        f"{review}/{second.json()['id']}/review",
        json={"decision": "reject", "reason": "材料不全"},
        headers=people.organiser.headers,
    )
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["review_reason"] == "材料不全"
    approved = api.post(
        f"{review}/{first.json()['id']}/review",
        json={"decision": "approve"},
        headers=people.organiser.headers,
    )
    assert approved.json()["status"] == "approved"

    # Members see and vote for the approved candidate only.
    member = make_member(tree.grassroots_a1x)
    listed = api.get(f"/api/v1/activities/{aid}/candidates", headers=member.headers)
    assert [c["name"] for c in listed.json()] == ["张师傅"]
    refused = vote(api, aid, member.headers, second.json()["id"])
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "vote.candidate_not_found"
    assert vote(api, aid, member.headers, first.json()["id"]).status_code == 201

    # A reviewed candidate is no longer the district's to edit.
    edit = api.patch(
        f"{review}/{first.json()['id']}", json={"name": "张三"}, headers=people.district.headers
    )
    assert edit.status_code == 409
    assert _audited(aid) == [
        "vote.candidate.nominate",
        "vote.candidate.nominate",
        "vote.candidate.reject",
        "vote.candidate.approve",
    ]


def test_nominations_stay_within_the_organisers_subtree(
    api: httpx.Client, tree: Tree, people: People
) -> None:
    aid = vote_activity(api, tree, people.organiser)["id"]
    # City B lies outside city A's subtree: the vote does not exist for its staff.
    outside = nominate(api, aid, people.other_city, tree.city_b, "王某")
    assert outside.status_code == 404
    # The district's staff cannot nominate in the name of a union they do not manage.
    not_theirs = nominate(api, aid, people.district, tree.city_a, "赵某")
    assert not_theirs.status_code == 422
    assert not_theirs.json()["error"]["code"] == "vote.not_nominating"
    # A file that is not theirs (here: none at all) is refused.
    no_file = nominate(api, aid, people.district, tree.district_a1, "钱某", photo_file_id=999)
    assert no_file.status_code == 422
    assert no_file.json()["error"]["details"][0]["field"] == "photo_file_id"
    listing = api.get(f"/api/v1/activities/{aid}/nominations", headers=people.organiser.headers)
    assert listing.json() == []


def test_a_category_must_be_one_of_the_votes(api: httpx.Client, tree: Tree, people: People) -> None:
    aid = vote_activity(api, tree, people.organiser, categories=["劳动模范", "大国工匠"])["id"]
    bad = nominate(api, aid, people.district, tree.district_a1, "孙某", category="歌手")
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "vote.bad_category"
    good = nominate(api, aid, people.district, tree.district_a1, "孙某", category="大国工匠")
    assert good.status_code == 201


def test_a_withdrawn_nomination_is_gone_and_a_candidate_with_votes_stays(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser)["id"]
    base = f"/api/v1/activities/{aid}/nominations"
    waiting = nominate(api, aid, people.district, tree.district_a1, "周某").json()["id"]
    assert api.delete(f"{base}/{waiting}", headers=people.district.headers).status_code == 204
    voted = nominate(api, aid, people.district, tree.district_a1, "吴某").json()["id"]
    api.post(
        f"{base}/{voted}/review", json={"decision": "approve"}, headers=people.organiser.headers
    )
    member = make_member(tree.district_a1)
    assert vote(api, aid, member.headers, voted).status_code == 201
    kept = api.delete(f"{base}/{voted}", headers=people.organiser.headers)
    assert kept.status_code == 409
    assert kept.json()["error"]["code"] == "vote.candidate_has_votes"
    names = [c["name"] for c in api.get(base, headers=people.organiser.headers).json()]
    assert names == ["吴某"]


def test_vote_limits_are_checked_when_the_vote_is_defined(
    api: httpx.Client, tree: Tree, people: People
) -> None:
    body = {
        "org_id": tree.city_a,
        "title": "评选",
        "starts_at": "2026-12-10T00:00:00Z",
        "ends_at": "2026-12-20T00:00:00Z",
        "config": {"kind": "vote", "vote": {"votes_per_day": 1, "votes_per_candidate_per_day": 2}},
    }
    resp = api.post("/api/v1/activities", json=body, headers=people.organiser.headers)
    assert resp.status_code == 422
    body["config"]["vote"] = {"votes_per_day": 2}  # type: ignore[index]
    body["limit_total"] = 5
    resp = api.post("/api/v1/activities", json=body, headers=people.organiser.headers)
    assert resp.status_code == 422


def test_members_see_a_candidates_photo_and_video_by_signed_links(
    api: httpx.Client, tree: Tree, people: People, make_member: MemberFactory
) -> None:
    aid = vote_activity(api, tree, people.organiser)["id"]
    key = media_app_key(api, tree.district_a1)
    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(photo, "PNG")
    photo_id = upload_file(api, key, people.district.headers, "王师傅身份证.png", photo.getvalue())
    video_id = upload_file(api, key, people.district.headers, "clip.mp4", MP4)
    # A member's upload to the same app is not the district's to publish.
    member = make_member(tree.grassroots_a1x)
    theirs = upload_file(api, key, member.headers, "mine.png", photo.getvalue())
    refused = nominate(api, aid, people.district, tree.district_a1, "赵某", photo_file_id=theirs)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "photo_file_id"
    # Nor is a video a photo.
    wrong_kind = nominate(
        api, aid, people.district, tree.district_a1, "赵某", photo_file_id=video_id
    )
    assert wrong_kind.status_code == 422

    with_media = nominate(
        api,
        aid,
        people.district,
        tree.district_a1,
        "王师傅",
        photo_file_id=photo_id,
        video_file_id=video_id,
    )
    assert with_media.status_code == 201, with_media.text
    cid = with_media.json()["id"]
    # The district sees its nomination's photo before review.
    assert with_media.json()["photo_url"] is not None
    plain = nominate(api, aid, people.district, tree.district_a1, "李师傅").json()["id"]
    for candidate in (cid, plain):
        api.post(
            f"/api/v1/activities/{aid}/nominations/{candidate}/review",
            json={"decision": "approve"},
            headers=people.organiser.headers,
        ).raise_for_status()

    listed = api.get(f"/api/v1/activities/{aid}/candidates", headers=member.headers).json()
    by_id = {c["id"]: c for c in listed}
    assert by_id[plain]["photo_url"] is None
    assert by_id[plain]["video_url"] is None
    shown = by_id[cid]
    now = clock.now().timestamp()
    assert now + 600 <= shown["media_expires_at"] <= now + 1200
    got = httpx.get(shown["photo_url"], follow_redirects=True, timeout=10)
    assert got.status_code == 200
    assert got.content == photo.getvalue()
    # Saved under the candidate's id, not the name it was uploaded with.
    disposition = unquote(got.headers["content-disposition"])
    assert f"candidate-{cid}-photo.png" in disposition
    assert "身份证" not in disposition
    thumbnail = httpx.get(shown["photo_thumbnail_url"], follow_redirects=True, timeout=10)
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).width < 640
    video = httpx.get(shown["video_url"], follow_redirects=True, timeout=10)
    assert video.status_code == 200
    assert video.content == MP4
    # One candidate reads the same; a link for another file is refused.
    one = api.get(f"/api/v1/activities/{aid}/candidates/{cid}", headers=member.headers).json()
    assert one["photo_url"] == shown["photo_url"]
    forged = shown["photo_url"].replace(f"/files/{photo_id}/", f"/files/{theirs}/")
    assert httpx.get(forged, timeout=10).status_code == 403
