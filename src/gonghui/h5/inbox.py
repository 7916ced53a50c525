"""The member's inbox (消息): their notifications, newest first, each channel's delivery
state, marking read; the unread badge the hub loads; "remind me" on a scheduled activity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5Member, H5User, member_of
from gonghui.notifications import reminders, service
from gonghui.notifications.models import REASONS
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter()

PAGE_SIZE = 30


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request, user: H5User, before_id: Id | None = None) -> Response:
    user_id = user.principal.user_id
    with unit_of_work(read_only=True) as session:
        items = service.inbox(session, user_id=user_id, limit=PAGE_SIZE, before_id=before_id)
        deliveries = service.deliveries_of(session, [n.id for n in items])
        unread = service.unread_count(session, user_id=user_id)
    return render(
        request,
        "h5/inbox.html",
        {
            "csrf_token": user.csrf_token,
            "tab": "inbox",
            "items": items,
            "deliveries": deliveries,
            "unread": unread,
            "reasons": REASONS,
            "next_before_id": items[-1].id if len(items) == PAGE_SIZE else None,
        },
    )


@router.get("/inbox/badge", response_class=HTMLResponse)
def inbox_badge(request: Request, user: H5User) -> Response:
    """The hub's link to the inbox with the unread count (loaded after the hub, so that the
    hub's own read stays one query)."""
    with unit_of_work(read_only=True) as session:
        unread = service.unread_count(session, user_id=user.principal.user_id)
    return render(request, "h5/_inbox_badge.html", {"unread": unread})


@router.post("/inbox/read")
def mark_read(
    request: Request,
    user: H5User,
    notification_id: Annotated[Id | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Mark one notification read (``notification_id``), or all of them."""
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        service.mark_read(session, user_id=user.principal.user_id, notification_id=notification_id)
    return RedirectResponse("/h5/inbox", status_code=303)


@router.post("/activities/{activity_id}/remind")
def remind_me(
    request: Request,
    user: H5Member,
    activity_id: Id,
    remind: Annotated[bool, Form()] = True,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    target = f"/h5/activities/{activity_id}"
    try:
        with unit_of_work() as session:
            if remind:
                reminders.remind(
                    session,
                    user_id=user.principal.user_id,
                    member=member_of(user),
                    activity_id=activity_id,
                )
            else:
                reminders.forget(session, user_id=user.principal.user_id, activity_id=activity_id)
    except DomainError as exc:
        return RedirectResponse(f"{target}?error={error_key(exc)}", status_code=303)
    return RedirectResponse(
        f"{target}?done={'reminded' if remind else 'unreminded'}", status_code=303
    )
