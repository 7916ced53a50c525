"""The operators' console: server-rendered pages over the same services as the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from gonghui.accounts import service as accounts
from gonghui.accounts import totp
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.totp import TotpChallenge
from gonghui.activities import overview
from gonghui.audit import service as audit
from gonghui.clock import display_zone
from gonghui.console import nav
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, PermissionDenied, RateLimited, Unauthenticated
from gonghui.members import requests, review
from gonghui.operations import service as operations
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel
from gonghui.risk import flags
from gonghui.tenancy import Actor, Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import (
    LoginRequired,
    PageUser,
    check_csrf,
    check_same_origin,
    current_page_user,
    set_sign_in_cookies,
    sign_out,
)
from gonghui.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)


def console_staff(request: Request) -> PageUser:
    """The signed-in staff member, on a page of a section open to them (console/nav.py)."""
    user = current_page_user(request)
    actor = user.principal.actor() if user is not None else None
    if user is None or actor is None or not actor.is_staff:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired("/console/login?" + urlencode({"next": target}))
    # The layout lists the sections this staff member can use, and an error page keeps it.
    request.state.sections = nav.sections_for(actor)
    request.state.csrf_token = user.csrf_token
    section = request.state.section = nav.section_of(request.url.path)
    if section is not None and section not in request.state.sections:
        raise PermissionDenied(
            "console.section_closed", "your roles do not open this section of the console"
        )
    return user


ConsoleStaff = Annotated[PageUser, Depends(console_staff)]


def _actor(request: Request, user: PageUser) -> Actor:
    return user.principal.actor(request.client.host if request.client else None)


def back_to(target: str, action: Callable[[], object], *, done: str = "") -> RedirectResponse:
    """Run a console form's action, then back to ``target`` (303: post, redirect, get):
    with ``?done=<done>`` when given, or the refusal's message key as ``?error=``."""
    joint = "&" if "?" in target else "?"
    try:
        action()
    except DomainError as exc:
        return RedirectResponse(f"{target}{joint}error={error_key(exc)}", status_code=303)
    return RedirectResponse(f"{target}{joint}done={done}" if done else target, status_code=303)


