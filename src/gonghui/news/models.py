"""News and notices of a union, who they are shown to, their attachments and reads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class NewsKind(StrEnum):
    NEWS = "news"  # 新闻
    NOTICE = "notice"  # 通知公告


class NewsStatus(StrEnum):
    DRAFT = "draft"
    PENDING = "pending"  # submitted, waiting for a second staff member's review
    REJECTED = "rejected"
    PUBLISHED = "published"  # shown from publish_at on
    WITHDRAWN = "withdrawn"


class Visibility(StrEnum):
    SUBTREE = "subtree"  # every member of the item's org and the unions below it
    ORGS = "orgs"  # the members of the chosen orgs (each with its subtree) only


class NewsItem(Base):
    """One article. Members see it while it is published and ``publish_at`` has come (read
    at read time: a scheduled item needs no job to appear)."""

    __tablename__ = "news_item"
    __table_args__ = (Index("ix_news_item_org_status", "org_id", "status"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    kind: Mapped[NewsKind] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    # Sanitised on every save (news.markup): only the allow-listed tags and attributes.
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[NewsStatus] = mapped_column(String(16), default=NewsStatus.DRAFT)
    pinned: Mapped[bool] = mapped_column(default=False)
    visibility: Mapped[Visibility] = mapped_column(String(16), default=Visibility.SUBTREE)
    # When members first see it; set to the approval time unless a later one was chosen.
    publish_at: Mapped[datetime | None]
    # None: seeded by the system (demo), never by a person.
    author_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    reviewer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    review_note: Mapped[str] = mapped_column(String(500), default="")
    submitted_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    # Members who opened it, each once (NewsRead); kept here so lists need no count.
    read_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class NewsAudience(Base):
    """An org an item of visibility ``orgs`` is shown to (with the unions below it)."""

    __tablename__ = "news_audience"
    __table_args__ = (UniqueConstraint("item_id", "org_id"),)

    id: Mapped[IdPk]
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("news_item.id"))
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)


class NewsAttachment(Base):
    """A file of the file store listed under an item, downloaded by whoever may read it."""

    __tablename__ = "news_attachment"

    id: Mapped[IdPk]
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("news_item.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)


class NewsRead(Base):
    """A member opened an item: one row per member and item (the unique key makes a second
    open a no-op), counted once in ``NewsItem.read_count``."""

    __tablename__ = "news_read"
    __table_args__ = (UniqueConstraint("item_id", "user_id"),)

    id: Mapped[IdPk]
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("news_item.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    read_at: Mapped[datetime] = mapped_column(default=now)
