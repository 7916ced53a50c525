"""Cloud functions: a function per app and name, its immutable versions, its invocations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Function(Base):
    __tablename__ = "baas_function"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[IdPk]
    app_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_app.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    name: Mapped[str] = mapped_column(String(63))
    current_version: Mapped[int] = mapped_column(default=1)
    # "caller": platform calls carry the invoking user's rights; "server": the app's.
    runs_as: Mapped[str] = mapped_column(String(8), default="caller")
    timeout_s: Mapped[float] = mapped_column(default=5.0)
    memory_mb: Mapped[int] = mapped_column(default=128)
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hosts the function may call over HTTP(S), through the platform (``http.request``):
    # "api.example.com" or "*.example.com". Its sandbox has no network of its own.
    allowed_hosts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # AES-GCM sealed JSON object of secret name -> value; see secrets.py.
    secrets_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class FunctionVersion(Base):
    __tablename__ = "baas_function_version"
    __table_args__ = (UniqueConstraint("function_id", "version"),)

    id: Mapped[IdPk]
    function_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_function.id"))
    version: Mapped[int]
    source: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Invocation(Base):
    __tablename__ = "baas_function_invocation"
    __table_args__ = (Index("ix_baas_function_invocation_function_at", "function_id", "at"),)

    id: Mapped[IdPk]
    function_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_function.id"))
    version: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=now, index=True)
    # The request that ran it (X-Request-Id), to find the log of a given call.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(16))  # http | function | trigger
    status: Mapped[str] = mapped_column(String(16))  # ok | error | timeout | crashed
    cold: Mapped[bool] = mapped_column(default=False)
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    peak_memory_kb: Mapped[int] = mapped_column(default=0)
    caller_user_id: Mapped[int | None] = mapped_column(BigId)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    logs: Mapped[str] = mapped_column(Text, default="")
