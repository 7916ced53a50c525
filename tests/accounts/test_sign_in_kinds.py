"""Staff rights come only with the staff sign-in (password, then TOTP where it is on): a
staff member who signs in by phone code or WeChat is a member on that sign-in, on the API
and in the console alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy import func, select

from gonghui import clock
from gonghui.accounts import identities
from gonghui.accounts.access import issue_access_token
from gonghui.accounts.models import AuthSession
from gonghui.accounts.service import create_staff_user
from gonghui.db import unit_of_work
from gonghui.integrations.sms import dev_outbox
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, Role
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM
from tests.accounts.helpers import bearer, last_dev_code, send_code, sms_login
from tests.fixtures import PASSWORD, Tree

PHONE = "13912345678"
SIM = "/_sim/wechat/_control"


@dataclass(frozen=True)
class Operator:
    user_id: int
    username: str


def operator_with_phone(
    tree: Tree, *, username: str = "ops", platform_admin: bool = False
) -> Operator:
    """A city admin (password account) whose phone number is linked to their account."""
    with unit_of_work() as session:
        user = create_staff_user(
            session, username=username, password=PASSWORD, is_platform_admin=platform_admin
        )
        orgs.grant_role(session, actor=SYSTEM, org_id=tree.city_a, user_id=user.id, role=Role.ADMIN)
        identities.link_phone(session, user=user, phone=PHONE)
        return Operator(user.id, username)


def password_login(api: httpx.Client, username: str) -> dict[str, Any]:
    resp = api.post("/api/v1/auth/password", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def phone_code_login(api: httpx.Client) -> dict[str, Any]:
    assert send_code(api, PHONE).status_code == 200
    resp = sms_login(api, PHONE, last_dev_code(api, PHONE), channel="console")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def create_child_org(api: httpx.Client, tree: Tree, headers: dict[str, str]) -> httpx.Response:
    body = {"code": "GZ-NEW", "name": "新工会", "level": "district", "parent_id": tree.city_a}
    return api.post("/api/v1/orgs", json=body, headers=headers)


def org_count() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Org)) or 0)


def assert_not_staff(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json() == {
        "error": {"code": "accounts.not_staff", "message": "staff only", "details": None}
    }


def test_a_staff_members_phone_code_sign_in_gets_no_staff_rights(
    api: httpx.Client, tree: Tree
) -> None:
    operator = operator_with_phone(tree)
    orgs_before = org_count()

    tokens = phone_code_login(api)

    assert tokens["user_id"] == operator.user_id  # the same person...
    assert_not_staff(create_child_org(api, tree, bearer(tokens)))  # ...without staff rights
    assert org_count() == orgs_before
    assert_not_staff(api.get("/api/v1/orgs", headers=bearer(tokens)))
    me = api.get("/api/v1/auth/me", headers=bearer(tokens)).json()
    assert (me["sign_in"], me["roles"], me["is_platform_admin"]) == ("member", [], False)
    # A refresh keeps what the sign-in was.
    renewed = api.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    assert_not_staff(create_child_org(api, tree, bearer(renewed.json())))
    assert org_count() == orgs_before

    # The same person's password sign-in is a staff sign-in, and stays one when refreshed.
    staff = password_login(api, operator.username)
    assert create_child_org(api, tree, bearer(staff)).status_code == 201
    assert org_count() == orgs_before + 1
    renewed = api.post("/api/v1/auth/refresh", json={"refresh_token": staff["refresh_token"]})
    listed = api.get("/api/v1/orgs", headers=bearer(renewed.json()))
    assert listed.status_code == 200
    me = api.get("/api/v1/auth/me", headers=bearer(staff)).json()
    assert (me["sign_in"], [r["role"] for r in me["roles"]]) == ("staff", ["admin"])


def test_a_platform_admins_phone_code_sign_in_is_not_an_admin_sign_in(
    api: httpx.Client, tree: Tree
) -> None:
    operator_with_phone(tree, platform_admin=True)

    tokens = phone_code_login(api)

    assert_not_staff(api.get("/api/v1/audit", headers=bearer(tokens)))
    me = api.get("/api/v1/auth/me", headers=bearer(tokens)).json()
    assert (me["sign_in"], me["is_platform_admin"]) == ("member", False)


def test_a_staff_members_wechat_sign_in_gets_no_staff_rights(api: httpx.Client, tree: Tree) -> None:
    operator = operator_with_phone(tree)
    appid = get_settings().wechat_mp_appid
    login = api.post(f"{SIM}/login-code", json={"appid": appid, "person": "ops"}).json()["code"]
    phone = api.post(f"{SIM}/phone-code", json={"appid": appid, "phone": PHONE}).json()["code"]
    orgs_before = org_count()

    resp = api.post("/api/v1/auth/wechat/mini", json={"code": login, "phone_code": phone})

    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == operator.user_id
    assert_not_staff(create_child_org(api, tree, bearer(resp.json())))
    assert org_count() == orgs_before
    # Signed in once more through the same WeChat identity: still a member sign-in.
    login = api.post(f"{SIM}/login-code", json={"appid": appid, "person": "ops"}).json()["code"]
    again = api.post("/api/v1/auth/wechat/mini", json={"code": login})
    assert again.json()["user_id"] == operator.user_id
    assert_not_staff(api.get("/api/v1/orgs", headers=bearer(again.json())))


def test_with_two_step_sign_in_on_only_password_and_code_reach_the_staff_api(
    api: httpx.Client, tree: Tree
) -> None:
    operator = operator_with_phone(tree)
    staff = bearer(password_login(api, operator.username))
    secret = api.post("/api/v1/auth/totp/enrol", headers=staff).json()["secret"]
    code = pyotp.TOTP(secret).at(clock.now())
    assert api.post("/api/v1/auth/totp/confirm", json={"code": code}, headers=staff).is_success
    orgs_before = org_count()

    # The phone code skips neither the password nor the second step.
    assert_not_staff(create_child_org(api, tree, bearer(phone_code_login(api))))
    assert org_count() == orgs_before

    challenge = password_login(api, operator.username)
    assert challenge["totp_required"] is True
    clock.advance(timedelta(seconds=30))  # the confirming code's step is spent
    code = pyotp.TOTP(secret).at(clock.now())
    done = api.post(
        "/api/v1/auth/totp/login", json={"challenge": challenge["challenge"], "code": code}
    )
    assert done.status_code == 200, done.text
    assert create_child_org(api, tree, bearer(done.json())).status_code == 201
    assert org_count() == orgs_before + 1


def test_a_staff_members_h5_cookie_does_not_open_the_console(api: httpx.Client, tree: Tree) -> None:
    operator_with_phone(tree)
    sent = api.post("/h5/login/code", data={"phone": PHONE})
    assert sent.status_code == 200
    code = dev_outbox(PHONE)[-1]["code"]
    assert code in sent.text  # a developer's loopback server shows the code
    signed_in = api.post("/h5/login", data={"phone": PHONE, "code": code})
    assert signed_in.status_code == 303
    assert set(api.cookies) == {"gh_at", "gh_rt"}  # the client keeps the sign-in cookies
    assert api.get("/h5/verify").status_code == 200  # signed in on the H5 as before

    console = api.get("/console/")

    assert console.status_code == 303
    assert console.headers["location"] == "/console/login?next=%2Fconsole%2F"


def test_a_token_issued_before_sessions_had_kinds_is_read_afresh(
    api: httpx.Client, tree: Tree
) -> None:
    """Tokens minted by the previous version carry grants without saying what sign-in they
    came from: they are not trusted for them, and a session from then is a member one."""
    operator = operator_with_phone(tree)
    tokens = phone_code_login(api)
    with unit_of_work(read_only=True) as session:
        path = session.get_one(Org, tree.city_a).path
        sid = session.scalar(select(AuthSession.id).where(AuthSession.user_id == operator.user_id))
        assert sid is not None
    old = issue_access_token(
        user_id=operator.user_id,
        session_id=sid,
        principal={"adm": True, "grt": [[tree.city_a, path, "admin"]]},
    )
    orgs_before = org_count()

    assert_not_staff(create_child_org(api, tree, {"Authorization": f"Bearer {old}"}))

    assert org_count() == orgs_before
    assert tokens["user_id"] == operator.user_id
