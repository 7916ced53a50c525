"""The open API's ``news:read``: the published news and notices of the client's org and
the unions below it (never another subtree's, never a draft, a withdrawn item or one
scheduled for later), newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gonghui.news import reading
from gonghui.news.reading import Listed
from gonghui.openplatform import approvals

SCOPE = "news:read"
PAGE_MAX = reading.PAGE_MAX


@dataclass(frozen=True)
class OpenNews:
    id: int
    kind: str
    title: str
    org_id: int
    org_name: str
    pinned: bool
    publish_at: datetime
    body_html: str


@dataclass(frozen=True)
class OpenNewsPage:
    items: list[OpenNews]
    next_cursor: str | None


def _open(listed: Listed) -> OpenNews:
    item = listed.item
    assert item.publish_at is not None
    return OpenNews(
        item.id,
        str(item.kind),
        item.title,
        item.org_id,
        listed.org_name,
        item.pinned,
        item.publish_at,
        item.body_html,
    )


def published(
    session: Session, *, client_pk: int, cursor: str | None = None, limit: int = 20
) -> OpenNewsPage:
    client = approvals.client_org(session, client_pk)
    page = reading.published_in(session, org_path=client.org_path, cursor=cursor, limit=limit)
    return OpenNewsPage([_open(x) for x in page.items], page.next_cursor)


def one(session: Session, *, client_pk: int, item_id: int) -> OpenNews:
    client = approvals.client_org(session, client_pk)
    return _open(reading.published_one(session, org_path=client.org_path, item_id=item_id))
