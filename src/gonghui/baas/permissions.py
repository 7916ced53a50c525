"""Who may read, create, update and delete the records of a table.

A table's rule for an action is a list of grants, any of which admits the caller:
``public`` (anyone holding the app's client key), ``users`` (signed in), ``members``
(verified members of the app's org subtree), ``creator`` (the user who created the
record; a row filter), ``staff:<role>`` (staff holding that role over the app's org).
A record's ACL entries for an action narrow it further to the users listed. The server
key bypasses every rule. Reads, updates and deletes of records the caller may not touch
behave exactly as if the record did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, false, not_, or_, select, true
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.baas.errors import BaasError
from gonghui.baas.models import RecordAcl
from gonghui.errors import InvalidInput, field_error
from gonghui.orgs.models import Role
from gonghui.tenancy import Actor, Grant, path_within


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


_SIMPLE = frozenset({"public", "users", "members", "creator"})
_STAFF = {f"staff:{r}" for r in Role}


def validate(permissions: dict[str, Any]) -> dict[str, list[str]]:
    clean: dict[str, list[str]] = {}
    for action, grants in permissions.items():
        if action not in set(Action):
            raise InvalidInput(
                BaasError.BAD_PERMISSIONS,
                f"unknown action {action}",
                [field_error(f"permissions.{action}", BaasError.BAD_PERMISSIONS, "unknown")],
            )
        if not isinstance(grants, list):
            raise InvalidInput(BaasError.BAD_PERMISSIONS, f"{action}: a list of grants")
        for g in grants:
            if g not in _SIMPLE and g not in _STAFF:
                raise InvalidInput(
                    BaasError.BAD_PERMISSIONS,
                    f"unknown grant {g!r}",
                    [field_error(f"permissions.{action}", BaasError.BAD_PERMISSIONS, str(g))],
                )
        clean[action] = sorted(set(grants))
    return {a: clean.get(a, []) for a in Action}


@dataclass(frozen=True)
class Caller:
    """Who makes an app call: the key used, and the signed-in user if any."""

    app_id: int
    org_id: int
    org_path: str
    server: bool
    user_id: int | None = None
    member_org_path: str | None = None
    grants: tuple[Grant, ...] = ()
    is_platform_admin: bool = False

    def holds(self, grant: str) -> bool:
        """Whether ``grant`` admits the caller regardless of the record."""
        if grant == "public":
            return True
        if grant == "users":
            return self.user_id is not None
        if grant == "members":
            return self.member_org_path is not None and path_within(
                self.member_org_path, self.org_path
            )
        if grant.startswith("staff:"):
            role = grant.split(":", 1)[1]
            if self.is_platform_admin:
                return True
            return any(
                g.role == role and path_within(self.org_path, g.org_path) for g in self.grants
            )
        return False

    def audit(
        self, session: Session, *, action: str, subject_type: str, subject_id: object
    ) -> None:
        """Write the caller's act to the audit log: its user (none for a server key
        alone), its app and which key it used."""
        audit.record(
            session,
            actor=Actor(user_id=self.user_id),
            action=action,
            org_id=self.org_id,
            subject_type=subject_type,
            subject_id=subject_id,
            details={"app_id": self.app_id, "key": "server" if self.server else "client"},
        )


def row_filter(
    caller: Caller, rules: dict[str, list[str]], action: Action, table: Table, table_id: int
) -> ColumnElement[bool]:
    """The condition a record must meet for ``caller`` to ``action`` it."""
    if caller.server:
        return true()
    grants = rules.get(action, [])
    if any(caller.holds(g) for g in grants if g != "creator"):
        cond: ColumnElement[bool] = true()
    elif "creator" in grants and caller.user_id is not None:
        cond = table.c.created_by == caller.user_id
    else:
        return false()
    if action is Action.CREATE:
        return cond
    listed = select(RecordAcl.id).where(
        RecordAcl.table_id == table_id,
        RecordAcl.record_id == table.c.id,
        RecordAcl.action == action.value,
    )
    narrowed = or_(
        not_(exists(listed)),
        exists(listed.where(RecordAcl.user_id == (caller.user_id or 0))),
    )
    return and_(cond, narrowed)


def may_create(caller: Caller, rules: dict[str, list[str]]) -> bool:
    if caller.server:
        return True
    grants = rules.get(Action.CREATE, [])
    if any(caller.holds(g) for g in grants if g != "creator"):
        return True
    return "creator" in grants and caller.user_id is not None
