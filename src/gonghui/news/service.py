"""News and notices as staff write, review and publish them.

Writing needs ``news.manage`` at the item's org; approving or rejecting needs
``news.review`` there, and never on one's own item: a second staff member checks what
members will read. An approved item is published at once, or at its ``publish_at`` if
that is later (members' reads compare it with the time: no job). Editing an item that is
not a draft takes it back to draft, so what members see is always what was approved.
Every submit, review, publish, withdraw, pin and delete is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, PermissionDenied, field_error
from gonghui.news import files
from gonghui.news.errors import NewsError
from gonghui.news.markup import sanitise, text_of
from gonghui.news.models import (
    NewsAttachment,
    NewsAudience,
    NewsItem,
    NewsKind,
    NewsRead,
    NewsStatus,
    Visibility,
)
from gonghui.orgs.models import Org
from gonghui.tenancy import SYSTEM, Actor, Permission, path_within, require_org, scoped

MANAGE = Permission.NEWS_MANAGE
REVIEW = Permission.NEWS_REVIEW
# What an edit may change: anything but what is being reviewed or is being shown.
EDITABLE = frozenset({NewsStatus.DRAFT, NewsStatus.REJECTED, NewsStatus.WITHDRAWN})
AUDIENCE_MAX = 200
PAGE_MAX = 100


@dataclass(frozen=True)
class Draft:
    """What an editor writes."""

    kind: NewsKind
    title: str
    body_html: str
    visibility: Visibility = Visibility.SUBTREE
    audience_org_ids: Sequence[int] = ()
    pinned: bool = False
    publish_at: datetime | None = None


def _audit(session: Session, actor: Actor, action: str, item: NewsItem, **details: object) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"news.{action}",
        org_id=item.org_id,
        subject_type="news",
        subject_id=item.id,
        details=details or None,
    )


def _not_found(item_id: int) -> NotFound:
    return NotFound(NewsError.NOT_FOUND, f"news item {item_id} not found")


def get_item(
    session: Session, *, actor: Actor, item_id: int, permission: Permission = MANAGE
) -> NewsItem:
    """An item of an org where the caller holds ``permission``; else not found."""
    item: NewsItem | None = session.scalar(
        scoped(select(NewsItem).where(NewsItem.id == item_id), actor, permission)
    )
    if item is None:
        raise _not_found(item_id)
    return item


def _audience(session: Session, org: Org, draft: Draft) -> list[int]:
    if draft.visibility != Visibility.ORGS:
        return []
    wanted = list(dict.fromkeys(draft.audience_org_ids))
    if not wanted:
        raise InvalidInput(
            NewsError.AUDIENCE_EMPTY,
            "choose the orgs the item is shown to",
            [field_error("audience_org_ids", NewsError.AUDIENCE_EMPTY, "choose at least one")],
        )
    if len(wanted) > AUDIENCE_MAX:
        raise InvalidInput(NewsError.AUDIENCE_OUTSIDE, f"at most {AUDIENCE_MAX} orgs")
    query = select(Org.id, Org.path).where(Org.id.in_(wanted), Org.archived_at.is_(None))
    paths: dict[int, str] = dict(session.execute(query).all())
    for n, org_id in enumerate(wanted):
        # Only the item's own org and the unions below it: never up, never sideways.
        if org_id not in paths or not path_within(paths[org_id], org.path):
            raise InvalidInput(
                NewsError.AUDIENCE_OUTSIDE,
                f"org {org_id} is not the item's org or below it",
                [field_error(f"audience_org_ids.{n}", NewsError.AUDIENCE_OUTSIDE, "not below")],
            )
    return wanted


def _body(draft: Draft) -> str:
    body = sanitise(draft.body_html)
    if not text_of(body) and "<img" not in body:
        raise InvalidInput(
            NewsError.EMPTY_BODY,
            "the article has no text",
            [field_error("body_html", NewsError.EMPTY_BODY, "write the article")],
        )
    return body


def _set_audience(session: Session, item: NewsItem, org_ids: list[int]) -> None:
    session.execute(delete(NewsAudience).where(NewsAudience.item_id == item.id))
    session.add_all(NewsAudience(item_id=item.id, org_id=o) for o in org_ids)


def create_item(session: Session, *, actor: Actor, org_id: int, draft: Draft) -> NewsItem:
    """A draft of ``org_id`` (the caller holds ``news.manage`` there)."""
    org = require_org(session, actor, MANAGE, org_id)
    audience = _audience(session, org, draft)
    item = NewsItem(
        org_id=org.id,
        kind=draft.kind,
        title=draft.title.strip(),
        body_html=_body(draft),
        status=NewsStatus.DRAFT,
        pinned=draft.pinned,
        visibility=draft.visibility,
        publish_at=draft.publish_at,
        author_id=actor.user_id,
        review_note="",
        read_count=0,
    )
    session.add(item)
    session.flush()
    _set_audience(session, item, audience)
    _audit(session, actor, "create", item, title=item.title)
    return item


def update_item(session: Session, *, actor: Actor, item_id: int, draft: Draft) -> NewsItem:
    """Rewrite a draft, a rejected or a withdrawn item; it is a draft again after."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, EDITABLE, "edit")
    org = session.get(Org, item.org_id)
    assert org is not None
    audience = _audience(session, org, draft)
    item.kind = draft.kind
    item.title = draft.title.strip()
    item.body_html = _body(draft)
    item.visibility = draft.visibility
    item.pinned = draft.pinned
    item.publish_at = draft.publish_at
    item.status = NewsStatus.DRAFT
    _set_audience(session, item, audience)
    _audit(session, actor, "update", item, title=item.title)
    return item


