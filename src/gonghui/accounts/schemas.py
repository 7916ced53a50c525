from __future__ import annotations

from pydantic import BaseModel, Field


class PasswordLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user_id: int


class GrantRead(BaseModel):
    org_id: int
    org_path: str
    role: str


class MembershipBrief(BaseModel):
    membership_id: int
    org_id: int


class MeRead(BaseModel):
    user_id: int
    display_name: str
    phone: str | None
    is_platform_admin: bool
    roles: list[GrantRead]
    membership: MembershipBrief | None
