"""Apps, their tables and fields, and per-record ACL entries.

The rows of a user table live in a real SQL table created at run time (see
:mod:`gonghui.baas.tables.ddl`); these models hold its description.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class App(Base):
    __tablename__ = "baas_app"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # SHA-256 of the keys: they are 256-bit random strings, so a plain hash suffices.
    client_key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    server_key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class DataTable(Base):
    __tablename__ = "baas_table"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    __scope_column__ = "org_id"

    id: Mapped[IdPk]
    app_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_app.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    name: Mapped[str] = mapped_column(String(63))
    # {"read": [...], "create": [...], "update": [...], "delete": [...]}; see permissions.py
    permissions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped by every schema change; cached table descriptions compare it.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Field(Base):
    __tablename__ = "baas_field"
    __table_args__ = (UniqueConstraint("table_id", "name"),)

    id: Mapped[IdPk]
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_table.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(16))
    # Physical column; changes when a type change migrates the data to a new column.
    column: Mapped[str] = mapped_column(String(63))
    required: Mapped[bool] = mapped_column(default=False)
    unique: Mapped[bool] = mapped_column(default=False)
    indexed: Mapped[bool] = mapped_column(default=False)
    default: Mapped[Any] = mapped_column(JSON, nullable=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ref_table_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("baas_table.id"))
    position: Mapped[int] = mapped_column(default=0)


class RecordAcl(Base):
    """Narrows a table rule for one record: when a record has entries for an action, only
    the users listed may perform it (besides the server key)."""

    __tablename__ = "baas_record_acl"
    __table_args__ = (
        UniqueConstraint("table_id", "record_id", "action", "user_id"),
        Index("ix_baas_record_acl_lookup", "table_id", "action", "record_id"),
    )

    id: Mapped[IdPk]
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_table.id"))
    record_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int] = mapped_column(BigId)


class StoredFile(Base):
    """An uploaded file of an app. The blob's storage key is chosen by the server; the
    client's file name is only displayed, and its claimed content type is not trusted."""

    __tablename__ = "baas_file"

    id: Mapped[IdPk]
    app_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_app.id"), index=True)
    folder: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    thumbnail_key: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