def _require(item: NewsItem, allowed: frozenset[NewsStatus] | set[NewsStatus], what: str) -> None:
    if item.status not in allowed:
        raise Conflict(NewsError.WRONG_STATUS, f"a {item.status} item cannot {what}")


def submit(session: Session, *, actor: Actor, item_id: int) -> NewsItem:
    """Send a draft (or a rejected item) to review."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, {NewsStatus.DRAFT, NewsStatus.REJECTED}, "be submitted")
    item.status = NewsStatus.PENDING
    item.submitted_at = now()
    item.reviewer_id = None
    item.reviewed_at = None
    item.review_note = ""
    _audit(session, actor, "submit", item)
    return item


def review(
    session: Session, *, actor: Actor, item_id: int, approve: bool, note: str = ""
) -> NewsItem:
    """Approve (publish, now or at ``publish_at``) or reject (with a note) a submitted item.
    The author never reviews their own."""
    item = get_item(session, actor=actor, item_id=item_id, permission=REVIEW)
    _require(item, {NewsStatus.PENDING}, "be reviewed")
    if item.author_id is not None and item.author_id == actor.user_id:
        raise PermissionDenied(NewsError.SELF_REVIEW, "another staff member reviews what you wrote")
    note = note.strip()
    if not approve and not note:
        raise InvalidInput(
            NewsError.NOTE_REQUIRED,
            "say why it is rejected",
            [field_error("note", NewsError.NOTE_REQUIRED, "say why")],
        )
    at = now()
    item.reviewer_id = actor.user_id
    item.reviewed_at = at
    item.review_note = note[:500]
    if approve:
        item.status = NewsStatus.PUBLISHED
        if item.publish_at is None or item.publish_at < at:
            item.publish_at = at
        _audit(session, actor, "approve", item, publish_at=item.publish_at.isoformat())
    else:
        item.status = NewsStatus.REJECTED
        _audit(session, actor, "reject", item, note=item.review_note)
    return item


def withdraw(session: Session, *, actor: Actor, item_id: int) -> NewsItem:
    """Take a published (or scheduled) item away from members."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, {NewsStatus.PUBLISHED}, "be withdrawn")
    item.status = NewsStatus.WITHDRAWN
    item.withdrawn_at = now()
    _audit(session, actor, "withdraw", item)
    return item


def republish(session: Session, *, actor: Actor, item_id: int) -> NewsItem:
    """Show a withdrawn item again: unchanged since its approval (an edit would have made it
    a draft, to be reviewed again)."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, {NewsStatus.WITHDRAWN}, "be published again")
    at = now()
    item.status = NewsStatus.PUBLISHED
    item.withdrawn_at = None
    if item.publish_at is None or item.publish_at < at:
        item.publish_at = at
    _audit(session, actor, "publish", item, publish_at=item.publish_at.isoformat())
    return item


def set_pinned(session: Session, *, actor: Actor, item_id: int, pinned: bool) -> NewsItem:
    item = get_item(session, actor=actor, item_id=item_id)
    if item.pinned != pinned:
        item.pinned = pinned
        _audit(session, actor, "pin" if pinned else "unpin", item)
    return item


def delete_item(session: Session, *, actor: Actor, item_id: int) -> None:
    """Remove an item members do not see (not published, not in review), and its files."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, EDITABLE, "be deleted")
    keys = list(
        session.scalars(select(NewsAttachment.key).where(NewsAttachment.item_id == item.id))
    )
    for model in (NewsAttachment, NewsAudience):
        session.execute(delete(model).where(model.item_id == item.id))
    session.execute(delete(NewsRead).where(NewsRead.item_id == item.id))
    _audit(session, actor, "delete", item, title=item.title)
    session.delete(item)
    files.forget_after_commit(session, keys)


def list_items(
    session: Session,
    *,
    actor: Actor,
    status: NewsStatus | None = None,
    org_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
    permission: Permission = MANAGE,
) -> list[NewsItem]:
    """Items of the caller's subtrees, newest first."""
    stmt = scoped(select(NewsItem), actor, permission)
    if status is not None:
        stmt = stmt.where(NewsItem.status == status)
    if org_id is not None:
        stmt = stmt.where(NewsItem.org_id == require_org(session, actor, permission, org_id).id)
    if before is not None:
        stmt = stmt.where(NewsItem.id < before)
    stmt = stmt.order_by(NewsItem.id.desc()).limit(min(max(limit, 1), PAGE_MAX))
    return list(session.scalars(stmt))


