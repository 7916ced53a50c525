"""What members granted clients: remembered so the screen is not shown again for the same
scopes, listed for the member, and withdrawn by them (every token of that app for that
member revoked with it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import NotFound
from gonghui.openplatform import resource, scopes
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import Client, Consent, Token
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor


def remembered(session: Session, *, user_id: int, client: Client, scope: str) -> bool:
    """Has the member already granted ``client`` every scope asked?"""
    granted = session.scalar(
        select(Consent.scope).where(Consent.user_id == user_id, Consent.client_pk == client.id)
    )
    return granted is not None and set(scopes.parse(scope)) <= set(scopes.parse(granted))


def remember(session: Session, *, user_id: int, client: Client, scope: str) -> None:
    row = session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_pk == client.id)
    )
    if row is None:
        session.add(Consent(user_id=user_id, client_pk=client.id, scope=scope))
    else:
        row.scope = " ".join(scopes.parse(f"{row.scope} {scope}"))
        row.granted_at = now()
    session.flush()


@dataclass(frozen=True)
class GrantedApp:
    client_pk: int
    name: str
    org_name: str
    scope: list[str]
    granted_at: datetime


def granted_apps(session: Session, *, user_id: int) -> list[GrantedApp]:
    """The apps the member granted something, newest grant first."""
    rows = session.execute(
        select(Client.id, Client.name, Org.name, Consent.scope, Consent.granted_at)
        .join(Client, Client.id == Consent.client_pk)
        .join(Org, Org.id == Client.org_id)
        .where(Consent.user_id == user_id)
        .order_by(Consent.granted_at.desc(), Consent.id.desc())
    )
    return [
        GrantedApp(pk, name, org_name, scopes.parse(scope), at)
        for pk, name, org_name, scope, at in rows
    ]


def withdraw(session: Session, *, actor: Actor, client_pk: int) -> None:
    """The member withdraws what they granted ``client_pk``: the app asks again next time,
    and every token it holds for them stops working at the commit."""
    assert actor.user_id is not None
    consent = session.scalar(
        select(Consent).where(Consent.user_id == actor.user_id, Consent.client_pk == client_pk)
    )
    if consent is None:
        raise NotFound(OpenPlatformError.CLIENT_NOT_FOUND, "no such app among your grants")
    session.delete(consent)
    session.execute(
        update(Token)
        .where(
            Token.user_id == actor.user_id,
            Token.client_pk == client_pk,
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )
    resource.tokens_changed(session, user_id=actor.user_id)
    audit.record(
        session,
        actor=actor,
        action="openplatform.consent.withdraw",
        subject_type="oauth_client",
        subject_id=client_pk,
    )
