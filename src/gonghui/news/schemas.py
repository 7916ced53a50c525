from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gonghui.news.models import NewsKind, NewsStatus, Visibility
from gonghui.types import Id

BODY_MAX_CHARS = 200_000


class NewsWrite(BaseModel):
    """A draft as the editor sends it: ``body_html`` is sanitised on save."""

    model_config = ConfigDict(extra="forbid")

    kind: NewsKind = NewsKind.NEWS
    title: str = Field(min_length=1, max_length=200)
    body_html: str = Field(min_length=1, max_length=BODY_MAX_CHARS)
    visibility: Visibility = Visibility.SUBTREE
    audience_org_ids: list[Id] = Field(default_factory=list, max_length=200)
    pinned: bool = False
    publish_at: AwareDatetime | None = Field(
        default=None, description="members see it from then on (default: when approved)"
    )


class NewsCreate(NewsWrite):
    org_id: Id


class NewsReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str = Field(default="", max_length=500)


class NewsPin(BaseModel):
    pinned: bool


class AttachmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size: int


class NewsRead(BaseModel):
    """An item as staff see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    kind: NewsKind
    title: str
    body_html: str
    status: NewsStatus
    pinned: bool
    visibility: Visibility
    audience_org_ids: list[int]
    publish_at: datetime | None
    author_id: int | None
    reviewer_id: int | None
    review_note: str
    submitted_at: datetime | None
    reviewed_at: datetime | None
    withdrawn_at: datetime | None
    read_count: int
    attachments: list[AttachmentRead]
    created_at: datetime
    updated_at: datetime


class NewsSummary(BaseModel):
    """An item in a member's list."""

    id: int
    kind: NewsKind
    title: str
    org_name: str
    pinned: bool
    publish_at: datetime


class NewsArticle(NewsSummary):
    """An item as a member reads it."""

    body_html: str
    attachments: list[AttachmentRead]


class ImageRead(BaseModel):
    key: str
    url: str = Field(description="use as an <img src> in body_html")
