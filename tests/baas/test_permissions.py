"""The permission matrix: who may read, create, update and delete records of a table.

A denied read, update or delete answers exactly like a missing record (404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gonghui import invalidation
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.members.idnumber import check_character
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.baas.conftest import AppHandle, make_table, signed_in_user
from tests.fixtures import Tree

DATA = "/api/v1/baas/data/posts/records"
WHO = ("anonymous", "user", "member", "outside_member", "creator", "developer", "foreign_staff")


def _id_number(serial: int) -> str:
    first17 = f"44010619900101{serial:03d}"
    return first17 + check_character(first17)


@dataclass(frozen=True)
class Cast:
    app: AppHandle
    headers: dict[str, dict[str, str]]
    user_ids: dict[str, int]


@pytest.fixture
def cast(api: httpx.Client, tree: Tree, app: AppHandle) -> Cast:
    people = {
        "user": signed_in_user(),
        "member": signed_in_user(),
        "outside_member": signed_in_user(),
        "creator": signed_in_user(),
        "developer": app.dev,
        "foreign_staff": signed_in_user(tree.city_b, Role.ADMIN),
    }
    with unit_of_work() as session:
        for serial, (who, org) in enumerate(
            (("member", tree.grassroots_a1x), ("outside_member", tree.grassroots_b1)), start=1
        ):
            number = _id_number(serial)
            members.add_roster_entry(
                session, actor=SYSTEM, org_id=org, name=f"会员{serial}", id_number=number
            )
            members.verify(
                session, user_id=people[who].user_id, name=f"会员{serial}", id_number=number
            )
    # Memberships changed after sign-in: drop cached principals.
    invalidation.forget_all()
    headers = {"anonymous": app.client, "server": app.server}
    headers.update({who: app.as_user(staff) for who, staff in people.items()})
    make_table(
        api,
        app,
        "posts",
        [{"name": "text", "type": "string"}],
        {"create": ["users"], "read": [], "update": [], "delete": []},
    )
    resp = api.post(DATA, json={"text": "hello"}, headers=headers["creator"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["created_by"] == people["creator"].user_id
    return Cast(app, headers, {who: s.user_id for who, s in people.items()})


def _set_rules(api: httpx.Client, cast: Cast, rules: dict[str, list[str]]) -> None:
    resp = api.put(
        f"/api/v1/baas/apps/{cast.app.id}/tables/posts/permissions",
        json={"permissions": rules},
        headers=cast.app.dev.headers,
    )
    assert resp.status_code == 200, resp.text


def _text(api: httpx.Client, cast: Cast) -> Any:
    resp = api.get(f"{DATA}/1", headers=cast.headers["server"])
    return resp.json()["text"] if resp.status_code == 200 else None


# rule -> the callers it admits (the server key is always admitted).
MATRIX: dict[str, set[str]] = {
    "public": set(WHO),
    "users": set(WHO) - {"anonymous"},
    "members": {"member"},
    "creator": {"creator"},
    "staff:developer": {"developer"},
    "staff:admin": set(),
    "none": set(),
}


@pytest.mark.parametrize("rule", sorted(MATRIX))
def test_read_update_delete_matrix(api: httpx.Client, cast: Cast, rule: str) -> None:
    grants = [] if rule == "none" else [rule]
    for action in ("read", "update", "delete"):
        _set_rules(api, cast, {"create": ["users"], action: grants})
        for who in (*WHO, "server"):
            allowed = who == "server" or who in MATRIX[rule]
            h = cast.headers[who]
            if action == "read":
                got = api.get(f"{DATA}/1", headers=h)
                listed = api.get(DATA, headers=h).json()["items"]
                assert got.status_code == (200 if allowed else 404), (rule, who, got.text)
                assert len(listed) == (1 if allowed else 0), (rule, who)
                if not allowed:
                    assert got.json()["error"]["code"] == "baas.record_not_found"
            elif action == "update":
                before = _text(api, cast)
                resp = api.patch(f"{DATA}/1", json={"set": {"text": who}}, headers=h)
                assert resp.status_code == (200 if allowed else 404), (rule, who, resp.text)
                assert _text(api, cast) == (who if allowed else before)
            elif not allowed:
                resp = api.delete(f"{DATA}/1", headers=h)
                assert resp.status_code == 404, (rule, who, resp.text)
                assert _text(api, cast) is not None
        if action == "delete" and MATRIX[rule]:
            who = sorted(MATRIX[rule])[0]
            assert api.delete(f"{DATA}/1", headers=cast.headers[who]).status_code == 204
            assert _text(api, cast) is None


def test_unknown_and_denied_records_look_the_same(api: httpx.Client, cast: Cast) -> None:
    denied = api.get(f"{DATA}/1", headers=cast.headers["user"])
    missing = api.get(f"{DATA}/999", headers=cast.headers["user"])
    assert denied.status_code == missing.status_code == 404
    assert denied.json()["error"]["code"] == missing.json()["error"]["code"]


@pytest.mark.parametrize("rule", sorted(MATRIX))
def test_create_matrix(api: httpx.Client, cast: Cast, rule: str) -> None:
    _set_rules(api, cast, {"create": [] if rule == "none" else [rule]})
    for who in (*WHO, "server"):
        # "creator" on create admits any signed-in user (they become the creator).
        admitted = MATRIX["users"] if rule == "creator" else MATRIX[rule]
        allowed = who == "server" or who in admitted
        resp = api.post(DATA, json={"text": f"by {who}"}, headers=cast.headers[who])
        assert resp.status_code == (201 if allowed else 403), (rule, who, resp.text)
        if not allowed:
            assert resp.json()["error"]["code"] == "baas.forbidden"
    texts = api.get(DATA, params={"limit": 100}, headers=cast.headers["server"]).json()["items"]
    expected = sorted(
        f"by {w}"
        for w in (*WHO, "server")
        if w == "server" or w in (MATRIX["users"] if rule == "creator" else MATRIX[rule])
    )
    assert sorted(t["text"] for t in texts if t["text"] != "hello") == expected


def test_a_record_acl_narrows_the_table_rule(api: httpx.Client, cast: Cast) -> None:
    _set_rules(api, cast, {"create": ["users"], "read": ["users"], "update": ["users"]})
    resp = api.put(
        f"{DATA}/1/acl", json={"read": [cast.user_ids["member"]]}, headers=cast.headers["creator"]
    )
    assert resp.status_code == 200, resp.text
    assert api.get(f"{DATA}/1", headers=cast.headers["member"]).status_code == 200
    for who in ("user", "creator", "developer"):
        assert api.get(f"{DATA}/1", headers=cast.headers[who]).status_code == 404, who
    assert api.get(f"{DATA}/1", headers=cast.headers["server"]).status_code == 200
    # The ACL cannot widen: a caller the table rule refuses stays refused.
    assert api.get(f"{DATA}/1", headers=cast.headers["anonymous"]).status_code == 404
    # Lists apply the same narrowing.
    listed = api.get(DATA, params={"where": '{"text": "hello"}'}, headers=cast.headers["user"])
    assert listed.json()["items"] == []


def test_references_do_not_reveal_records_the_caller_may_not_read(
    api: httpx.Client, cast: Cast
) -> None:
    app = cast.app
    make_table(
        api,
        app,
        "secrets",
        [{"name": "code", "type": "string"}],
        {"read": ["staff:developer"]},
    )
    make_table(
        api,
        app,
        "notes",
        [{"name": "secret", "type": "reference", "ref": "secrets"}],
        {"read": ["users"]},
    )
    sid = api.post(
        "/api/v1/baas/data/secrets/records", json={"code": "s3cr3t"}, headers=app.server
    ).json()["id"]
    api.post("/api/v1/baas/data/notes/records", json={"secret": sid}, headers=app.server)
    url = "/api/v1/baas/data/notes/records"
    probe = {"where": '{"secret.code": {"startswith": "s"}}'}
    user = cast.headers["user"]
    assert (
        api.get(url, params={"expand": "secret"}, headers=user).json()["items"][0]["secret"] is None
    )
    assert api.get(url, params=probe, headers=user).json()["items"] == []
    developer = cast.headers["developer"]
    expanded = api.get(url, params={"expand": "secret"}, headers=developer).json()["items"]
    assert expanded[0]["secret"]["code"] == "s3cr3t"
    assert len(api.get(url, params=probe, headers=developer).json()["items"]) == 1
