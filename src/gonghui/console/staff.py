"""Console: the staff of an org (within the caller's subtree) with their roles; granting a
role to a staff account and revoking a grant (the same services as the API's
``/orgs/{id}/staff``, which refuse what the caller may not do)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.accounts import service as accounts
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Role
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/staff", include_in_schema=False)

DONE = frozenset({"granted", "revoked"})


def _back(org_id: int, **query: str) -> RedirectResponse:
    return RedirectResponse(
        f"/console/staff?{urlencode({'org_id': org_id, **query})}", status_code=303
    )


@router.get("", response_class=HTMLResponse)
def staff_page(
    request: Request,
    user: ConsoleStaff,
    org_id: Id | None = None,
    done: str = "",
    error: str = "",
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        visible = orgs.list_orgs(session, actor=actor)
        chosen = next((o for o in visible if o.id == org_id), None)
        if chosen is None and visible:
            chosen = visible[0]
        grants = orgs.list_staff(session, actor=actor, org_id=chosen.id) if chosen else []
        ids = {g.user_id for g in grants}
        names = accounts.usernames(session, user_ids=ids)
        shown = {i: u.display_name for i in ids if (u := accounts.get_user(session, user_id=i))}
    rows: list[dict[str, Any]] = [
        {
            "grant": g,
            "username": names.get(g.user_id, ""),
            "display_name": shown.get(g.user_id, ""),
            "me": g.user_id == actor.user_id,
        }
        for g in grants
    ]
    context = {
        "active": "nav.staff",
        "csrf_token": user.csrf_token,
        "orgs": visible,
        "org": chosen,
        "rows": rows,
        "may_manage": chosen is not None and actor.can(Permission.STAFF_MANAGE, chosen.path),
        "roles": [r.value for r in Role],
        "done": done if done in DONE else None,
        "error": error if error.startswith("error.") else None,
    }
    return render(request, "console/staff.html", context)


@router.post("/grants")
def grant(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[Role, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            found = accounts.find_user_by_username(session, username=username)
            # The service checks the caller's right over the org before the user: an
            # unknown name (user 0, never an id) reads as "no such user" only to those who
            # may grant there.
            orgs.grant_role(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                user_id=found.id if found else 0,
                role=role,
            )
    except DomainError as exc:
        return _back(org_id, error=error_key(exc))
    return _back(org_id, done="granted")


@router.post("/grants/revoke")
def revoke(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    user_id: Annotated[Id, Form()],
    role: Annotated[Role, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            orgs.revoke_role(
                session, actor=_actor(request, user), org_id=org_id, user_id=user_id, role=role
            )
    except DomainError as exc:
        return _back(org_id, error=error_key(exc))
    return _back(org_id, done="revoked")
