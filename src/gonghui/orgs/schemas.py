from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gonghui.orgs.models import OrgLevel, Role
from gonghui.types import Id


class OrgCreate(BaseModel):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    level: OrgLevel
    parent_id: Id | None = None
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$|^\d{12}$")


class OrgRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class OrgMove(BaseModel):
    parent_id: Id


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: OrgLevel
    parent_id: int | None
    path: str
    depth: int
    region_code: str | None
    archived_at: datetime | None
    created_at: datetime


class RoleGrant(BaseModel):
    user_id: Id
    role: Role


class StaffRoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    org_id: int
    role: Role
    granted_by: int | None
    granted_at: datetime
