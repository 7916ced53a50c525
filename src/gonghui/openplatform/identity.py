"""What a client learns of a member: a subject of its own, and claims by granted scope.

The subject is pairwise (OpenID Connect Core §8.1): an HMAC of the client and the user,
so two clients cannot join their records by it, and the user's internal id never leaves.
A client serves the members of its org's subtree: a member elsewhere (or a user without a
verified membership) cannot grant it anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import pii
from gonghui.accounts.models import User
from gonghui.keys import get_keys
from gonghui.members.models import Membership, MembershipStatus
from gonghui.openplatform import scopes
from gonghui.openplatform.models import Client
from gonghui.orgs.models import Org
from gonghui.tenancy import path_ids, path_within


def pairwise_subject(client: Client, user_id: int) -> str:
    """The member's ``sub`` for ``client``: stable for that client, unlinkable across two."""
    mac = hmac.new(
        get_keys().token_signing_key,
        f"oidc-sub:{client.client_id}:{user_id}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


@dataclass(frozen=True)
class MemberView:
    user: User
    membership: Membership | None
    org: Org | None


def member_view(session: Session, user_id: int) -> MemberView | None:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    row = session.execute(
        select(Membership, Org)
        .join(Org, Org.id == Membership.org_id)
        .where(Membership.user_id == user_id, Membership.status == MembershipStatus.VERIFIED)
    ).first()
    if row is None:
        return MemberView(user, None, None)
    return MemberView(user, row[0], row[1])


def serves(session: Session, client: Client, view: MemberView) -> bool:
    """The client's org is the member's union or one above it."""
    if view.org is None:
        return False
    client_org = session.get(Org, client.org_id)
    return client_org is not None and path_within(view.org.path, client_org.path)


def claims(session: Session, client: Client, view: MemberView, scope: str) -> dict[str, Any]:
    """The member as ``client`` may see them under ``scope`` (userinfo and ``id_token``):
    masked phone, never a name or an ID number."""
    granted = set(scopes.parse(scope))
    out: dict[str, Any] = {"sub": pairwise_subject(client, view.user.id)}
    if "profile" in granted:
        out["nickname"] = view.user.display_name or None
        out["phone_number_masked"] = pii.masked(pii.PiiField.PHONE, view.user.phone_enc)
    if "membership" in granted:
        out["membership"] = _membership(session, view)
    return out


def _membership(session: Session, view: MemberView) -> dict[str, Any]:
    if view.membership is None or view.org is None:
        return {"verified": False}
    ids = path_ids(view.org.path)
    rows = session.execute(select(Org.id, Org.name).where(Org.id.in_(ids)))
    names = {row.id: row.name for row in rows}
    return {
        "verified": True,
        "verified_at": view.membership.verified_at.isoformat(),
        "union": {"code": view.org.code, "name": view.org.name},
        # From the province down to the member's own union.
        "org_chain": [names[i] for i in ids if i in names],
    }
