"""The union tree: create, rename, move, archive; staff roles over subtrees."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.accounts import principal as principals
from gonghui.accounts.models import User
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, PermissionDenied, field_error
from gonghui.orgs.errors import OrgsError
from gonghui.orgs.models import LEVEL_RANK, ORG_TREE_TOPIC, Org, OrgLevel, Role, StaffRole
from gonghui.tenancy import (
    ROLE_PERMISSIONS,
    Actor,
    Permission,
    path_within,
    require_org,
    scoped,
    within,
)


def _check_level(parent: Org | None, level: OrgLevel) -> None:
    if parent is not None and LEVEL_RANK[level] <= LEVEL_RANK[OrgLevel(parent.level)]:
        raise InvalidInput(
            OrgsError.BAD_LEVEL,
            f"a {level} union cannot sit under a {parent.level} union",
            [{"field": "level", "code": OrgsError.BAD_LEVEL, "message": "must be below parent"}],
        )


def create_org(
    session: Session,
    *,
    actor: Actor,
    code: str,
    name: str,
    level: OrgLevel,
    parent_id: int | None,
    region_code: str | None = None,
) -> Org:
    parent = None
    if parent_id is None:
        if not actor.is_platform_admin:
            raise PermissionDenied(OrgsError.ROOT_EXISTS, "only a platform admin adds a root org")
    else:
        parent = require_org(session, actor, Permission.ORGS_MANAGE, parent_id)
        if parent.archived_at is not None:
            raise Conflict(OrgsError.ARCHIVED, "cannot add under an archived org")
    _check_level(parent, level)
    if session.scalar(select(Org.id).where(Org.code == code)) is not None:
        raise Conflict(OrgsError.CODE_TAKEN, f"org code {code} is already used")
    org = Org(
        code=code,
        name=name,
        level=level,
        parent_id=parent.id if parent else None,
        path="",
        depth=(parent.depth + 1) if parent else 0,
        region_code=region_code,
    )
    session.add(org)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(OrgsError.CODE_TAKEN, f"org code {code} is already used") from exc
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="orgs.create",
        org_id=org.id,
        subject_type="org",
        subject_id=org.id,
        details={"code": code, "name": name, "level": str(level), "parent_id": parent_id},
    )
    return org


def list_orgs(
    session: Session, *, actor: Actor, root_id: int | None = None, include_archived: bool = False
) -> list[Org]:
    stmt = scoped(select(Org), actor, Permission.ORGS_READ)
    if root_id is not None:
        root = require_org(session, actor, Permission.ORGS_READ, root_id)
        stmt = stmt.where(within(Org.path, root.path))
    if not include_archived:
        stmt = stmt.where(Org.archived_at.is_(None))
    return list(session.scalars(stmt.order_by(Org.depth, Org.id)))


def get_org(session: Session, *, actor: Actor, org_id: int) -> Org:
    return require_org(session, actor, Permission.ORGS_READ, org_id)


def org_by_code(session: Session, *, actor: Actor, code: str, permission: Permission) -> Org:
    org: Org | None = session.scalar(scoped(select(Org).where(Org.code == code), actor, permission))
    if org is None:
        raise NotFound(OrgsError.NOT_FOUND, f"org {code} not found")
    return org


def public_org_by_code(session: Session, *, code: str) -> Org:
    """An active org by the code a union gives its members (when they name their own union,
    for a review request). Org codes and names are public; nothing below the org is shown."""
    org: Org | None = session.scalar(
        select(Org).where(Org.code == code.strip(), Org.archived_at.is_(None))
    )
    if org is None:
        raise NotFound(
            OrgsError.NOT_FOUND,
            f"no union with code {code.strip()}",
            [field_error("org_code", OrgsError.CODE_UNKNOWN, "no union with this code")],
        )
    return org


def rename_org(session: Session, *, actor: Actor, org_id: int, name: str) -> Org:
    org = require_org(session, actor, Permission.ORGS_MANAGE, org_id)
    old = org.name
    org.name = name
    audit.record(
        session,
        actor=actor,
        action="orgs.rename",
        org_id=org.id,
        subject_type="org",
        subject_id=org.id,
        details={"from": old, "to": name},
    )
    return org


def move_org(session: Session, *, actor: Actor, org_id: int, new_parent_id: int) -> Org:
    """Re-hang a subtree; the caller must manage both the org and its new parent."""
    org = require_org(session, actor, Permission.ORGS_MANAGE, org_id)
    parent = require_org(session, actor, Permission.ORGS_MANAGE, new_parent_id)
    if path_within(parent.path, org.path):
        raise InvalidInput(OrgsError.MOVE_INTO_SUBTREE, "cannot move an org under itself")
    if parent.archived_at is not None:
        raise Conflict(OrgsError.ARCHIVED, "cannot move under an archived org")
    _check_level(parent, OrgLevel(org.level))
    old_path, old_parent = org.path, org.parent_id
    new_path = f"{parent.path}{org.id}/"
    depth_delta = parent.depth + 1 - org.depth
    # One statement rewrites the whole subtree's paths: the subtree moves atomically.
    session.execute(
        update(Org)
        .where(within(Org.path, old_path))
        .values(
            path=new_path + func.substr(Org.path, len(old_path) + 1),
            depth=Org.depth + depth_delta,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(update(Org).where(Org.id == org.id).values(parent_id=parent.id))
    session.expire_all()
    audit.record(
        session,
        actor=actor,
        action="orgs.move",
        org_id=org.id,
        subject_type="org",
        subject_id=org.id,
        details={"from_parent": old_parent, "to_parent": parent.id},
    )
    _forget_all_principals(session)
    moved = session.get(Org, org_id)
    assert moved is not None
    return moved


def archive_org(session: Session, *, actor: Actor, org_id: int) -> Org:
    org = require_org(session, actor, Permission.ORGS_MANAGE, org_id)
    if org.archived_at is not None:
        return org
    active_children = session.scalar(
        select(func.count())
        .select_from(Org)
        .where(Org.parent_id == org.id, Org.archived_at.is_(None))
    )
    if active_children:
        raise Conflict(
            OrgsError.HAS_ACTIVE_CHILDREN,
            f"archive or move the {active_children} active child orgs first",
        )
    org.archived_at = now()
    audit.record(
        session,
        actor=actor,
        action="orgs.archive",
        org_id=org.id,
        subject_type="org",
        subject_id=org.id,
    )
    _forget_all_principals(session)
    return org


def grant_role(
    session: Session, *, actor: Actor, org_id: int, user_id: int, role: Role
) -> StaffRole:
    org = require_org(session, actor, Permission.STAFF_MANAGE, org_id)
    # No one hands out more than they hold there: a role whose every right the granter
    # holds over the org (today only admins manage staff, and they hold every right; this
    # keeps it so if a role ever manages staff without holding all the others).
    beyond = sorted(p for p in ROLE_PERMISSIONS[role] if not actor.can(p, org.path))
    if beyond:
        raise PermissionDenied(
            OrgsError.ROLE_BEYOND_OWN,
            f"granting {role} needs rights you do not hold there: {', '.join(beyond)}",
        )
    if session.get(User, user_id) is None:
        raise NotFound(OrgsError.USER_NOT_FOUND, f"user {user_id} not found")
    existing = session.scalar(
        select(StaffRole).where(
            StaffRole.user_id == user_id, StaffRole.org_id == org.id, StaffRole.role == role
        )
    )
    if existing is not None:
        raise Conflict(OrgsError.ROLE_EXISTS, "this role is already granted")
    grant = StaffRole(user_id=user_id, org_id=org.id, role=role, granted_by=actor.user_id)
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.grant",
        org_id=org.id,
        subject_type="user",
        subject_id=user_id,
        details={"role": str(role)},
    )
    principals.changed(session, user_id=user_id)
    return grant


def revoke_role(session: Session, *, actor: Actor, org_id: int, user_id: int, role: Role) -> None:
    org = require_org(session, actor, Permission.STAFF_MANAGE, org_id)
    grant = session.scalar(
        select(StaffRole).where(
            StaffRole.user_id == user_id, StaffRole.org_id == org.id, StaffRole.role == role
        )
    )
    if grant is None:
        raise NotFound(OrgsError.ROLE_NOT_FOUND, "no such role grant")
    session.delete(grant)
    audit.record(
        session,
        actor=actor,
        action="staff.revoke",
        org_id=org.id,
        subject_type="user",
        subject_id=user_id,
        details={"role": str(role)},
    )
    principals.changed(session, user_id=user_id)


def list_staff(session: Session, *, actor: Actor, org_id: int) -> list[StaffRole]:
    org = require_org(session, actor, Permission.ORGS_READ, org_id)
    return list(
        session.scalars(select(StaffRole).where(StaffRole.org_id == org.id).order_by(StaffRole.id))
    )


def _forget_all_principals(session: Session) -> None:
    # Paths changed or an org is gone: every sign-in's grant and membership paths (and every
    # app key's org path) may be stale.
    invalidation.changed(session, ORG_TREE_TOPIC)
