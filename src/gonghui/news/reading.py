"""News as members read it, and as the open platform's ``news:read`` lists it.

A member sees the published items of their own union and of every union above it whose
visibility covers their union: the owner's whole subtree, or chosen orgs of which their
union is one or lies below one. ``publish_at <= now`` is asked at read time, so a
scheduled item appears at its time with no job. Opening an item counts one read per
member: a look-up first (a member opening it again writes nothing), else an insert that
the unique key turns into a no-op if another request got there first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.clock import now
from gonghui.db import upsert_insert
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.news.errors import NewsError
from gonghui.news.models import (
    NewsAttachment,
    NewsAudience,
    NewsItem,
    NewsRead,
    NewsStatus,
    Visibility,
)
from gonghui.orgs.models import Org
from gonghui.tenancy import path_ids, within

PAGE_MAX = 100


def _shown(at: datetime) -> ColumnElement[bool]:
    return (NewsItem.status == NewsStatus.PUBLISHED) & (NewsItem.publish_at <= at)


def _visible_to(member: MemberInfo, at: datetime) -> ColumnElement[bool]:
    chain = path_ids(member.org_path)
    covered = exists().where(NewsAudience.item_id == NewsItem.id, NewsAudience.org_id.in_(chain))
    return (
        _shown(at)
        & NewsItem.org_id.in_(chain)
        & ((NewsItem.visibility == Visibility.SUBTREE) | covered)
    )


@dataclass(frozen=True)
class Listed:
    item: NewsItem
    org_name: str


def member_feed(session: Session, *, member: MemberInfo, limit: int = 50) -> list[Listed]:
    """What the member may read: pinned first, then the newest."""
    stmt = (
        select(NewsItem, Org.name)
        .join(Org, Org.id == NewsItem.org_id)
        .where(_visible_to(member, now()))
        .order_by(NewsItem.pinned.desc(), NewsItem.publish_at.desc(), NewsItem.id.desc())
        .limit(min(max(limit, 1), PAGE_MAX))
    )
    return [Listed(item, name) for item, name in session.execute(stmt)]


def member_item(session: Session, *, member: MemberInfo, item_id: int) -> Listed:
    """One item the member may read; not found otherwise (unknown, hidden or not yet)."""
    row = session.execute(
        select(NewsItem, Org.name)
        .join(Org, Org.id == NewsItem.org_id)
        .where(NewsItem.id == item_id, _visible_to(member, now()))
    ).first()
    if row is None:
        raise NotFound(NewsError.NOT_FOUND, f"news item {item_id} not found")
    return Listed(row[0], row[1])


def member_attachment(
    session: Session, *, member: MemberInfo, item_id: int, attachment_id: int
) -> NewsAttachment:
    member_item(session, member=member, item_id=item_id)
    attachment = session.get(NewsAttachment, attachment_id)
    if attachment is None or attachment.item_id != item_id:
        raise NotFound(NewsError.ATTACHMENT_NOT_FOUND, f"attachment {attachment_id} not found")
    return attachment


def has_read(session: Session, *, item_id: int, user_id: int) -> bool:
    found = session.scalar(
        select(NewsRead.id).where(NewsRead.item_id == item_id, NewsRead.user_id == user_id)
    )
    return found is not None


def record_read(session: Session, *, item_id: int, user_id: int) -> bool:
    """Count the member's first read of an item they may read (the caller checked); True if
    this was it. A write session; callers that look first (:func:`has_read`) on a read
    session write only on a first read."""
    insert = upsert_insert(session.get_bind().dialect.name)
    # RETURNING tells a row written from a conflict on every dialect (a driver's rowcount
    # for INSERT ... ON CONFLICT DO NOTHING is not to be relied on).
    added = session.execute(
        insert(NewsRead)
        .values(item_id=item_id, user_id=user_id, read_at=now())
        .on_conflict_do_nothing(index_elements=[NewsRead.item_id, NewsRead.user_id])
        .returning(NewsRead.id)
    ).scalar()
    if added is None:
        return False
    session.execute(
        update(NewsItem)
        .where(NewsItem.id == item_id)
        .values(read_count=NewsItem.read_count + 1)
        .execution_options(synchronize_session=False)
    )
    return True


# -- the open platform --------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenPage:
    items: list[Listed]
    next_cursor: str | None


def _cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise InvalidInput(
            NewsError.BAD_CURSOR,
            "bad cursor",
            [field_error("cursor", NewsError.BAD_CURSOR, "use next_cursor from a page")],
        )
    return int(cursor)


def published_in(
    session: Session, *, org_path: str, cursor: str | None = None, limit: int = 20
) -> OpenPage:
    """The published items (their time come) of the org at ``org_path`` and the unions
    below it, newest first, a page at a time."""
    limit = min(max(limit, 1), PAGE_MAX)
    stmt = (
        select(NewsItem, Org.name)
        .join(Org, Org.id == NewsItem.org_id)
        .where(within(Org.path, org_path), _shown(now()))
        .order_by(NewsItem.id.desc())
        .limit(limit + 1)
    )
    before = _cursor(cursor)
    if before is not None:
        stmt = stmt.where(NewsItem.id < before)
    rows = [Listed(item, name) for item, name in session.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return OpenPage(rows, str(rows[-1].item.id) if more else None)


def published_one(session: Session, *, org_path: str, item_id: int) -> Listed:
    row = session.execute(
        select(NewsItem, Org.name)
        .join(Org, Org.id == NewsItem.org_id)
        .where(NewsItem.id == item_id, within(Org.path, org_path), _shown(now()))
    ).first()
    if row is None:
        raise NotFound(NewsError.NOT_FOUND, f"news item {item_id} not found")
    return Listed(row[0], row[1])
