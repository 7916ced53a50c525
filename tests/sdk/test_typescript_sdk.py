"""The TypeScript SDK (sdk/typescript) against the real server: compiled with ``tsc``
(strict), its own tests (``node --test``) drive sign-in, renewal, revocation, paging and
refusals with fetch. This side registers the clients, signs the member in on the H5 (the
cookies it hands over) and publishes the activities."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.openplatform.conftest import REDIRECT_URI, Browser, ClientFactory
from tests.sdk.conftest import CLIENT_SCOPE, MEMBER_SCOPE, UnionActivities


def cookie_header(browser: Browser) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies.jar)


def test_the_typescript_sdk_signs_in_renews_pages_and_refuses_against_the_server(
    server: str,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    register_client: ClientFactory,
    member: Browser,
    union_activities: UnionActivities,
    typescript_build: Path,
) -> None:
    from tests.news.helpers import publish

    editor = make_staff(tree.province, Role.OPERATOR)
    reviewer = make_staff(tree.province, Role.OPERATOR)
    # Newest first, as the back end reads them; another subtree's is never read.
    news_ids = [publish(api, editor, reviewer, org) for org in (tree.city_a, tree.grassroots_a1x)]
    publish(api, editor, reviewer, tree.city_b)
    public = register_client(kind="public", scope=MEMBER_SCOPE)
    back_end = register_client(scope=f"{CLIENT_SCOPE} news:read")
    run = subprocess.run(
        ["node", "--test", str(typescript_build / "test" / "sdk.test.js")],
        env={
            **os.environ,
            "GONGHUI_SERVER": server,
            "GONGHUI_REDIRECT_URI": REDIRECT_URI,
            "GONGHUI_PUBLIC_CLIENT_ID": public.client_id,
            "GONGHUI_CLIENT_ID": back_end.client_id,
            "GONGHUI_CLIENT_SECRET": back_end.client_secret or "",
            "GONGHUI_MEMBER_COOKIE": cookie_header(member),
            "GONGHUI_MEMBER_SCOPE": MEMBER_SCOPE,
            "GONGHUI_ACTIVITY_TITLES": json.dumps(union_activities.titles),
            "GONGHUI_NEWS_IDS": json.dumps(news_ids[::-1]),
        },
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    counts = dict(re.findall(r"^# (tests|pass|fail|skipped|todo) (\d+)$", report, re.M))
    assert counts == {"tests": "7", "pass": "7", "fail": "0", "skipped": "0", "todo": "0"}, report
