"""Membership verification against the roster, and a manual review with a proof when it fails."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5User
from gonghui.members import review, verification
from gonghui.members.errors import MembersError
from gonghui.members.schemas import ReviewBrief
from gonghui.orgs import service as orgs
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter()


# Verification failures an operator can resolve by looking at a proof.
# A locked ID number is not matched, but its owner may still ask for a review.
_REVIEWABLE = frozenset({MembersError.VERIFICATION_FAILED, MembersError.VERIFY_LOCKED})


def _latest_review(user: PageUser) -> ReviewBrief | None:
    with unit_of_work(read_only=True) as session:
        found = review.latest_for_user(session, user_id=user.principal.user_id)
        return ReviewBrief.model_validate(found) if found else None


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, user: H5User, requested: int = 0) -> Response:
    if user.principal.member is not None:
        return RedirectResponse("/h5/", status_code=303)
    context = {
        "csrf_token": user.csrf_token,
        "review": _latest_review(user),
        "requested": bool(requested),
    }
    return render(request, "h5/verify.html", context)


@router.post("/verify", response_class=HTMLResponse)
def verify_membership(
    request: Request,
    user: H5User,
    name: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    locale = request_locale(request)
    t = translator(locale)

    try:
        with unit_of_work() as session:
            verification.verify_member(
                session,
                user_id=user.principal.user_id,
                name=name,
                id_number=id_number,
                channel=verification.Channel.H5,
                ip=request.client.host if request.client else None,
            )
    except DomainError as exc:
        if exc.code == MembersError.SENT_TO_REVIEW:
            return RedirectResponse("/h5/verify?requested=1", status_code=303)
        fields = field_errors(exc, t)
        context = {
            "csrf_token": user.csrf_token,
            "name": name,
            "id_number": id_number,
            "fields": fields,
            "error": None if fields else error_key(exc),
            "offer_review": exc.code in _REVIEWABLE,
            "review": _latest_review(user),
        }
        return render(request, "h5/verify.html", context)
    return RedirectResponse("/h5/?verified=1", status_code=303)


def _review_form(request: Request, user: PageUser, **context: Any) -> Response:
    context.setdefault("fields", {})
    return render(request, "h5/review.html", {"csrf_token": user.csrf_token, **context})


@router.get("/verify/review", response_class=HTMLResponse)
def review_form(request: Request, user: H5User) -> Response:
    if user.principal.member is not None:
        return RedirectResponse("/h5/", status_code=303)
    return _review_form(request, user)


@router.post("/verify/review/form", response_class=HTMLResponse)
def review_form_filled(
    request: Request,
    user: H5User,
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=32)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The review form, filled with what the member just typed on the verification form
    (a POST, so that the ID number never appears in a URL)."""
    check_csrf(request, user, csrf)
    return _review_form(request, user, name=name, id_number=id_number)


@router.post("/verify/review", response_class=HTMLResponse)
def request_review(
    request: Request,
    user: H5User,
    name: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=32)],
    org_code: Annotated[str, Form(max_length=32)],
    proof: Annotated[UploadFile | None, File()] = None,
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    locale = request_locale(request)
    t = translator(locale)

    has_file = proof is not None and bool(proof.filename)
    context: dict[str, Any] = {
        "name": name,
        "id_number": id_number,
        "org_code": org_code,
        "note": note,
    }
    if not has_file:
        return _review_form(
            request, user, fields={"proof": t("h5.review_proof_missing")}, **context
        )
    assert proof is not None
    try:
        # The org is looked up apart: the request must come first in its unit of work.
        with unit_of_work(read_only=True) as session:
            org = orgs.public_org_by_code(session, code=org_code)
        with unit_of_work() as session:
            review.create_request(
                session,
                user_id=user.principal.user_id,
                org_id=org.id,
                name=name,
                id_number=id_number,
                note=note.strip() or None,
                proof=proof.file,
                ip=request.client.host if request.client else None,
            )
    except DomainError as exc:
        fields = field_errors(exc, t)
        error = None if fields else error_key(exc)
        return _review_form(request, user, fields=fields, error=error, **context)
    return RedirectResponse("/h5/verify?requested=1", status_code=303)
