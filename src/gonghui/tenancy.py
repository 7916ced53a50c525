"""Tenancy: who may see and change what, enforced in one place.

A staff role granted at an org applies to its whole subtree. Every query over org-owned
data goes through :func:`scoped`; loading one row goes through :func:`get_scoped`, which
answers "not found" (never "forbidden") for rows outside the caller's subtree, so that
existence does not leak across unions. "Within org X's subtree" is asked in one way:
:func:`within` in SQL, :func:`path_within` in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.orm import QueryableAttribute, Session

from gonghui.errors import NotFound
from gonghui.orgs.models import Org, Role

T = TypeVar("T")

# An org's materialised path: its ancestors' ids and its own, "/1/7/42/" (see orgs.models).
_ORG_PATH = re.compile(r"/(?:[0-9]+/)*[0-9]*")


def _subtree_prefix(ancestor_path: str) -> str:
    """The prefix every path of ``ancestor_path``'s subtree starts with. It ends with "/":
    "/1/2" read as a bare prefix would also take in "/1/23/". Anything but a path of ids is
    refused: an empty prefix takes in every org, and a LIKE wildcard would take in more."""
    if not _ORG_PATH.fullmatch(ancestor_path):
        raise ValueError(f"not an org path: {ancestor_path!r}")
    return ancestor_path if ancestor_path.endswith("/") else ancestor_path + "/"


def path_within(path: str, ancestor_path: str) -> bool:
    """Whether the org at ``path`` is the org at ``ancestor_path`` or lies below it."""
    if not path.endswith("/"):
        path += "/"
    return path.startswith(_subtree_prefix(ancestor_path))


def within(
    path_column: ColumnElement[str] | QueryableAttribute[str], ancestor_path: str
) -> ColumnElement[bool]:
    """SQL for :func:`path_within`: ``path_column`` (an org path, e.g. ``Org.path``) is the
    org at ``ancestor_path`` or below it; one prefix match on the indexed path."""
    condition: ColumnElement[bool] = path_column.startswith(_subtree_prefix(ancestor_path))
    return condition


class Permission(StrEnum):
    ORGS_READ = "orgs.read"
    ORGS_MANAGE = "orgs.manage"
    STAFF_MANAGE = "staff.manage"
    MEMBERS_READ = "members.read"
    MEMBERS_MANAGE = "members.manage"
    PII_UNMASK = "pii.unmask"
    AUDIT_READ = "audit.read"
    ACTIVITIES_MANAGE = "activities.manage"
    APPS_MANAGE = "apps.manage"
    MERCHANTS_MANAGE = "merchants.manage"
    ANALYTICS_READ = "analytics.read"
    # Information release (news and notices): writing, and approving another's item.
    NEWS_MANAGE = "news.manage"
    NEWS_REVIEW = "news.review"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.ORGS_READ,
            Permission.MEMBERS_READ,
            Permission.MEMBERS_MANAGE,
            Permission.PII_UNMASK,
            Permission.ACTIVITIES_MANAGE,
            Permission.MERCHANTS_MANAGE,
            Permission.ANALYTICS_READ,
            Permission.NEWS_MANAGE,
            Permission.NEWS_REVIEW,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Permission.ORGS_READ,
            Permission.MEMBERS_READ,
            Permission.AUDIT_READ,
            Permission.ANALYTICS_READ,
        }
    ),
    Role.DEVELOPER: frozenset({Permission.ORGS_READ, Permission.APPS_MANAGE}),
}


@dataclass(frozen=True)
class Grant:
    org_id: int
    org_path: str
    role: Role


@dataclass(frozen=True)
class Actor:
    """The caller as tenancy sees them; ``user_id`` is None for the system itself (CLI,
    demo seeding, background jobs), which acts as platform admin."""

    user_id: int | None
    is_platform_admin: bool = False
    grants: tuple[Grant, ...] = ()
    ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def roots(self, permission: Permission) -> list[str]:
        """Paths of the subtrees where the caller holds ``permission``, none nested."""
        paths = sorted({g.org_path for g in self.grants if permission in ROLE_PERMISSIONS[g.role]})
        roots: list[str] = []
        for path in paths:
            if not any(path_within(path, root) for root in roots):
                roots.append(path)
        return roots

    def can(self, permission: Permission, org_path: str) -> bool:
        if self.is_platform_admin:
            return True
        return any(path_within(org_path, root) for root in self.roots(permission))

    def can_somewhere(self, permission: Permission) -> bool:
        """Whether the caller holds ``permission`` at any org at all."""
        return self.is_platform_admin or any(
            permission in ROLE_PERMISSIONS[g.role] for g in self.grants
        )

    @property
    def is_staff(self) -> bool:
        return self.is_platform_admin or bool(self.grants)

    def to_json(self) -> dict[str, Any]:
        """What a task carries to act as this caller later (``extra`` is left behind)."""
        return {
            "user_id": self.user_id,
            "is_platform_admin": self.is_platform_admin,
            "grants": [[g.org_id, g.org_path, str(g.role)] for g in self.grants],
            "ip": self.ip,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Actor:
        return cls(
            user_id=data["user_id"],
            is_platform_admin=data["is_platform_admin"],
            grants=tuple(Grant(org_id, path, Role(role)) for org_id, path, role in data["grants"]),
            ip=data["ip"],
        )


SYSTEM = Actor(user_id=None, is_platform_admin=True)


def subtree_condition(path_column: Any, roots: list[str]) -> ColumnElement[bool]:
    """``path_column`` lies within any of the subtrees at ``roots`` (none: false)."""
    if not roots:
        return false()
    return or_(*(within(path_column, root) for root in roots))


def org_ids_in_scope(actor: Actor, permission: Permission) -> Select[int]:
    stmt = select(Org.id)
    if actor.is_platform_admin:
        return stmt
    return stmt.where(subtree_condition(Org.path, actor.roots(permission)))


def scoped(stmt: Select[Any], actor: Actor, permission: Permission) -> Select[Any]:
    """Restrict ``stmt`` (a select of one org-owned entity) to the caller's subtrees.

    The entity names its owning org column as ``org_id`` (or ``__scope_column__``)."""
    if actor.is_platform_admin:
        return stmt
    entity = stmt.column_descriptions[0]["entity"]
    if entity is Org:
        return stmt.where(subtree_condition(Org.path, actor.roots(permission)))
    column_name = getattr(entity, "__scope_column__", "org_id")
    column = getattr(entity, column_name)
    return stmt.where(column.in_(org_ids_in_scope(actor, permission)))


def path_ids(org_path: str) -> list[int]:
    """The ids along an org's path, root first: "/1/7/42/" → [1, 7, 42]."""
    return [int(p) for p in _subtree_prefix(org_path).strip("/").split("/") if p]


