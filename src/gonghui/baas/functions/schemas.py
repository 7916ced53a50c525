from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gonghui.types import Count


class FunctionDeploy(BaseModel):
    source: str = Field(min_length=1, max_length=256 * 1024)
    timeout_s: float = 5.0
    memory_mb: Count = 128
    runs_as: Literal["caller", "server"] = "caller"
    env: dict[str, str] | None = None
    allowed_hosts: list[str] | None = None


class FunctionRead(BaseModel):
    id: int
    name: str
    current_version: int
    runs_as: str
    timeout_s: float
    memory_mb: int
    env: dict[str, str]
    allowed_hosts: list[str]
    secret_names: list[str]


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    created_by: int | None
    created_at: datetime


class FunctionDetail(FunctionRead):
    versions: list[VersionRead]


class Rollback(BaseModel):
    version: Count


class SecretsPut(BaseModel):
    secrets: dict[str, str] = Field(max_length=50)


class InvocationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    at: datetime
    request_id: str | None
    source: str
    status: str
    cold: bool
    duration_ms: float
    peak_memory_kb: int
    caller_user_id: int | None
    result: Any
    error: dict[str, Any] | None
    logs: str


class InvokeResult(BaseModel):
    # Find this call's log by it: GET .../invocations?request_id=
    request_id: str | None
    result: Any
    duration_ms: float
    logs: str


class GalleryItem(BaseModel):
    name: str
    title: str
    description: str
    event: str
    env: dict[str, str]
    source: str


class GalleryInstall(BaseModel):
    template: str
    env: dict[str, str] | None = None
    with_trigger: bool = True
