"""Information release: an editor writes, a second staff member approves, members of the
orgs it is shown to read it (each counted once); never the author's own approval, never
another subtree's staff, never a member through the staff routes."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.news.markup import sanitise
from gonghui.news.models import NewsItem, NewsRead, NewsStatus
from gonghui.orgs.models import Role
from tests.activities.conftest import create_member, staff_headers
from tests.fixtures import StaffFactory, Tree, proof_png
from tests.news.helpers import BODY, publish, write


def feed(api: httpx.Client, headers: dict[str, str]) -> list[int]:
    resp = api.get("/api/v1/me/news", headers=headers)
    assert resp.status_code == 200, resp.text
    return [n["id"] for n in resp.json()]


def audits(item_id: int) -> list[str]:
    with unit_of_work() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.subject_type == "news", AuditEntry.subject_id == str(item_id))
                .order_by(AuditEntry.id)
            )
        )


def test_the_author_never_approves_their_own_item_and_a_second_staff_member_does(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    member = create_member(tree.district_a1)
    item = write(api, editor, tree.city_a)
    assert item["status"] == "draft"
    api.post(f"/api/v1/news/{item['id']}/submit", headers=editor.headers)

    refused = api.post(
        f"/api/v1/news/{item['id']}/review", json={"approve": True}, headers=editor.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "news.self_review"
    assert api.get(f"/api/v1/news/{item['id']}", headers=editor.headers).json()["status"] == (
        "pending"
    )
    assert feed(api, member.headers) == []

    approved = api.post(
        f"/api/v1/news/{item['id']}/review",
        json={"approve": True, "note": "同意"},
        headers=reviewer.headers,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published"
    assert approved.json()["reviewer_id"] == reviewer.user_id
    assert feed(api, member.headers) == [item["id"]]

    withdrawn = api.post(f"/api/v1/news/{item['id']}/withdraw", headers=editor.headers)
    assert withdrawn.json()["status"] == "withdrawn"
    assert feed(api, member.headers) == []
    assert audits(item["id"]) == ["news.create", "news.submit", "news.approve", "news.withdraw"]


def test_a_rejection_needs_a_note_and_sends_the_item_back(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.ADMIN)
    item = write(api, editor, tree.city_a)
    api.post(f"/api/v1/news/{item['id']}/submit", headers=editor.headers)
    url = f"/api/v1/news/{item['id']}/review"
    bare = api.post(url, json={"approve": False}, headers=reviewer.headers)
    assert bare.status_code == 422
    assert bare.json()["error"]["code"] == "news.note_required"
    rejected = api.post(url, json={"approve": False, "note": "标题有误"}, headers=reviewer.headers)
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["review_note"] == "标题有误"
    edited = api.put(
        f"/api/v1/news/{item['id']}",
        json={"title": "运动会通知（更正）", "body_html": BODY},
        headers=editor.headers,
    )
    assert edited.json()["status"] == "draft"


def test_the_sanitiser_strips_scripts_handlers_and_javascript_urls(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    uploaded = api.post(
        "/api/v1/news/images",
        files={"file": ("photo.png", proof_png(), "image/png")},
        headers=editor.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    ours = uploaded.json()["url"]
    dirty = (
        f'<p onclick="steal()">开幕<script>alert(1)</script></p><img src="{ours}" alt="现场">'
        '<img src="https://evil.example/x.png" onerror="alert(1)">'
        '<a href="javascript:alert(1)">点我</a><a href="https://www.acftu.org">总工会</a>'
        '<style>body{}</style><iframe src="https://evil.example"></iframe>'
    )
    item = write(api, editor, tree.city_a, body_html=dirty)
    assert item["body_html"] == (
        f'<p>开幕</p><img src="{ours}" alt="现场"><img>'
        '<a rel="noopener noreferrer nofollow">点我</a>'
        '<a href="https://www.acftu.org" rel="noopener noreferrer nofollow">总工会</a>'
    )
    image = api.get(ours, follow_redirects=True)  # a bucket answers with its signed URL
    assert image.status_code == 200
    assert image.content == proof_png()
    assert sanitise('<img src="/api/v1/news/images/../../x.png">') == "<img>"
    assert sanitise("<p>a</p><!-- x --><svg onload=alert(1)></svg>") == "<p>a</p>"


def test_a_scheduled_item_is_invisible_before_its_time(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    member = create_member(tree.city_a)
    at = clock.now() + timedelta(hours=2)
    item_id = publish(api, editor, reviewer, tree.city_a, publish_at=at.isoformat())
    assert feed(api, member.headers) == []
    assert api.get(f"/api/v1/me/news/{item_id}", headers=member.headers).status_code == 404

    clock.advance(timedelta(hours=2, seconds=1))
    assert feed(api, member.headers) == [item_id]
    assert api.get(f"/api/v1/me/news/{item_id}", headers=member.headers).status_code == 200
    staff = api.get(f"/api/v1/news/{item_id}", headers=staff_headers(editor)).json()
    assert staff["publish_at"].startswith(at.isoformat()[:19])


def test_an_item_for_chosen_orgs_is_shown_to_their_members_only(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    in_chosen = create_member(tree.grassroots_a1x)  # below the chosen district
    at_city = create_member(tree.city_a)
    elsewhere = create_member(tree.city_b)
    refused = api.post(
        "/api/v1/news",
        json={
            "org_id": tree.city_a,
            "title": "x",
            "body_html": BODY,
            "visibility": "orgs",
            "audience_org_ids": [tree.district_a1, tree.city_b],
        },
        headers=editor.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "news.audience_outside"

    item_id = publish(
        api,
        editor,
        reviewer,
        tree.city_a,
        visibility="orgs",
        audience_org_ids=[tree.district_a1],
    )
    assert feed(api, in_chosen.headers) == [item_id]
    assert feed(api, at_city.headers) == []
    assert feed(api, elsewhere.headers) == []
    assert api.get(f"/api/v1/me/news/{item_id}", headers=at_city.headers).status_code == 404


def test_each_member_is_counted_once_however_often_they_read(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    first, second = create_member(tree.city_a), create_member(tree.district_a1)
    item_id = publish(api, editor, reviewer, tree.city_a)
    for member in (first, first, first, second):
        read = api.get(f"/api/v1/me/news/{item_id}", headers=member.headers)
        assert read.status_code == 200, read.text
        assert read.json()["body_html"] == BODY
    assert api.get(f"/api/v1/news/{item_id}", headers=editor.headers).json()["read_count"] == 2
    with unit_of_work() as session:
        rows = session.scalar(select(func.count()).select_from(NewsRead))
    assert rows == 2


def test_staff_of_another_union_are_refused_and_change_nothing(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    stranger = make_staff(tree.city_b, Role.ADMIN)
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    item = write(api, editor, tree.city_a)
    api.post(f"/api/v1/news/{item['id']}/submit", headers=editor.headers)
    for who in (stranger, auditor):
        for method, path, body in (
            ("GET", "", None),
            ("POST", "/review", {"approve": True}),
            ("POST", "/withdraw", None),
            ("DELETE", "", None),
        ):
            resp = api.request(
                method, f"/api/v1/news/{item['id']}{path}", json=body, headers=who.headers
            )
            assert resp.status_code == 404, (who.username, method, path)
        assert api.get("/api/v1/news", headers=who.headers).json() == []
        create = api.post(
            "/api/v1/news",
            json={"org_id": tree.city_a, "title": "x", "body_html": BODY},
            headers=who.headers,
        )
        assert create.status_code == 404
    with unit_of_work() as session:
        stored = session.get(NewsItem, item["id"])
        assert stored is not None
        assert stored.status == NewsStatus.PENDING
        assert session.scalar(select(func.count()).select_from(NewsItem)) == 1


def test_a_member_sign_in_cannot_reach_the_staff_routes(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    member = create_member(tree.city_a)
    item = write(api, editor, tree.city_a)
    for method, path in (
        ("GET", "/api/v1/news"),
        ("GET", f"/api/v1/news/{item['id']}"),
        ("POST", f"/api/v1/news/{item['id']}/submit"),
        ("GET", "/api/v1/news-reviews"),
    ):
        resp = api.request(method, path, headers=member.headers)
        assert resp.status_code == 403, path
        assert resp.json()["error"]["code"] == "accounts.not_staff"
    created = api.post(
        "/api/v1/news",
        json={"org_id": tree.city_a, "title": "x", "body_html": BODY},
        headers=member.headers,
    )
    assert created.status_code == 403
    image = api.post(
        "/api/v1/news/images",
        files={"file": ("p.png", proof_png(), "image/png")},
        headers=member.headers,
    )
    assert image.status_code == 403


def test_attachments_are_listed_and_downloaded_by_readers_only(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    reader, stranger = create_member(tree.city_a), create_member(tree.city_b)
    item = write(api, editor, tree.city_a)
    bad = api.post(
        f"/api/v1/news/{item['id']}/attachments",
        files={"file": ("run.exe", b"MZ", "application/octet-stream")},
        headers=editor.headers,
    )
    assert bad.status_code == 422
    added = api.post(
        f"/api/v1/news/{item['id']}/attachments",
        files={"file": ("报名表.pdf", b"%PDF-1.4 test", "text/html")},
        headers=editor.headers,
    )
    assert added.status_code == 201, added.text
    attachment = added.json()
    assert attachment["content_type"] == "application/pdf"
    api.post(f"/api/v1/news/{item['id']}/submit", headers=editor.headers)
    api.post(f"/api/v1/news/{item['id']}/review", json={"approve": True}, headers=reviewer.headers)
    url = f"/api/v1/me/news/{item['id']}/attachments/{attachment['id']}"
    got = api.get(url, headers=reader.headers, follow_redirects=True)
    assert got.status_code == 200
    assert got.content == b"%PDF-1.4 test"
    assert api.get(url, headers=stranger.headers).status_code == 404
    article = api.get(f"/api/v1/me/news/{item['id']}", headers=reader.headers).json()
    assert [a["filename"] for a in article["attachments"]] == ["报名表.pdf"]
