"""Console: browsing the roster (masked), exact search by ID number, phone or name through the
blind index, one entry's page with the audited unmask of one field and the transfer
to another org (the same services as the API's ``/orgs/{id}/roster`` and
``/roster/{id}/unmask|transfer``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.members import roster
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org
from gonghui.pii import PiiField
from gonghui.tenancy import Actor, Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/roster/entries", include_in_schema=False)

PAGE = 50
DONE = frozenset({"transferred"})
FIELDS = [f.value for f in PiiField]


def _orgs(session: Session, actor: Actor, permission: Permission) -> list[Org]:
    return [o for o in orgs.list_orgs(session, actor=actor) if actor.can(permission, o.path)]


@router.get("", response_class=HTMLResponse)
def entries_page(
    request: Request,
    user: ConsoleStaff,
    org_id: Id | None = None,
    id_number: Annotated[str, Query(max_length=32)] = "",
    phone: Annotated[str, Query(max_length=32)] = "",
    name: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    actor = _actor(request, user)
    context: dict[str, Any] = {"active": "nav.roster_entries", "csrf_token": user.csrf_token}
    search = {"id_number": id_number.strip(), "phone": phone.strip(), "name": name.strip()}
    with unit_of_work(read_only=True) as session:
        readable = _orgs(session, actor, Permission.MEMBERS_READ)
        chosen = next((o for o in readable if o.id == org_id), readable[0] if readable else None)
        page, error = None, None
        if chosen is not None:
            try:
                page = roster.list_roster(
                    session,
                    actor=actor,
                    org_id=chosen.id,
                    cursor=cursor or None,
                    limit=PAGE,
                    **{k: v or None for k, v in search.items()},
                )
            except DomainError as exc:
                error = error_key(exc)
    next_url = None
    if page is not None and page.next_cursor:
        query = {"org_id": chosen.id if chosen else "", **search, "cursor": page.next_cursor}
        next_url = "/console/roster/entries?" + urlencode(query)
    context.update(
        orgs=readable,
        org=chosen,
        search=search,
        searching=any(search.values()),
        items=page.items if page else [],
        next_url=next_url,
        error=error,
    )
    return render(request, "console/roster_entries.html", context)


def _entry_page(
    request: Request,
    user: PageUser,
    entry_id: int,
    *,
    revealed: dict[str, str | None] | None = None,
    error: str | None = None,
    done: str | None = None,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        entry = roster.get_view(session, actor=actor, entry_id=entry_id)
        org = orgs.get_org(session, actor=actor, org_id=entry.org_id)
        targets = [
            o for o in _orgs(session, actor, Permission.MEMBERS_MANAGE) if o.id != entry.org_id
        ]
    context = {
        "active": "nav.roster_entries",
        "csrf_token": user.csrf_token,
        "entry": entry,
        "fields": FIELDS,
        "may_unmask": actor.can(Permission.PII_UNMASK, org.path),
        "may_transfer": actor.can(Permission.MEMBERS_MANAGE, org.path) and bool(targets),
        "targets": targets,
        "revealed": revealed or {},
        "error": error,
        "done": done,
    }
    response = render(request, "console/roster_entry.html", context)
    if revealed:
        # A clear value is shown in this answer only: nothing keeps it.
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{entry_id}", response_class=HTMLResponse)
def entry_page(request: Request, user: ConsoleStaff, entry_id: Id, done: str = "") -> Response:
    return _entry_page(request, user, entry_id, done=done if done in DONE else None)


@router.post("/{entry_id}/unmask", response_class=HTMLResponse)
def unmask(
    request: Request,
    user: ConsoleStaff,
    entry_id: Id,
    field: Annotated[PiiField, Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """One field in clear, for this answer only; the reading is written to the audit log
    with the reason (the API's rule: a reason of at least two characters)."""
    check_csrf(request, user, csrf)
    if len(reason.strip()) < 2:
        return _entry_page(request, user, entry_id, error="roster.unmask_needs_reason")
    try:
        with unit_of_work() as session:
            value = roster.unmask(
                session,
                actor=_actor(request, user),
                entry_id=entry_id,
                field=field,
                reason=reason.strip(),
            )
    except DomainError as exc:
        return _entry_page(request, user, entry_id, error=error_key(exc))
    return _entry_page(request, user, entry_id, revealed={field.value: value})


@router.post("/{entry_id}/transfer", response_class=HTMLResponse)
def transfer(
    request: Request,
    user: ConsoleStaff,
    entry_id: Id,
    to_org_id: Annotated[Id, Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            roster.transfer(
                session,
                actor=_actor(request, user),
                entry_id=entry_id,
                to_org_id=to_org_id,
                reason=reason.strip() or None,
            )
    except DomainError as exc:
        return _entry_page(request, user, entry_id, error=error_key(exc))
    return RedirectResponse(f"/console/roster/entries/{entry_id}?done=transferred", status_code=303)
