"""Each union its own WeChat apps: registered by the union's developers (the secret sealed,
never read back), sign-ins name the app they came through, and the same person stays one
account across every union's apps through their unionid."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from gonghui.accounts.models import Identity, OrgWeChatApp
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.accounts.helpers import SIM, login_code, mini_login
from tests.fixtures import StaffFactory, Tree

CITY_A_MINI = "wx00000000000a0001"
CITY_B_OFFICIAL = "wx00000000000b0002"
SECRET_A = "a" * 24 + "SecretA1"
SECRET_B = "b" * 24 + "SecretB2"


def _register(
    api: httpx.Client, staff: Any, org_id: int, kind: str, appid: str, secret: str
) -> httpx.Response:
    return api.post(
        "/api/v1/wechat-apps",
        json={"org_id": org_id, "kind": kind, "appid": appid, "secret": secret, "name": "职工之家"},
        headers=staff.headers,
    )


def _with_wechat(api: httpx.Client, appid: str, secret: str) -> None:
    """The union registered the same app with WeChat (the simulator's side of it)."""
    assert api.post(f"{SIM}/apps", json={"appid": appid, "secret": secret}).status_code == 200


def test_each_union_registers_its_own_apps_and_a_person_stays_one_account(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev_a = make_staff(tree.city_a, Role.DEVELOPER)
    dev_b = make_staff(tree.city_b, Role.DEVELOPER)
    made = _register(api, dev_a, tree.city_a, "mini", CITY_A_MINI, SECRET_A)
    assert made.status_code == 201, made.text
    assert "secret" not in made.json()
    assert made.json()["enabled"] is True
    _register(api, dev_b, tree.city_b, "official", CITY_B_OFFICIAL, SECRET_B).raise_for_status()
    _with_wechat(api, CITY_A_MINI, SECRET_A)
    _with_wechat(api, CITY_B_OFFICIAL, SECRET_B)
    # Each developer lists only their own union's apps.
    assert [a["appid"] for a in api.get("/api/v1/wechat-apps", headers=dev_a.headers).json()] == [
        CITY_A_MINI
    ]
    with unit_of_work(read_only=True) as session:
        row = session.scalar(select(OrgWeChatApp).where(OrgWeChatApp.appid == CITY_A_MINI))
        assert row is not None
        assert SECRET_A.encode() not in row.secret_enc  # sealed at rest

    # The same person through city A's mini program, city B's official account and the
    # deployment's mini program: one account, an identity per app.
    through_a = api.post(
        "/api/v1/auth/wechat/mini",
        json={"code": login_code(api, CITY_A_MINI, "zhou"), "appid": CITY_A_MINI},
    )
    assert through_a.status_code == 200, through_a.text
    through_b = api.post(
        "/api/v1/auth/wechat/official",
        json={
            "code": login_code(api, CITY_B_OFFICIAL, "zhou", nickname="小周"),
            "appid": CITY_B_OFFICIAL,
        },
    )
    assert through_b.status_code == 200, through_b.text
    deployment = mini_login(api, "zhou")
    user_id = through_a.json()["user_id"]
    assert through_b.json()["user_id"] == user_id
    assert deployment.json()["user_id"] == user_id
    with unit_of_work(read_only=True) as session:
        apps = set(session.scalars(select(Identity.app_id).where(Identity.user_id == user_id)))
    assert {CITY_A_MINI, CITY_B_OFFICIAL, get_settings().wechat_mp_appid} <= apps
    with unit_of_work(read_only=True) as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("accounts.wechat_app.%"))
            )
        )
    assert actions == ["accounts.wechat_app.register", "accounts.wechat_app.register"]


def test_a_sign_in_names_an_app_it_may_use(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev_a = make_staff(tree.city_a, Role.DEVELOPER)
    app = _register(api, dev_a, tree.city_a, "mini", CITY_A_MINI, SECRET_A).json()
    _with_wechat(api, CITY_A_MINI, SECRET_A)

    def mini(appid: str) -> httpx.Response:
        code = login_code(api, appid, "qian")
        return api.post("/api/v1/auth/wechat/mini", json={"code": code, "appid": appid})

    # An appid no union registered, or registered for another kind of app, is refused
    # before WeChat is asked.
    unknown = mini("wx0000000000000bad")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "accounts.wechat_app_unknown"
    as_official = api.post(
        "/api/v1/auth/wechat/official",
        json={"code": login_code(api, CITY_A_MINI, "qian"), "appid": CITY_A_MINI},
    )
    assert as_official.status_code == 404
    assert mini(CITY_A_MINI).status_code == 200
    # Disabled: sign-ins through it stop at once; enabled again, they work.
    off = api.put(
        f"/api/v1/wechat-apps/{app['id']}/state", json={"enabled": False}, headers=dev_a.headers
    )
    assert off.json()["enabled"] is False
    assert mini(CITY_A_MINI).status_code == 404
    api.put(
        f"/api/v1/wechat-apps/{app['id']}/state", json={"enabled": True}, headers=dev_a.headers
    ).raise_for_status()
    assert mini(CITY_A_MINI).status_code == 200


def test_registration_is_checked_and_kept_within_the_unions_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev_a = make_staff(tree.city_a, Role.DEVELOPER)
    dev_b = make_staff(tree.city_b, Role.DEVELOPER)
    bad = _register(api, dev_a, tree.city_a, "mini", "wx_not_an_appid", SECRET_A)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["field"] == "appid"
    short = _register(api, dev_a, tree.city_a, "mini", CITY_A_MINI, "short")
    assert short.status_code == 422
    assert short.json()["error"]["details"]["field"] == "secret"
    deployments = _register(
        api, dev_a, tree.city_a, "mini", get_settings().wechat_mp_appid, SECRET_A
    )
    assert deployments.status_code == 422  # the simulator's ids are not of WeChat's form
    # Another city's developer cannot register for city A, nor see or disable its app.
    assert _register(api, dev_b, tree.city_a, "mini", CITY_A_MINI, SECRET_A).status_code == 404
    app = _register(api, dev_a, tree.city_a, "mini", CITY_A_MINI, SECRET_A).json()
    again = _register(api, dev_a, tree.district_a1, "mini", CITY_A_MINI, SECRET_A)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "accounts.wechat_app_taken"
    assert api.get("/api/v1/wechat-apps", headers=dev_b.headers).json() == []
    theirs = api.put(
        f"/api/v1/wechat-apps/{app['id']}/state", json={"enabled": False}, headers=dev_b.headers
    )
    assert theirs.status_code == 404
