"""The union tree and staff roles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class OrgLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    DISTRICT = "district"
    GRASSROOTS = "grassroots"
    ENTERPRISE = "enterprise"


# A child sits strictly below its parent; grassroots and enterprise unions are leaves' peers.
LEVEL_RANK = {
    OrgLevel.PROVINCE: 0,
    OrgLevel.CITY: 1,
    OrgLevel.DISTRICT: 2,
    OrgLevel.GRASSROOTS: 3,
    OrgLevel.ENTERPRISE: 3,
}


# The topic of the change feed (:mod:`gonghui.invalidation`) that tells every process the
# org tree changed (an org moved or archived): paths held in caches may be stale.
ORG_TREE_TOPIC = "orgs.tree"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    DEVELOPER = "developer"


class Org(Base):
    __tablename__ = "orgs_org"

    id: Mapped[IdPk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[OrgLevel] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    # Materialised path of ids, "/1/7/42/": a subtree is one indexed prefix match.
    path: Mapped[str] = mapped_column(String(512), index=True)
    depth: Mapped[int] = mapped_column(default=0)
    region_code: Mapped[str | None] = mapped_column(String(12))
    # Whether workers may apply to join it from the H5 (grassroots and enterprise unions
    # only; see members.joining).
    accepts_applications: Mapped[bool] = mapped_column(default=True, server_default=true())
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)


class StaffRole(Base):
    __tablename__ = "orgs_staff_role"
    __table_args__ = (UniqueConstraint("user_id", "org_id", "role"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    role: Mapped[Role] = mapped_column(String(16))
    granted_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    granted_at: Mapped[datetime] = mapped_column(default=now)