def review_queue(session: Session, *, actor: Actor, limit: int = 50) -> list[NewsItem]:
    """Submitted items the caller may review (their own among them, marked by the page)."""
    stmt = scoped(
        select(NewsItem).where(NewsItem.status == NewsStatus.PENDING), actor, REVIEW
    ).order_by(NewsItem.submitted_at, NewsItem.id)
    return list(session.scalars(stmt.limit(min(max(limit, 1), PAGE_MAX))))


def audience_of(session: Session, item_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in item_ids}
    if item_ids:
        rows = session.execute(
            select(NewsAudience.item_id, NewsAudience.org_id)
            .where(NewsAudience.item_id.in_(list(item_ids)))
            .order_by(NewsAudience.id)
        )
        for item_id, org_id in rows:
            found[item_id].append(org_id)
    return found


def attachments_of(session: Session, item_ids: Sequence[int]) -> dict[int, list[NewsAttachment]]:
    found: dict[int, list[NewsAttachment]] = {i: [] for i in item_ids}
    if item_ids:
        rows = session.scalars(
            select(NewsAttachment)
            .where(NewsAttachment.item_id.in_(list(item_ids)))
            .order_by(NewsAttachment.id)
        )
        for a in rows:
            found[a.item_id].append(a)
    return found


# -- files ------------------------------------------------------------------------------------


def save_image(*, actor: Actor, data: bytes) -> str:
    """Keep an article image uploaded by someone who writes news somewhere; its key."""
    if not actor.can_somewhere(MANAGE):
        raise PermissionDenied(NewsError.BAD_IMAGE, "only news editors upload article images")
    return files.save_image(data=data)


def append_image(session: Session, *, actor: Actor, item: NewsItem, url: str, alt: str) -> None:
    """Add an uploaded image at the end of an editable item's body (the console's editor
    without script: the editor moves it within the HTML as they like)."""
    _require(item, EDITABLE, "take images")
    figure = f'<p><img src="{escape(url)}" alt="{escape(alt.strip())}"></p>'
    item.body_html = sanitise(item.body_html + figure)
    item.status = NewsStatus.DRAFT
    _audit(session, actor, "image", item)


# -- attachments ------------------------------------------------------------------------------


def add_attachment(
    session: Session, *, actor: Actor, item_id: int, filename: str, data: bytes
) -> NewsAttachment:
    """Keep a file in the store and list it under an editable item."""
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, EDITABLE, "take attachments")
    count = len(attachments_of(session, [item.id])[item.id])
    if count >= files.ATTACHMENTS_MAX:
        raise Conflict(
            NewsError.TOO_MANY_ATTACHMENTS, f"an item has at most {files.ATTACHMENTS_MAX} files"
        )
    stored = files.store_attachment(filename=filename, data=data)
    attachment = NewsAttachment(
        item_id=item.id,
        key=stored.key,
        filename=stored.filename,
        content_type=stored.content_type,
        size=stored.size,
    )
    session.add(attachment)
    session.flush()
    _audit(session, actor, "attach", item, filename=stored.filename, size=stored.size)
    files.forget_after_rollback(session, [stored.key])
    return attachment


def remove_attachment(session: Session, *, actor: Actor, item_id: int, attachment_id: int) -> None:
    item = get_item(session, actor=actor, item_id=item_id)
    _require(item, EDITABLE, "lose attachments")
    attachment = _attachment(session, item, attachment_id)
    session.delete(attachment)
    _audit(session, actor, "detach", item, filename=attachment.filename)
    files.forget_after_commit(session, [attachment.key])


def _attachment(session: Session, item: NewsItem, attachment_id: int) -> NewsAttachment:
    attachment = session.get(NewsAttachment, attachment_id)
    if attachment is None or attachment.item_id != item.id:
        raise NotFound(NewsError.ATTACHMENT_NOT_FOUND, f"attachment {attachment_id} not found")
    return attachment


def staff_attachment(
    session: Session, *, actor: Actor, item_id: int, attachment_id: int
) -> NewsAttachment:
    """An attachment of an item the caller manages or reviews."""
    try:
        item = get_item(session, actor=actor, item_id=item_id)
    except NotFound:
        item = get_item(session, actor=actor, item_id=item_id, permission=REVIEW)
    return _attachment(session, item, attachment_id)


# -- the demo -----------------------------------------------------------------------------------


def publish_demo_item(
    session: Session,
    org: Org,
    title: str,
    body_html: str,
    *,
    kind: NewsKind = NewsKind.NEWS,
    pinned: bool = False,
) -> NewsItem:
    """A published item of ``org`` written by the system (demo seeding): no author, so no
    second reviewer is owed; audited as the system's."""
    item = create_item(
        session,
        actor=SYSTEM,
        org_id=org.id,
        draft=Draft(kind=kind, title=title, body_html=body_html, pinned=pinned),
    )
    item.status = NewsStatus.PUBLISHED
    item.publish_at = now()
    item.reviewed_at = item.publish_at
    _audit(session, SYSTEM, "approve", item, publish_at=item.publish_at.isoformat())
    return item
