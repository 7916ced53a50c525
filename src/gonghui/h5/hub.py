"""The member's hub (their activities, a page at a time) and an activity's page."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gonghui import db
from gonghui.activities import hub
from gonghui.activities.schemas import HubItem, HubPage
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, NotFound
from gonghui.h5 import competition, vote, vouchers
from gonghui.h5.access import H5Member, member_of
from gonghui.notifications import reminders
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser
from gonghui.web.templating import render

router = APIRouter()


HUB_PAGE_SIZE = 20
# What a form on an activity's page may say it did (h5.done.<key>).
DONE = frozenset({"registered", "uploaded", "joined", "reminded", "unreminded"})


def _hub_page(user: PageUser, cursor: str | None) -> HubPage:
    return db.read_sync(
        functools.partial(
            hub.member_hub, member=member_of(user), cursor=cursor, limit=HUB_PAGE_SIZE
        )
    )


@router.get("/", response_class=HTMLResponse)
def hub_page(
    request: Request,
    user: H5Member,
    verified: int = 0,
    cursor: str | None = None,
) -> Response:
    """The hub, a page at a time. ``cursor`` is the previous page's ``next_cursor``: an HTMX
    request (the "load more" button) gets just the next items and the next button; without
    JavaScript the button is a link to the full page after the cursor."""
    partial = request.headers.get("HX-Request") == "true"
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "tab": "hub"}
    try:
        page = _hub_page(user, cursor or None)
    except DomainError as exc:
        context.update(items=[], error=error_key(exc), next_cursor=None, continued=True)
        response = render(request, "h5/hub.html", context, status=400)
    else:
        context.update(
            items=page.items,
            next_cursor=page.next_cursor,
            verified=bool(verified),
            continued=bool(cursor),
        )
        response = render(request, "h5/_hub_more.html" if partial else "h5/hub.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


def hub_item(user: PageUser, activity_id: Id) -> HubItem | None:
    try:
        return db.read_sync(
            functools.partial(hub.member_activity, member=member_of(user), activity_id=activity_id)
        )
    except NotFound:
        return None


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
def activity_page(
    request: Request, user: H5Member, activity_id: Id, done: str = "", error: str = ""
) -> Response:
    """The activity's page; ``done`` and ``error`` are what a form posted on it answered
    (a message key each)."""
    return render_activity(
        request,
        user,
        activity_id,
        done=done if done in DONE else None,
        error=error if error.startswith("error.") else None,
    )


def render_activity(
    request: Request, user: PageUser, activity_id: int, *, status: int = 200, **extra: Any
) -> Response:
    """The activity's page with the member's state in it, and ``extra`` (what a form on it
    answered: an error, the values sent back)."""
    item = hub_item(user, activity_id)
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "item": item, "tab": "hub"}
    if item is None:
        return render(request, "h5/activity.html", context, status=404)
    context["draw_key"] = secrets.token_urlsafe(16)
    if item.status == "scheduled":
        with unit_of_work(read_only=True) as session:
            context["reminded"] = reminders.is_reminded(
                session, user_id=user.principal.user_id, activity_id=activity_id
            )
    if item.kind == "voucher_grab":
        context.update(vouchers.page_context(member_of(user).membership_id, activity_id))
    if item.kind == "vote":
        context.update(vote.page_context(member_of(user), activity_id))
    if item.kind == "competition":
        context.update(competition.page_context(member_of(user), activity_id))
    context.update(extra)
    return render(request, "h5/activity.html", context, status=status)
