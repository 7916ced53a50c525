"""The console's notification pages (消息通知): an org's templates and delivery rules,
broadcasts with their second-person review and progress, and the delivery log (the same
services as ``/api/v1/notifications``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.notifications import broadcasts, service, templates
from gonghui.notifications.models import (
    REASONS,
    BroadcastStatus,
    Channel,
    DeliveryStatus,
    Event,
)
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/notifications", include_in_schema=False)

ACTIVE = "nav.notifications"
LOG_PAGE = 100


def _minute(value: str) -> int | None:
    """ "HH:MM" -> minutes of the day; empty -> None."""
    value = value.strip()
    if not value:
        return None
    hours, _, minutes = value.partition(":")
    return int(hours) * 60 + int(minutes or 0)


def _hhmm(minute: int | None) -> str:
    return "" if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"


def _notice(done: str, error: str) -> dict[str, str | None]:
    return {
        "done": done if done.isidentifier() else None,
        "error": error if error.startswith("error.") else None,
    }


@router.get("", response_class=HTMLResponse)
def templates_page(
    request: Request, user: ConsoleStaff, org_id: Id | None = None, done: str = "", error: str = ""
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        visible = orgs.list_orgs(session, actor=actor)
        chosen = org_id or (visible[0].id if visible else None)
        texts = service.org_templates(session, actor=actor, org_id=chosen) if chosen else []
        rule = service.rules(session, chosen) if chosen else None
    org = next((o for o in visible if o.id == chosen), None)
    context: dict[str, Any] = {
        "active": ACTIVE,
        "csrf_token": user.csrf_token,
        "orgs": visible,
        "org": org,
        "may_manage": bool(org and actor.can(Permission.MEMBERS_MANAGE, org.path)),
        "org_names": {o.id: o.name for o in visible},
        "texts": texts,
        "rule": rule,
        "quiet_start": _hhmm(rule.quiet_start_minute) if rule else "",
        "quiet_end": _hhmm(rule.quiet_end_minute) if rule else "",
        "events": [e.value for e in Event],
        "channels": [c.value for c in Channel],
        "variables": {e.value: templates.VARIABLES[e] for e in Event},
        **_notice(done, error),
    }
    return render(request, "console/notifications.html", context)


@router.post("/templates")
def save_template(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    event: Annotated[Event, Form()],
    channel: Annotated[Channel, Form()],
    title: Annotated[str, Form(max_length=100)],
    body: Annotated[str, Form(max_length=500)],
    enabled: Annotated[bool, Form()] = False,
    wechat_template_id: Annotated[str, Form(max_length=64)] = "",
    wechat_page: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def save() -> None:
        with unit_of_work() as session:
            service.save_template(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                event=event,
                channel=channel,
                enabled=enabled,
                title=title,
                body=body,
                wechat_template_id=wechat_template_id,
                wechat_page=wechat_page,
            )

    return back_to(f"/console/notifications?org_id={org_id}", save, done="template_saved")


@router.post("/rules")
def save_rules(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    daily_cap: Annotated[int, Form(ge=0, le=100)],
    quiet_start: Annotated[str, Form(max_length=5, pattern=r"^(\d{1,2}:\d{2})?$")] = "",
    quiet_end: Annotated[str, Form(max_length=5, pattern=r"^(\d{1,2}:\d{2})?$")] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def save() -> None:
        with unit_of_work() as session:
            service.save_rules(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                quiet_start_minute=_minute(quiet_start),
                quiet_end_minute=_minute(quiet_end),
                daily_cap=daily_cap,
            )

    return back_to(f"/console/notifications?org_id={org_id}", save, done="rules_saved")


# -- broadcasts -------------------------------------------------------------------------------


def _broadcasts_page(
    request: Request,
    user: PageUser,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        listed = broadcasts.list_broadcasts(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
    context = {
        "active": ACTIVE,
        "csrf_token": user.csrf_token,
        "broadcasts": listed,
        "org_names": {o.id: o.name for o in visible},
        "orgs": [o for o in visible if actor.can(Permission.MEMBERS_MANAGE, o.path)],
        "form": form or {"channels": []},
        "error": error,
        "done": done,
    }
    return render(request, "console/notification_broadcasts.html", context, status=status)


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcasts_page(
    request: Request, user: ConsoleStaff, done: str = "", error: str = ""
) -> Response:
    notice = _notice(done, error)
    return _broadcasts_page(request, user, done=notice["done"], error=notice["error"])


@router.post("/broadcasts", response_class=HTMLResponse)
def create_broadcast(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    title: Annotated[str, Form(max_length=100)],
    body: Annotated[str, Form(max_length=500)],
    channels: Annotated[list[Literal["sms", "wechat"]] | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    chosen: list[str] = list(channels or [])
    try:
        with unit_of_work() as session:
            made = broadcasts.create(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                title=title,
                body=body,
                channels=chosen,
            )
            made_id = made.id
    except DomainError as exc:
        form = {"org_id": org_id, "title": title, "body": body, "channels": chosen}
        return _broadcasts_page(request, user, form=form, error=error_key(exc), status=422)
    return RedirectResponse(
        f"/console/notifications/broadcasts/{made_id}?done=broadcast_written", status_code=303
    )


@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(
    request: Request, user: ConsoleStaff, broadcast_id: Id, done: str = "", error: str = ""
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = broadcasts.get(session, actor=actor, broadcast_id=broadcast_id)
        visible = orgs.list_orgs(session, actor=actor)
        org = next((o for o in visible if o.id == found.org_id), None)
        log = service.delivery_log(session, actor=actor, broadcast_id=found.id, limit=LOG_PAGE)
        reach = broadcasts.audience(session, broadcast=found) if found.status == "pending" else 0
    counts: dict[tuple[str, str], int] = {}
    for row in log:
        counts[(row.channel, row.status)] = counts.get((row.channel, row.status), 0) + 1
    context = {
        "active": ACTIVE,
        "csrf_token": user.csrf_token,
        "b": found,
        "org_name": org.name if org else "",
        "reach": reach,
        "may_review": found.status == BroadcastStatus.PENDING
        and found.created_by != actor.user_id
        and bool(org and actor.can(Permission.MEMBERS_MANAGE, org.path)),
        "own": found.created_by == actor.user_id,
        "percent": int(100 * found.sent_count / found.total) if found.total else 0,
        "counts": sorted(counts.items()),
        **_notice(done, error),
    }
    return render(request, "console/notification_broadcast.html", context)


@router.post("/broadcasts/{broadcast_id}/review")
def review_broadcast(
    request: Request,
    user: ConsoleStaff,
    broadcast_id: Id,
    decision: Annotated[Literal["approve", "reject"], Form()],
    note: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def decide() -> None:
        with unit_of_work() as session:
            act = broadcasts.approve if decision == "approve" else broadcasts.reject
            act(session, actor=_actor(request, user), broadcast_id=broadcast_id, note=note)

    return back_to(
        f"/console/notifications/broadcasts/{broadcast_id}", decide, done=f"broadcast_{decision}d"
    )


# -- the delivery log --------------------------------------------------------------------------


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request,
    user: ConsoleStaff,
    status: str = "",
    user_id: str = "",
    before_id: Id | None = None,
) -> Response:
    """The log, filtered by state and by user (the form sends empty fields as "")."""
    actor = _actor(request, user)
    state = DeliveryStatus(status) if status in DeliveryStatus.__members__.values() else None
    who = int(user_id) if user_id.isdigit() and len(user_id) < 19 else None
    with unit_of_work(read_only=True) as session:
        rows = service.delivery_log(
            session,
            actor=actor,
            status=state,
            user_id=who,
            before_id=before_id,
            limit=LOG_PAGE,
        )
        visible = orgs.list_orgs(session, actor=actor)
    context = {
        "active": ACTIVE,
        "csrf_token": user.csrf_token,
        "rows": rows,
        "org_names": {o.id: o.name for o in visible},
        "statuses": [s.value for s in DeliveryStatus],
        "status": state.value if state else "",
        "user_id": who or "",
        "reasons": REASONS,
        "next_before_id": rows[-1].delivery_id if len(rows) == LOG_PAGE else None,
    }
    return render(request, "console/notification_deliveries.html", context)
