"""``news:read``: a union's app reads the published news and notices of its org and the
unions below it, a page at a time; never drafts, withdrawn or scheduled items, never
another subtree's, and never without the scope."""

from __future__ import annotations

from datetime import timedelta

import httpx

from gonghui import clock
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.news.helpers import publish, write
from tests.openplatform.conftest import ClientFactory, bearer, client_token


def test_an_app_reads_its_subtrees_published_news_page_by_page(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    register_client: ClientFactory,
) -> None:  # fmt: skip
    editor = make_staff(tree.province, Role.OPERATOR)
    reviewer = make_staff(tree.province, Role.OPERATOR)
    ours = [publish(api, editor, reviewer, org) for org in (tree.city_a, tree.district_a1)]
    ours.append(publish(api, editor, reviewer, tree.grassroots_a1x, kind="notice"))
    publish(api, editor, reviewer, tree.city_b)  # another subtree
    publish(api, editor, reviewer, tree.province)  # above the app's org
    write(api, editor, tree.city_a)  # a draft
    later = clock.now() + timedelta(days=1)
    publish(api, editor, reviewer, tree.city_a, publish_at=later.isoformat())
    withdrawn = publish(api, editor, reviewer, tree.city_a)
    api.post(f"/api/v1/news/{withdrawn}/withdraw", headers=editor.headers)

    app = register_client(scope="openid news:read")
    headers = bearer(client_token(server, app, "news:read"))
    first = httpx.get(f"{server}/open/v1/news", params={"limit": 2}, headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [n["id"] for n in page["items"]] == [ours[2], ours[1]]
    assert page["items"][0]["kind"] == "notice"
    assert page["items"][0]["org_name"] == "天河软件园工会"
    rest = httpx.get(
        f"{server}/open/v1/news", params={"cursor": page["next_cursor"]}, headers=headers
    ).json()
    assert [n["id"] for n in rest["items"]] == [ours[0]]
    assert rest["next_cursor"] is None
    one = httpx.get(f"{server}/open/v1/news/{ours[0]}", headers=headers)
    assert one.status_code == 200
    assert one.json()["body_html"] == "<p>全市职工运动会将于下月举行。</p>"
    for hidden in (withdrawn, ours[0] + 100):
        gone = httpx.get(f"{server}/open/v1/news/{hidden}", headers=headers)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "news.not_found"
    bad = httpx.get(f"{server}/open/v1/news", params={"cursor": "x1"}, headers=headers)
    assert bad.status_code == 422


def test_a_token_without_news_read_is_refused(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    register_client: ClientFactory,
) -> None:  # fmt: skip
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)
    item = publish(api, editor, reviewer, tree.city_a)
    app = register_client(scope="openid activities:read")
    headers = bearer(client_token(server, app, "activities:read"))
    for path in ("/open/v1/news", f"/open/v1/news/{item}"):
        refused = httpx.get(f"{server}{path}", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "openplatform.insufficient_scope"
    assert client_token(server, app, "news:read").json()["error"] == "invalid_scope"
    assert httpx.get(f"{server}/open/v1/news").status_code == 401
    staff = httpx.get(f"{server}/open/v1/news", headers=editor.headers)
    assert staff.status_code == 401
