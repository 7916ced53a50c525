"""The members' news (资讯): what their union and the unions above it publish for them,
pinned first, and an article's page, which counts the member's first read."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.db import unit_of_work
from gonghui.h5.access import H5Member, member_of
from gonghui.news import reading, service
from gonghui.storage import download_response
from gonghui.types import Id
from gonghui.web.templating import render

router = APIRouter()


@router.get("/news", response_class=HTMLResponse)
def news_page(request: Request, user: H5Member) -> Response:
    with unit_of_work(read_only=True) as session:
        found = reading.member_feed(session, member=member_of(user))
    context = {"items": found, "csrf_token": user.csrf_token, "tab": "hub"}
    return render(request, "h5/news.html", context)


@router.get("/news/{item_id}", response_class=HTMLResponse)
def article_page(request: Request, user: H5Member, item_id: Id) -> Response:
    user_id = user.principal.user_id
    with unit_of_work(read_only=True) as session:
        listed = reading.member_item(session, member=member_of(user), item_id=item_id)
        attachments = service.attachments_of(session, [item_id])[item_id]
        seen = reading.has_read(session, item_id=item_id, user_id=user_id)
    if not seen:
        # A member opening it again writes nothing; the first open is one insert.
        with unit_of_work() as session:
            reading.record_read(session, item_id=item_id, user_id=user_id)
    context = {
        "listed": listed,
        "item": listed.item,
        "attachments": attachments,
        "csrf_token": user.csrf_token,
        "tab": "hub",
    }
    return render(request, "h5/news_article.html", context)


@router.get("/news/{item_id}/attachments/{attachment_id}", response_class=Response)
def attachment(user: H5Member, item_id: Id, attachment_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        found = reading.member_attachment(
            session, member=member_of(user), item_id=item_id, attachment_id=attachment_id
        )
    return download_response(found.key, filename=found.filename, content_type=found.content_type)
