"""Staff consent: the scopes with which a client acts for its org (its members' roster,
unmasked values, its activities) are approved by a staff member, in the console.

An approval needs a staff member holding the scope's permission
(:attr:`gonghui.openplatform.scopes.Scope.approved_by`) over the client's org, and it rests
on that staff member: their rights are read again (as the database holds them now, not as
a sign-in carried them) when a token is issued and at every call that uses it, and the call
runs with their rights narrowed to the client's subtree. A staff member who loses the
permission, is moved or disabled takes their approvals down with them at once, without
anyone having to remember to revoke them; another staff member's approval brings them back.

Withdrawing an approval narrows the client's own tokens at the commit (every process drops
what it holds of them): they keep their other scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts.models import User
from gonghui.accounts.principal import standing_actor
from gonghui.audit import service as audit
from gonghui.baas.errors import BaasError
from gonghui.baas.models import App
from gonghui.clock import now
from gonghui.errors import InvalidInput, NotFound, PermissionDenied, field_error
from gonghui.openplatform import resource, scopes
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import Client, StaffApproval, Token
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, path_within, subtree_condition

# Who sees a client's staff-approved scopes in the console: its org's developers and
# anyone who may approve one of them.
SEES = frozenset(
    {Permission.APPS_MANAGE}
    | {s.approved_by for s in scopes.SCOPES.values() if s.approved_by is not None}
)


@dataclass(frozen=True)
class ClientOrg:
    """A client and the org it acts within (its subtree, never beyond)."""

    client_pk: int
    client_id: str
    org_id: int
    org_path: str

    def holds(self, org_path: str) -> bool:
        return path_within(org_path, self.org_path)


@dataclass(frozen=True)
class Acting:
    """A call made under a staff approval: the client, and whose standing rights it uses."""

    client: ClientOrg
    actor: Actor


def subtree_app(session: Session, *, org_path: str, app_id: int) -> tuple[App, str]:
    """The BaaS app ``app_id`` and its org's path, if it belongs to the subtree at
    ``org_path``; else the one answer for an app that does not exist."""
    row = session.execute(
        select(App, Org.path).join(Org, Org.id == App.org_id).where(App.id == app_id)
    ).first()
    if row is None or not path_within(row[1], org_path):
        raise NotFound(BaasError.APP_NOT_FOUND, f"app {app_id} not found")
    return row[0], row[1]


def client_org(session: Session, client_pk: int) -> ClientOrg:
    row = session.execute(
        select(Client.id, Client.client_id, Client.org_id, Org.path)
        .join(Org, Org.id == Client.org_id)
        .where(Client.id == client_pk)
    ).one()
    return ClientOrg(row.id, row.client_id, row.org_id, row.path)


def _sees(actor: Actor, org_path: str) -> bool:
    return any(actor.can(p, org_path) for p in SEES)


def _visible_client(session: Session, actor: Actor, client_pk: int) -> tuple[Client, Org]:
    row = session.execute(
        select(Client, Org).join(Org, Org.id == Client.org_id).where(Client.id == client_pk)
    ).first()
    if row is None or not _sees(actor, row[1].path):
        raise NotFound(OpenPlatformError.CLIENT_NOT_FOUND, f"client {client_pk} not found")
    return row[0], row[1]


def _approvable(name: str) -> scopes.Scope:
    scope = scopes.scope_of(name)
    if scope is None or scope.approved_by is None:
        raise InvalidInput(
            OpenPlatformError.BAD_SCOPE,
            f"{name} is not a scope staff approve",
            [field_error("scope", OpenPlatformError.BAD_SCOPE, "not a staff-approved scope")],
        )
    return scope


def _active(session: Session, client_pk: int, scope: str) -> list[StaffApproval]:
    return list(
        session.scalars(
            select(StaffApproval)
            .where(
                StaffApproval.client_pk == client_pk,
                StaffApproval.scope == scope,
                StaffApproval.withdrawn_at.is_(None),
            )
            .order_by(StaffApproval.id.desc())
        )
    )


def _stands(session: Session, approval: StaffApproval, org_path: str) -> Actor | None:
    """The approver's rights now, if they still hold the scope's permission over the org."""
    permission = scopes.approver_right(approval.scope)
    assert permission is not None
    actor = standing_actor(session, user_id=approval.approved_by)
    return actor if actor is not None and actor.can(permission, org_path) else None


def _audit(
    session: Session, actor: Actor, action: str, client: Client, org: Org, scope: str
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"openplatform.approval.{action}",
        org_id=org.id,
        subject_type="oauth_client",
        subject_id=client.id,
        details={"scope": scope},
    )


def approve(session: Session, *, actor: Actor, client_pk: int, scope: str) -> StaffApproval:
    """``actor`` approves ``scope`` for the client: they must hold its permission over the
    client's org, and the client must ask for it. Approving again what stands is a no-op."""
    wanted = _approvable(scope)
    client, org = _visible_client(session, actor, client_pk)
    assert wanted.approved_by is not None
    if not actor.can(wanted.approved_by, org.path):
        raise PermissionDenied(
            OpenPlatformError.APPROVER_LACKS_RIGHT,
            f"approving {scope} needs {wanted.approved_by} over the app's org",
        )
    if scope not in scopes.parse(client.scope):
        raise InvalidInput(
            OpenPlatformError.SCOPE_NOT_ASKED,
            f"the app does not ask for {scope}",
            [field_error("scope", OpenPlatformError.SCOPE_NOT_ASKED, "not among the app's scopes")],
        )
    if (app_id := scopes.baas_app(scope)) is not None:
        subtree_app(session, org_path=org.path, app_id=app_id)
    for existing in _active(session, client.id, scope):
        if _stands(session, existing, org.path) is not None:
            return existing
    approval = StaffApproval(client_pk=client.id, scope=scope, approved_by=actor.user_id)
    session.add(approval)
    session.flush()
    _audit(session, actor, "grant", client, org, scope)
    return approval


