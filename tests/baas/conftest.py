"""Apps and tables built over HTTP as a developer would build them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.baas.functions.invoke import flush_logs
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.fixtures import Staff, Tree


@pytest.fixture(autouse=True)
def _flushed_logs() -> Iterator[None]:
    # (fresh_state empties the file store before each test, as it does the database.)
    yield
    flush_logs()  # into this test's database, not the next one's


@dataclass(frozen=True)
class AppHandle:
    id: int
    org_id: int
    client_key: str
    server_key: str
    dev: Staff

    @property
    def server(self) -> dict[str, str]:
        return {"X-Gonghui-App-Key": self.server_key}

    @property
    def client(self) -> dict[str, str]:
        return {"X-Gonghui-App-Key": self.client_key}

    def as_user(self, staff_or_headers: Staff | dict[str, str]) -> dict[str, str]:
        headers = (
            staff_or_headers.headers if isinstance(staff_or_headers, Staff) else staff_or_headers
        )
        return {**self.client, **headers}


@pytest.fixture
def developer(tree: Tree) -> Staff:
    return signed_in_user(tree.city_a, Role.DEVELOPER)


@pytest.fixture
def app(api: httpx.Client, tree: Tree, developer: Staff) -> AppHandle:
    resp = api.post(
        "/api/v1/baas/apps",
        json={"org_id": tree.district_a1, "name": "welfare", "settings": {"theme": "red"}},
        headers=developer.headers,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return AppHandle(body["id"], body["org_id"], body["client_key"], body["server_key"], developer)


def make_table(
    api: httpx.Client,
    app: AppHandle,
    name: str,
    fields: list[dict[str, Any]],
    permissions: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/tables",
        json={"name": name, "fields": fields, "permissions": permissions or {}},
        headers=app.dev.headers,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def signed_in_user(org_id: int | None = None, role: Role | None = None) -> Staff:
    """A user signed in through the token service (no password hashing: keeps tests fast),
    as the staff sign-in would (a staff session) when they hold ``role``."""
    from gonghui.accounts.models import SessionKind
    from gonghui.accounts.service import create_user
    from gonghui.accounts.tokens import start_session
    from gonghui.db import unit_of_work
    from gonghui.orgs import service as orgs
    from gonghui.tenancy import SYSTEM

    with unit_of_work() as session:
        user = create_user(session, display_name="user")
        if org_id is not None and role is not None:
            orgs.grant_role(session, actor=SYSTEM, org_id=org_id, user_id=user.id, role=role)
        kind = SessionKind.MEMBER if role is None else SessionKind.STAFF
        pair = start_session(session, user=user, kind=kind)
    return Staff(user.id, f"user{user.id}", {"Authorization": f"Bearer {pair.access_token}"})


def audit_rows(action: str) -> list[tuple[int | None, int | None, str | None, dict[str, Any]]]:
    """(actor user id, org id, subject id, details) of the audit rows of ``action``."""
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [(r.actor_user_id, r.org_id, r.subject_id, r.details or {}) for r in rows]
