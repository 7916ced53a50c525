"""HTTP: staff write, review, publish and withdraw news and notices; members list what
their union shows them and read it (each member's first read counted)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from sqlalchemy.orm import Session

from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.db import unit_of_work
from gonghui.deps import CurrentMember, CurrentPrincipal, CurrentStaff, SessionDep
from gonghui.news import files, reading, service
from gonghui.news.models import NewsItem, NewsStatus
from gonghui.news.schemas import (
    AttachmentRead,
    ImageRead,
    NewsArticle,
    NewsCreate,
    NewsPin,
    NewsRead,
    NewsReview,
    NewsSummary,
    NewsWrite,
)
from gonghui.news.service import Draft
from gonghui.storage import download_response
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["news"])


def _draft(body: NewsWrite) -> Draft:
    return Draft(
        kind=body.kind,
        title=body.title,
        body_html=body.body_html,
        visibility=body.visibility,
        audience_org_ids=body.audience_org_ids,
        pinned=body.pinned,
        publish_at=body.publish_at,
    )


def _read(session: Session, items: list[NewsItem]) -> list[NewsRead]:
    ids = [i.id for i in items]
    audience = service.audience_of(session, ids)
    attachments = service.attachments_of(session, ids)
    return [
        NewsRead.model_validate(
            {
                **{c: getattr(i, c) for c in NewsRead.model_fields if hasattr(i, c)},
                "audience_org_ids": audience[i.id],
                "attachments": [AttachmentRead.model_validate(a) for a in attachments[i.id]],
            }
        )
        for i in items
    ]


def _one(session: Session, item: NewsItem) -> NewsRead:
    session.flush()
    return _read(session, [item])[0]


# -- staff ----------------------------------------------------------------------------------


@router.post("/news", status_code=status.HTTP_201_CREATED)
def create_item(body: NewsCreate, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    """A draft (``news.manage`` at ``org_id``); ``body_html`` is sanitised."""
    item = service.create_item(session, actor=staff, org_id=body.org_id, draft=_draft(body))
    return _one(session, item)


@router.get("/news")
def list_items(
    staff: CurrentStaff,
    session: SessionDep,
    status: NewsStatus | None = None,
    org_id: Id | None = None,
    before: Id | None = None,
    limit: Count = 50,
) -> list[NewsRead]:
    """Items of the caller's subtrees, newest first, with their read counts."""
    found = service.list_items(
        session, actor=staff, status=status, org_id=org_id, before=before, limit=limit
    )
    return _read(session, found)


@router.get("/news-reviews")
def review_queue(staff: CurrentStaff, session: SessionDep) -> list[NewsRead]:
    """Submitted items the caller may review (``news.review``), oldest first."""
    return _read(session, service.review_queue(session, actor=staff))


