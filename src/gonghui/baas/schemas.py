"""Pydantic shapes of the baas API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gonghui.baas.records.write import MAX_BULK
from gonghui.baas.tables.types import FieldType
from gonghui.types import Count, Id

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class AppCreate(BaseModel):
    org_id: Id
    name: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict)


class AppUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = None


class AppRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    name: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AppCreated(AppRead):
    client_key: str
    server_key: str


class KeyRotated(BaseModel):
    kind: str
    key: str


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: FieldType
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None
    rules: dict[str, Any] = Field(default_factory=dict)
    # For reference fields: the name of the referenced table in the same app.
    ref: str | None = None


class FieldChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    type: FieldType | None = None
    required: bool | None = None
    unique: bool | None = None
    indexed: bool | None = None
    default: Any = None
    rules: dict[str, Any] | None = None


class TableCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    fields: list[FieldSpec] = Field(default_factory=list, max_length=200)
    permissions: dict[str, list[str]] = Field(default_factory=dict)


class TablePermissions(BaseModel):
    permissions: dict[str, list[str]]


class FieldRead(BaseModel):
    name: str
    type: FieldType
    required: bool
    unique: bool
    indexed: bool
    default: Any
    rules: dict[str, Any]
    ref: str | None


class TableRead(BaseModel):
    id: int
    app_id: int
    name: str
    version: int
    permissions: dict[str, list[str]]
    fields: list[FieldRead]


# --- records -----------------------------------------------------------------------

Json = dict[str, Any]


class BulkCreate(BaseModel):
    records: list[Json] = Field(min_length=1, max_length=MAX_BULK)


class RecordQuery(BaseModel):
    where: Any = None
    sort: list[str] = Field(default_factory=list, max_length=10)
    fields: list[str] | None = None
    expand: list[str] = Field(default_factory=list, max_length=10)
    limit: Count = 50
    offset: Count = 0
    cursor: str | None = None
    count: bool = False


class RecordPage(BaseModel):
    items: list[Json]
    next_cursor: str | None
    count: int | None


class AggregateQuery(BaseModel):
    where: Any = None
    group_by: list[str] = Field(default_factory=list, max_length=10)
    aggregates: list[Json] = Field(default_factory=lambda: [{"op": "count"}], max_length=20)
    limit: Count = 1000


# --- copies and templates ----------------------------------------------------------


class AppCopy(BaseModel):
    org_id: Id
    name: str = Field(min_length=1, max_length=100)


class TemplateImport(AppCopy):
    template: Json


# --- files -------------------------------------------------------------------------


class FileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    folder: str
    name: str
    content_type: str
    size: int
    sha256: str
    has_thumbnail: bool = False
    created_by: int | None
    created_at: datetime


class FileUrl(BaseModel):
    url: str
    expires_at: int


# --- table data import -------------------------------------------------------------


class ImportResult(BaseModel):
    imported: int
