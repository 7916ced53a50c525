"""The SDKs against the real server: the open platform's fixtures (a member signed in on
the H5, an org's registered client), a member with a wallet, and the union's activities."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui.db import unit_of_work
from tests.fixtures import Staff, StaffFactory, Tree
from tests.openplatform.conftest import (  # noqa: F401 (fixtures used here)
    Browser,
    BrowserFactory,
    city_developer,
    member_browser,
    register_client,
)

MEMBER_SCOPE = "openid profile membership benefits:read"
CLIENT_SCOPE = f"{MEMBER_SCOPE} activities:read"
TYPESCRIPT = Path(__file__).resolve().parents[2] / "sdk" / "typescript"


def give_points_and_a_voucher(user_id: int) -> None:
    from gonghui.benefits import service as benefits
    from gonghui.members.models import Membership

    with unit_of_work() as session:
        membership_id = session.scalar(select(Membership.id).where(Membership.user_id == user_id))
        assert membership_id is not None
        benefits.add_points(
            session, membership_id=membership_id, activity_id=None, points=30, source="test"
        )
        benefits.issue_vouchers(
            session, members=[membership_id], activity_id=None, name="十元券",
            value_cents=1000, threshold_cents=5000, valid_days=30, source="test",
        )  # fmt: skip


@dataclass(frozen=True)
class UnionActivities:
    """Published in 广州 (the client's org) and below, newest first; and others around."""

    titles: list[str]


@pytest.fixture
def union_activities(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> UnionActivities:
    from tests.activities.conftest import create_activity

    admin = make_staff(tree.province).headers
    create_activity(api, admin, tree.grassroots_a1x, title="天河抽奖")
    create_activity(api, admin, tree.city_a, title="广州答题", starts_in_hours=48)
    create_activity(api, admin, tree.city_a, title="广州投票")
    create_activity(api, admin, tree.city_a, title="草稿", publish=False)
    create_activity(api, admin, tree.city_b, title="深圳抽奖")
    return UnionActivities(["广州投票", "广州答题", "天河抽奖"])


@pytest.fixture
def member(tree: Tree, member_browser: BrowserFactory) -> Browser:  # noqa: F811
    """A verified member of 天河软件园工会 (in 广州) with 30 points and a voucher."""
    browser = member_browser(tree.grassroots_a1x)
    give_points_and_a_voucher(browser.user_id)
    return browser


def register_app(api: httpx.Client, developer: Staff, org_id: int, *, redirect_uri: str) -> Any:
    """A confidential client of ``org_id`` sending members back to ``redirect_uri``."""
    resp = api.post(
        "/api/v1/oauth-clients",
        json={
            "org_id": org_id,
            "name": "你好工会",
            "kind": "confidential",
            "redirect_uris": [redirect_uri],
            "scope": "openid membership activities:read",
        },
        headers=developer.headers,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture(scope="session")
def typescript_build() -> Path:
    """The SDK, its tests and its example compiled into sdk/typescript/dist (node and the
    pinned TypeScript come from scripts/sdk-deps.sh, which `make test` runs first)."""
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    if shutil.which("node") is None or not tsc.exists():
        pytest.fail("node or TypeScript is missing: run scripts/sdk-deps.sh (make test does)")
    for config in ("tsconfig.json", "tsconfig.test.json"):
        built = subprocess.run(
            [str(tsc), "-p", config], cwd=TYPESCRIPT, capture_output=True, text=True, timeout=300
        )
        assert built.returncode == 0, built.stdout + built.stderr
    return TYPESCRIPT / "dist"