@router.get("/news/{item_id}")
def get_item(item_id: Id, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    return _one(session, service.get_item(session, actor=staff, item_id=item_id))


@router.put("/news/{item_id}")
def update_item(item_id: Id, body: NewsWrite, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    """Rewrite a draft, rejected or withdrawn item (a draft again after)."""
    item = service.update_item(session, actor=staff, item_id=item_id, draft=_draft(body))
    return _one(session, item)


@router.delete("/news/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: Id, staff: CurrentStaff, session: SessionDep) -> None:
    service.delete_item(session, actor=staff, item_id=item_id)


@router.post("/news/{item_id}/submit")
def submit(item_id: Id, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    return _one(session, service.submit(session, actor=staff, item_id=item_id))


@router.post("/news/{item_id}/review")
def review(item_id: Id, body: NewsReview, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    """Approve (published now or at ``publish_at``) or reject with a note; ``news.review``,
    never the author."""
    item = service.review(
        session, actor=staff, item_id=item_id, approve=body.approve, note=body.note
    )
    return _one(session, item)


@router.post("/news/{item_id}/withdraw")
def withdraw(item_id: Id, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    return _one(session, service.withdraw(session, actor=staff, item_id=item_id))


@router.post("/news/{item_id}/publish")
def publish(item_id: Id, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    """Show a withdrawn item again (unchanged since it was approved)."""
    return _one(session, service.republish(session, actor=staff, item_id=item_id))


@router.post("/news/{item_id}/pin")
def pin(item_id: Id, body: NewsPin, staff: CurrentStaff, session: SessionDep) -> NewsRead:
    item = service.set_pinned(session, actor=staff, item_id=item_id, pinned=body.pinned)
    return _one(session, item)


@router.post("/news/images", status_code=status.HTTP_201_CREATED)
@max_body(files.IMAGE_MAX_BYTES + MULTIPART_FRAMING)
def upload_image(file: Annotated[UploadFile, File()], staff: CurrentStaff) -> ImageRead:
    """An article image (JPEG, PNG or WebP): put its ``url`` in an ``<img src>``."""
    key = service.save_image(actor=staff, data=file.file.read(files.IMAGE_MAX_BYTES + 1))
    return ImageRead(key=key, url=files.image_url(key))


@router.get("/news/images/{name}", response_class=Response)
def get_image(name: str) -> Response:
    """An article image (public, under a random name)."""
    key = files.image_key(name)
    extension = name.rpartition(".")[2]
    return download_response(
        key,
        filename=name,
        content_type=files.IMAGE_TYPES[extension],
        cache_control="public, max-age=86400",
    )


@router.post("/news/{item_id}/attachments", status_code=status.HTTP_201_CREATED)
@max_body(files.ATTACHMENT_MAX_BYTES + MULTIPART_FRAMING)
def add_attachment(
    item_id: Id,
    file: Annotated[UploadFile, File()],
    staff: CurrentStaff,
    filename: Annotated[str | None, Form(max_length=200)] = None,
) -> AttachmentRead:
    data = file.file.read(files.ATTACHMENT_MAX_BYTES + 1)
    with unit_of_work() as session:
        attachment = service.add_attachment(
            session,
            actor=staff,
            item_id=item_id,
            filename=filename or file.filename or "file",
            data=data,
        )
        return AttachmentRead.model_validate(attachment)


@router.delete(
    "/news/{item_id}/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT
)
def remove_attachment(
    item_id: Id, attachment_id: Id, staff: CurrentStaff, session: SessionDep
) -> None:
    service.remove_attachment(session, actor=staff, item_id=item_id, attachment_id=attachment_id)


@router.get("/news/{item_id}/attachments/{attachment_id}", response_class=Response)
def staff_attachment(
    item_id: Id, attachment_id: Id, staff: CurrentStaff, session: SessionDep
) -> Response:
    attachment = service.staff_attachment(
        session, actor=staff, item_id=item_id, attachment_id=attachment_id
    )
    return download_response(
        attachment.key, filename=attachment.filename, content_type=attachment.content_type
    )


# -- members ----------------------------------------------------------------------------------


def _summary(listed: reading.Listed) -> NewsSummary:
    item = listed.item
    assert item.publish_at is not None
    return NewsSummary(
        id=item.id,
        kind=item.kind,
        title=item.title,
        org_name=listed.org_name,
        pinned=item.pinned,
        publish_at=item.publish_at,
    )


@router.get("/me/news")
def my_news(member: CurrentMember, session: SessionDep) -> list[NewsSummary]:
    """What the member's union and the unions above it show them: pinned first."""
    return [_summary(x) for x in reading.member_feed(session, member=member)]


@router.get("/me/news/{item_id}")
def read_news(item_id: Id, member: CurrentMember, principal: CurrentPrincipal) -> NewsArticle:
    """An article; the member's first read of it is counted."""
    with unit_of_work(read_only=True) as session:
        listed = reading.member_item(session, member=member, item_id=item_id)
        attachments = service.attachments_of(session, [item_id])[item_id]
        article = NewsArticle(
            **_summary(listed).model_dump(),
            body_html=listed.item.body_html,
            attachments=[AttachmentRead.model_validate(a) for a in attachments],
        )
        seen = reading.has_read(session, item_id=item_id, user_id=principal.user_id)
    if not seen:
        with unit_of_work() as session:
            reading.record_read(session, item_id=item_id, user_id=principal.user_id)
    return article


@router.get("/me/news/{item_id}/attachments/{attachment_id}", response_class=Response)
def my_attachment(
    item_id: Id, attachment_id: Id, member: CurrentMember, session: SessionDep
) -> Response:
    attachment = reading.member_attachment(
        session, member=member, item_id=item_id, attachment_id=attachment_id
    )
    return download_response(
        attachment.key, filename=attachment.filename, content_type=attachment.content_type
    )
