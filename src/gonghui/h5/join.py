"""Joining the union (入会申请), moving to another (转会), leaving (退会), and the member's
history of them, over :mod:`gonghui.members.joining` and :mod:`gonghui.members.moving`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5User
from gonghui.members import joining, moving, requests, review
from gonghui.orgs.models import Org
from gonghui.types import Id
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter()


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _chooser(
    request: Request, user: PageUser, area_id: int | None, q: str, org_code: str
) -> tuple[dict[str, Any], Org | None]:
    """The union chooser's state: the areas, a search's results, the union chosen by code.
    Its refusals (a throttled search, an unknown code) are shown, not raised."""
    context: dict[str, Any] = {"area_id": area_id, "q": q, "org_code": org_code, "results": None}
    chosen = None
    try:
        if area_id is not None:
            with unit_of_work(read_only=True) as session:
                found = joining.search_unions(
                    session,
                    user_id=user.principal.user_id,
                    area_id=area_id,
                    query=q,
                    ip=_ip(request),
                )
                context["results"] = [(o.code, o.name) for o in found]
        with unit_of_work(read_only=True) as session:
            context["areas"] = [(o.id, o.name, o.level) for o in joining.areas(session)]
            if org_code:
                chosen = joining.open_union(session, code=org_code)
    except DomainError as exc:
        context["choose_error"] = error_key(exc)
    return context, chosen


@router.get("/join", response_class=HTMLResponse)
def join_page(
    request: Request,
    user: H5User,
    area_id: Id | None = None,
    q: Annotated[str, Query(max_length=50)] = "",
    org_code: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """Choose a union (by its code, or by name within a city or district), then apply."""
    if user.principal.member is not None:
        return RedirectResponse("/h5/membership", status_code=303)
    context, chosen = _chooser(request, user, area_id, q, org_code)
    with unit_of_work(read_only=True) as session:
        pending = requests.pending_for_user(session, user_id=user.principal.user_id)
        phone = joining.account_phone(session, user_id=user.principal.user_id)
    context |= {"csrf_token": user.csrf_token, "pending": pending is not None, "fields": {}}
    if chosen is not None:
        context |= {"org": chosen, "phone": phone}
    return render(request, "h5/join.html", context)


@router.post("/join", response_class=HTMLResponse)
@max_body(review.PROOF_MAX_BYTES + MULTIPART_FRAMING)
def apply_to_join(
    request: Request,
    user: H5User,
    org_code: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=32)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    employer: Annotated[str, Form(max_length=200)] = "",
    job: Annotated[str, Form(max_length=100)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    proof: Annotated[UploadFile | None, File()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    t = translator(request_locale(request))
    form = {
        "name": name,
        "id_number": id_number,
        "phone": phone,
        "employer": employer,
        "job": job,
        "note": note,
    }
    context, org = _chooser(request, user, None, "", org_code)
    context |= {"csrf_token": user.csrf_token, "pending": False, "org": org, **form}
    if org is None:
        return render(request, "h5/join.html", context)
    if proof is None or not proof.filename:
        context["fields"] = {"proof": t("h5.review_proof_missing")}
        return render(request, "h5/join.html", context)
    try:
        with unit_of_work() as session:
            joining.apply(
                session,
                user_id=user.principal.user_id,
                org_id=org.id,
                name=name,
                id_number=id_number,
                phone=phone,
                employer=employer,
                job=job,
                note=note.strip() or None,
                proof=proof.file,
                ip=_ip(request),
            )
    except DomainError as exc:
        fields = field_errors(exc, t)
        context |= {"fields": fields, "error": None if fields else error_key(exc)}
        return render(request, "h5/join.html", context)
    return RedirectResponse("/h5/membership?done=applied", status_code=303)


_DONE = frozenset({"applied", "transfer", "leave", "withdrawn"})


@router.get("/membership", response_class=HTMLResponse)
def membership_page(request: Request, user: H5User, done: str = "", error: str = "") -> Response:
    """My membership history: applications, transfers and leaving, with the union's notes."""
    member = user.principal.member
    with unit_of_work(read_only=True) as session:
        items = [
            requests.view(session, r)
            for r in requests.history(session, user_id=user.principal.user_id)
        ]
        current = session.get(Org, member.org_id) if member is not None else None
    context = {
        "current_org": current.name if current else None,
        "csrf_token": user.csrf_token,
        "items": items,
        "member": user.principal.member,
        "pending": any(i.status == "pending" for i in items),
        "done": done if done in _DONE else None,
        "error": error if error.startswith("error.") else None,
    }
    if user.principal.member is not None:
        context["tab"] = "wallet"
    return render(request, "h5/membership.html", context)


@router.get("/membership/transfer", response_class=HTMLResponse)
def transfer_page(
    request: Request,
    user: H5User,
    area_id: Id | None = None,
    q: Annotated[str, Query(max_length=50)] = "",
    org_code: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """Choose the union to move to, as when joining."""
    if user.principal.member is None:
        return RedirectResponse("/h5/membership", status_code=303)
    context, chosen = _chooser(request, user, area_id, q, org_code)
    context |= {"csrf_token": user.csrf_token, "org": chosen, "tab": "wallet"}
    return render(request, "h5/membership_transfer.html", context)


@router.post("/membership/transfer", response_class=HTMLResponse)
def ask_transfer(
    request: Request,
    user: H5User,
    org_id: Annotated[Id, Form()],
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return _ask(
        lambda session: moving.request_transfer(
            session,
            user_id=user.principal.user_id,
            to_org_id=org_id,
            note=note.strip() or None,
            ip=_ip(request),
        ),
        done="transfer",
    )


@router.post("/membership/leave", response_class=HTMLResponse)
def ask_leave(
    request: Request,
    user: H5User,
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return _ask(
        lambda session: moving.request_leave(
            session, user_id=user.principal.user_id, note=note.strip() or None, ip=_ip(request)
        ),
        done="leave",
    )


@router.post("/membership/requests/{request_id}/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request, user: H5User, request_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    return _ask(
        lambda session: requests.withdraw(
            session, user_id=user.principal.user_id, request_id=request_id
        ),
        done="withdrawn",
    )


def _ask(action: Any, *, done: str) -> Response:
    try:
        with unit_of_work() as session:
            action(session)
    except DomainError as exc:
        return RedirectResponse(f"/h5/membership?error={error_key(exc)}", status_code=303)
    return RedirectResponse(f"/h5/membership?done={done}", status_code=303)