def withdraw(session: Session, *, actor: Actor, client_pk: int, scope: str) -> None:
    """Withdraw ``scope`` from the client (its developers or anyone who may approve it):
    its tokens lose the scope at the commit."""
    wanted = _approvable(scope)
    client, org = _visible_client(session, actor, client_pk)
    assert wanted.approved_by is not None
    if not (actor.can(wanted.approved_by, org.path) or actor.can(Permission.APPS_MANAGE, org.path)):
        raise PermissionDenied(
            OpenPlatformError.APPROVER_LACKS_RIGHT,
            f"withdrawing {scope} needs {wanted.approved_by} over the app's org",
        )
    active = _active(session, client.id, scope)
    if not active:
        raise NotFound(OpenPlatformError.APPROVAL_NOT_FOUND, f"the app holds no approved {scope}")
    at = now()
    for approval in active:
        approval.withdrawn_at = at
        approval.withdrawn_by = actor.user_id
    _narrow_tokens(session, client.id, scope)
    _audit(session, actor, "withdraw", client, org, scope)


def _narrow_tokens(session: Session, client_pk: int, scope: str) -> None:
    """Take ``scope`` out of the client's own live tokens; processes drop what they hold."""
    held = session.scalars(
        select(Token).where(
            Token.client_pk == client_pk,
            Token.user_id.is_(None),
            Token.revoked_at.is_(None),
            Token.expires_at > now(),
        )
    )
    for token in held:
        names = scopes.parse(token.scope)
        if scope in names:
            token.scope = " ".join(n for n in names if n != scope)
    resource.tokens_changed(session, user_id=None)


def approved_scopes(session: Session, *, client_pk: int) -> set[str]:
    """The staff-approved scopes the client holds now (its approvers' rights standing)."""
    org = client_org(session, client_pk)
    rows = session.scalars(
        select(StaffApproval).where(
            StaffApproval.client_pk == client_pk, StaffApproval.withdrawn_at.is_(None)
        )
    )
    return {a.scope for a in rows if _stands(session, a, org.org_path) is not None}


def acting_for(session: Session, *, client_pk: int, scope: str) -> Acting:
    """The approval a call of ``scope`` rests on, with its approver's standing rights;
    refused (403) once no approver of it holds the rights any more."""
    org = client_org(session, client_pk)
    for approval in _active(session, client_pk, scope):
        actor = _stands(session, approval, org.org_path)
        if actor is not None:
            return Acting(org, actor)
    raise PermissionDenied(
        OpenPlatformError.APPROVAL_LAPSED,
        f"no staff member who may approve {scope} for this app's org stands behind it",
    )


@dataclass(frozen=True)
class ScopeApproval:
    """One staff-approved scope a client asks for, as the console shows it."""

    scope: str
    state: str  # "approved", "lapsed" (its approver lost the right) or "awaiting"
    approved_by: str | None
    approved_at: datetime | None
    may_approve: bool
    may_withdraw: bool


@dataclass(frozen=True)
class ClientApprovals:
    client_pk: int
    name: str
    client_id: str
    org_name: str
    kind: str
    disabled: bool
    scopes: list[ScopeApproval]


def overview(session: Session, *, actor: Actor) -> list[ClientApprovals]:
    """The clients of the caller's subtrees that ask for staff-approved scopes, and where
    each of those scopes stands."""
    stmt = select(Client, Org).join(Org, Org.id == Client.org_id).order_by(Client.id)
    if not actor.is_platform_admin:
        roots = sorted({r for p in SEES for r in actor.roots(p)})
        stmt = stmt.where(subtree_condition(Org.path, roots))
    out: list[ClientApprovals] = []
    for client, org in session.execute(stmt):
        asked = scopes.staff_approved(scopes.parse(client.scope))
        if not asked or not _sees(actor, org.path):
            continue
        items = []
        for name in asked:
            permission = scopes.approver_right(name)
            assert permission is not None
            may_approve = actor.can(permission, org.path)
            active = _active(session, client.id, name)
            standing = next((a for a in active if _stands(session, a, org.path)), None)
            shown = standing or (active[0] if active else None)
            approver = None if shown is None else session.get(User, shown.approved_by)
            items.append(
                ScopeApproval(
                    scope=name,
                    state="approved" if standing else "lapsed" if active else "awaiting",
                    approved_by=None
                    if approver is None
                    else approver.display_name or f"#{approver.id}",
                    approved_at=None if shown is None else shown.approved_at,
                    may_approve=may_approve,
                    may_withdraw=bool(active)
                    and (may_approve or actor.can(Permission.APPS_MANAGE, org.path)),
                )
            )
        out.append(
            ClientApprovals(
                client.id,
                client.name,
                client.client_id,
                org.name,
                client.kind,
                client.disabled_at is not None,
                items,
            )
        )
    return out