def _safe_next(next_url: str | None) -> str:
    # Only same-site paths: never an open redirect.
    # The till signs in here too and goes back to /cashier.
    if next_url and next_url.startswith(("/console", "/cashier")) and "//" not in next_url:
        return next_url
    return "/console/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "console/login.html", {"next_url": _safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form()] = "/console/",
) -> Response:
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            pair = accounts.sign_in_with_password(
                session,
                username=username,
                password=password,
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except (Unauthenticated, RateLimited) as exc:
        error = "login.failed" if isinstance(exc, Unauthenticated) else error_key(exc)
        context = {"error": error, "username": username, "next_url": _safe_next(next)}
        # A form shown again with its error is a normal page (200), as browsers expect.
        return render(request, "console/login.html", context)
    if isinstance(pair, TotpChallenge):
        return render(
            request,
            "console/login_totp.html",
            {"challenge": pair.challenge, "next_url": _safe_next(next)},
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_sign_in_cookies(response, pair)
    return response


@router.post("/login/totp")
def login_totp(
    request: Request,
    challenge: Annotated[str, Form(max_length=1000)],
    code: Annotated[str, Form(max_length=16)],
    next: Annotated[str, Form()] = "/console/",
) -> Response:
    """The second step of signing in, for staff who turned on two-step sign-in."""
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            pair = totp.complete_sign_in(
                session,
                challenge=challenge,
                code=code,
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except Unauthenticated as exc:
        if exc.code == AccountsError.TOTP_CHALLENGE_INVALID:
            context = {"error": error_key(exc), "next_url": _safe_next(next)}
            return render(request, "console/login.html", context)
        context = {"error": error_key(exc), "challenge": challenge, "next_url": _safe_next(next)}
        return render(request, "console/login_totp.html", context)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_sign_in_cookies(response, pair)
    return response


@router.post("/logout")
def logout(request: Request, user: ConsoleStaff, csrf: Annotated[str, Form()] = "") -> Response:
    return sign_out(request, user, csrf, then="/console/login")


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: ConsoleStaff) -> Response:
    """The dashboard: what runs and what waits in the caller's subtree, every figure one
    indexed COUNT or a short list, each linked to its page."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        me = accounts.get_user(session, user_id=user.principal.user_id)
        names = {
            g.org_id: orgs.get_org(session, actor=actor, org_id=g.org_id).name
            for g in user.principal.grants
        }
        to_ship, shipping = overview.prizes_to_ship(session, actor=actor)
        figures = {
            "live": overview.count_live(session, actor=actor),
            "live_list": overview.live_activities(session, actor=actor),
            "reviews": review.count_pending(session, actor=actor),
            "applications": requests.count_pending(session, actor=actor),
            "participation": overview.participation_today(session, actor=actor),
            "risk_flags": flags.count_open(session, actor=actor),
            "to_ship": to_ship,
            "shipping": shipping,
            "low_budgets": overview.budgets_running_low(session, actor=actor),
            "dead_tasks": (
                operations.count_dead(session, actor=actor)
                if operations.may_operate(actor)
                else None
            ),
        }
    roles = [{"role": g.role, "org_name": names[g.org_id]} for g in user.principal.grants]
    return render(
        request,
        "console/home.html",
        {
            "active": "nav.home",
            "csrf_token": user.csrf_token,
            "display_name": me.display_name if me else "",
            "roles": roles,
            "offered": {s.href for s in request.state.sections},
            **figures,
        },
    )


def _orgs_page(
    request: Request, user: PageUser, *, created: str | None = None, error: str | None = None
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        visible = orgs.list_orgs(session, actor=actor)
    ids = {o.id for o in visible}
    children: dict[int | None, list[Org]] = {}
    for org in visible:
        # An org whose parent is out of view is a root of this staff member's view.
        children.setdefault(org.parent_id if org.parent_id in ids else None, []).append(org)
    manageable = [
        o
        for o in visible
        if actor.can(Permission.ORGS_MANAGE, o.path) and o.level != OrgLevel.GRASSROOTS
    ]
    return render(
        request,
        "console/orgs.html",
        {
            "active": "nav.orgs",
            "csrf_token": user.csrf_token,
            "orgs": visible,
            "children": children,
            "manageable": manageable,
            "created": created,
            "error": error,
        },
    )


@router.get("/orgs", response_class=HTMLResponse)
def orgs_page(request: Request, user: ConsoleStaff) -> Response:
    return _orgs_page(request, user)


@router.post("/orgs", response_class=HTMLResponse)
def create_org(
    request: Request,
    user: ConsoleStaff,
    parent_id: Annotated[Id, Form()],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    code: Annotated[str, Form(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")],
    level: Annotated[OrgLevel, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            org = orgs.create_org(
                session,
                actor=_actor(request, user),
                code=code,
                name=name,
                level=level,
                parent_id=parent_id,
            )
            created = org.name
    except DomainError as exc:
        return _orgs_page(request, user, error=error_key(exc))
    return _orgs_page(request, user, created=created)


def _day_start(value: str | None, *, plus_days: int = 0) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value) + timedelta(days=plus_days)
    except ValueError:
        return None
    return datetime.combine(day, time(), tzinfo=display_zone())


def _audit_actor(session: Session, by: str) -> int | None:
    """The user a filter of the audit log names: a staff member's username, else a user
    id (members have no username)."""
    if not by:
        return None
    found = accounts.find_user_by_username(session, username=by)
    if found is not None:
        return found.id
    return int(by) if by.isdigit() and len(by) <= 18 else None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: ConsoleStaff,
    action: str | None = None,
    by: Annotated[str, Query(max_length=64)] = "",
    since: str | None = None,
    until: str | None = None,
    before_id: Id | None = None,
) -> Response:
    """The audit log, newest first; ``by`` is a staff member's username or a user id."""
    actor = _actor(request, user)
    context: dict[str, object] = {"active": "nav.audit", "csrf_token": user.csrf_token}
    by = by.strip()
    with unit_of_work(read_only=True) as session:
        by_user_id = _audit_actor(session, by)
        query = audit.AuditQuery(
            action=action or None,
            actor_user_id=by_user_id,
            since=_day_start(since),
            until=_day_start(until, plus_days=1),
            before_id=before_id,
            limit=50,
        )
        # Someone unknown did nothing: no entries, and the page says whom it did not find.
        unknown_by = bool(by) and by_user_id is None
        entries = [] if unknown_by else audit.search(session, actor=actor, query=query)
        # Staff by their sign-in name, as actors and as subjects (a role granted to them),
        # keyed by the id as the entry holds it (an actor's number, a subject's text).
        users = {e.actor_user_id for e in entries if e.actor_user_id is not None} | {
            int(e.subject_id)
            for e in entries
            if e.subject_type == "user" and e.subject_id and e.subject_id.isdigit()
        }
        names = accounts.usernames(session, user_ids=users)
        usernames = {key: name for i, name in names.items() for key in (i, str(i))}
        org_names = {o.id: o.name for o in orgs.list_orgs(session, actor=actor)}
    next_before_id = entries[-1].id if len(entries) == query.limit else None
    params = {k: v for k, v in request.query_params.items() if k != "before_id"}
    context.update(
        entries=entries,
        query=query,
        by=by,
        unknown_by=unknown_by,
        usernames=usernames,
        since=since,
        until=until,
        org_names=org_names,
        next_before_id=next_before_id,
        next_url="/console/audit?" + urlencode({**params, "before_id": next_before_id or ""}),
    )
    return render(request, "console/audit.html", context)
