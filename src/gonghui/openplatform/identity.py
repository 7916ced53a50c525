"""What a client learns of a member: a subject of its own, and claims by granted scope.

The subject is pairwise (OpenID Connect Core §8.1): an HMAC of the client and the user,
so two clients cannot join their records by it, and the user's internal id never leaves.
A client serves the members of its org's subtree: a member elsewhere (or a user without a
verified membership) cannot grant it anything.

Reads go through Core statements on a connection or a session alike, so the token
endpoint (in a unit of work) and the open APIs' hot read (:func:`gonghui.db.read`) build
the same claims the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select
from sqlalchemy.orm import Session

from gonghui import pii
from gonghui.accounts.models import User
from gonghui.keys import get_keys
from gonghui.members.models import Membership, MembershipStatus
from gonghui.openplatform import scopes
from gonghui.orgs.models import Org
from gonghui.tenancy import path_ids, path_within

Db = Connection | Session


def pairwise_subject(client_id: str, user_id: int) -> str:
    """The member's ``sub`` for a client: stable for that client, unlinkable across two."""
    mac = hmac.new(
        get_keys().token_signing_key, f"oidc-sub:{client_id}:{user_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


@dataclass(frozen=True)
class MemberView:
    """A user as a client may come to know them; the union fields are None without a
    verified membership."""

    user_id: int
    display_name: str
    phone_enc: bytes | None
    verified_at: datetime | None
    org_code: str | None
    org_name: str | None
    org_path: str | None

    @property
    def verified(self) -> bool:
        return self.org_path is not None


def member_view(db: Db, user_id: int) -> MemberView | None:
    """The user and their verified membership, in one read; None if disabled or unknown."""
    row = db.execute(
        select(
            User.display_name,
            User.phone_enc,
            User.is_active,
            Membership.verified_at,
            Org.code,
            Org.name,
            Org.path,
        )
        .select_from(User)
        .outerjoin(
            Membership,
            and_(Membership.user_id == User.id, Membership.status == MembershipStatus.VERIFIED),
        )
        .outerjoin(Org, Org.id == Membership.org_id)
        .where(User.id == user_id)
    ).first()
    if row is None or not row.is_active:
        return None
    return MemberView(
        user_id, row.display_name, row.phone_enc, row.verified_at, row.code, row.name, row.path
    )


def serves(client_org_path: str, view: MemberView) -> bool:
    """A client of the org at ``client_org_path`` serves this member: their union is that
    org or one below it."""
    return view.org_path is not None and path_within(view.org_path, client_org_path)


def claims(db: Db, client_id: str, view: MemberView, scope: str) -> dict[str, Any]:
    """The member as a client may see them under ``scope`` (userinfo, ``id_token``, the
    open APIs): a masked phone, never a name or an ID number."""
    granted = set(scopes.parse(scope))
    out: dict[str, Any] = {"sub": pairwise_subject(client_id, view.user_id)}
    if "profile" in granted:
        out["nickname"] = view.display_name or None
        out["phone_number_masked"] = pii.masked(pii.PiiField.PHONE, view.phone_enc)
    if "membership" in granted:
        out["membership"] = _membership(db, view)
    return out


def _membership(db: Db, view: MemberView) -> dict[str, Any]:
    if view.org_path is None or view.verified_at is None:
        return {"verified": False}
    ids = path_ids(view.org_path)
    names = {
        row.id: row.name for row in db.execute(select(Org.id, Org.name).where(Org.id.in_(ids)))
    }
    return {
        "verified": True,
        "verified_at": view.verified_at.isoformat(),
        "union": {"code": view.org_code, "name": view.org_name},
        # From the province down to the member's own union.
        "org_chain": [names[i] for i in ids if i in names],
    }