def shared_down(
    stmt: Select[Any], actor: Actor, permission: Permission, *, with_subtree: bool = False
) -> Select[Any]:
    """Restrict ``stmt`` (a select of one org-owned entity, as :func:`scoped` reads it) to
    what is shared with the caller: rows owned by an org where they hold ``permission`` or
    by any org above one. What an org shares (a saved template) it shares with its whole
    subtree, never up or sideways. ``with_subtree`` adds the rows :func:`scoped` gives (the
    caller's subtrees: what they manage, though it is not shared with them)."""
    if actor.is_platform_admin:
        return stmt
    entity = stmt.column_descriptions[0]["entity"]
    column = getattr(entity, getattr(entity, "__scope_column__", "org_id"))
    granted = {g.org_path for g in actor.grants if permission in ROLE_PERMISSIONS[g.role]}
    above = sorted({i for path in granted for i in path_ids(path)})
    condition = column.in_(above)
    if with_subtree:
        condition = or_(condition, column.in_(org_ids_in_scope(actor, permission)))
    return stmt.where(condition)


def get_scoped(
    session: Session, model: type[T], ident: Any, actor: Actor, permission: Permission
) -> T:
    """Load one row of ``model`` the caller may see, or raise ``<table>.not_found``."""
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    row: T | None = session.scalar(scoped(select(model).where(pk == ident), actor, permission))
    if row is None:
        raise NotFound(f"{_noun(model)}.not_found", f"{_noun(model)} {ident} not found")
    return row


def list_scoped(
    session: Session,
    model: type[T],
    actor: Actor,
    permission: Permission,
    *,
    org_id: int | None = None,
    before: int | None = None,
    limit: int = 100,
    most: int = 500,
) -> list[T]:
    """Rows of ``model`` (org-owned, as :func:`scoped` reads it) the caller may see, newest
    first, at most ``limit`` (kept within 1..``most``); with ``org_id``, only that org's own
    (not found unless the caller holds ``permission`` there); with ``before``, only those
    older than that id (the next page)."""
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    stmt = scoped(select(model), actor, permission)
    if before is not None:
        stmt = stmt.where(pk < before)
    if org_id is not None:
        stmt = stmt.where(model.org_id == require_org(session, actor, permission, org_id).id)  # type: ignore[attr-defined]
    return list(session.scalars(stmt.order_by(pk.desc()).limit(min(max(limit, 1), most))))


def require_org(session: Session, actor: Actor, permission: Permission, org_id: int) -> Org:
    """The org with ``org_id`` if the caller holds ``permission`` there; else not found."""
    return get_scoped(session, Org, org_id, actor, permission)


def _noun(model: type[Any]) -> str:
    table: str = model.__tablename__
    return table.split("_", 1)[-1] if "_" in table else table
