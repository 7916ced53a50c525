"""The members' H5 app: server-rendered pages over the same services as the API."""

from __future__ import annotations

import functools
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui import db, hotwrite
from gonghui.accounts import phone as phones
from gonghui.accounts import wechat
from gonghui.accounts.otp import OtpPurpose, send_code
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import hub
from gonghui.activities.lottery import draw as draws
from gonghui.activities.quiz import attempts
from gonghui.activities.schemas import HubItem, HubPage
from gonghui.benefits import service as benefits
from gonghui.benefits.models import PrizeStatus
from gonghui.benefits.schemas import AddressRequest, PrizeRead, VoucherRead
from gonghui.db import unit_of_work
from gonghui.deployment import dev_conveniences_allowed
from gonghui.errors import DomainError, NotFound
from gonghui.integrations.sms import dev_outbox
from gonghui.members import review, verification
from gonghui.members.errors import MembersError
from gonghui.members.schemas import ReviewBrief
from gonghui.orgs import service as orgs
from gonghui.settings import get_settings
from gonghui.types import Id
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translate, translator
from gonghui.web.qr import qr_svg
from gonghui.web.session import (
    LoginRequired,
    PageUser,
    check_csrf,
    check_same_origin,
    current_page_user,
    set_sign_in_cookies,
    sign_out,
)
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/h5", include_in_schema=False)


def h5_user(request: Request, response: Response) -> PageUser:
    user = current_page_user(request, response)
    if user is None:
        raise LoginRequired("/h5/login")
    return user


def h5_member(request: Request, response: Response) -> PageUser:
    user = h5_user(request, response)
    if user.principal.member is None:
        raise LoginRequired("/h5/verify")
    return user


H5User = Annotated[PageUser, Depends(h5_user)]
H5Member = Annotated[PageUser, Depends(h5_member)]


def _member(user: PageUser) -> MemberInfo:
    assert user.principal.member is not None
    return user.principal.member


def _dev_sms_shown() -> bool:
    return dev_conveniences_allowed()


def _login_page(request: Request, **context: Any) -> Response:
    phone = context.get("phone")
    if phone and context.get("sent") and _dev_sms_shown():
        messages = dev_outbox(phone)
        context["dev_code"] = messages[-1]["code"] if messages else None
    return render(request, "h5/login.html", context)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _login_page(request)


@router.post("/login/code", response_class=HTMLResponse)
def send_login_code(request: Request, phone: Annotated[str, Form(max_length=20)]) -> Response:
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            sent = send_code(
                session,
                phone=phone,
                purpose=OtpPurpose.LOGIN,
                ip=request.client.host if request.client else None,
            )
    except DomainError as exc:
        return _login_page(request, phone=phone, error=error_key(exc))
    return _login_page(request, phone=phone, sent=sent.phone_masked)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    phone: Annotated[str, Form(max_length=20)],
    code: Annotated[str, Form(max_length=10)],
) -> Response:
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            pair = phones.sign_in_with_sms(
                session,
                phone=phone,
                code=code.strip(),
                channel="h5",
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except DomainError as exc:
        return _login_page(request, phone=phone, sent=True, error=error_key(exc))
    response = RedirectResponse("/h5/", status_code=303)
    set_sign_in_cookies(response, pair)
    return response


@router.post("/logout")
def logout(request: Request, user: H5User, csrf: Annotated[str, Form()] = "") -> Response:
    return sign_out(request, user, csrf, then="/h5/login")


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


HUB_PAGE_SIZE = 20


def _hub_page(user: PageUser, cursor: str | None) -> HubPage:
    return db.read_sync(
        functools.partial(hub.member_hub, member=_member(user), cursor=cursor, limit=HUB_PAGE_SIZE)
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


def _hub_item(user: PageUser, activity_id: Id) -> HubItem | None:
    try:
        return db.read_sync(
            functools.partial(hub.member_activity, member=_member(user), activity_id=activity_id)
        )
    except NotFound:
        return None


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
def activity_page(request: Request, user: H5Member, activity_id: Id) -> Response:
    item = _hub_item(user, activity_id)
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "item": item, "tab": "hub"}
    if item is None:
        return render(request, "h5/activity.html", context, status=404)
    context["draw_key"] = secrets.token_urlsafe(16)
    return render(request, "h5/activity.html", context)


@router.post("/activities/{activity_id}/draw", response_class=HTMLResponse)
def draw(
    request: Request,
    user: H5Member,
    activity_id: Id,
    entropy: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = "",
    draw_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        result = hotwrite.run(
            draws.draw,
            member=_member(user),
            activity_id=activity_id,
            client_entropy=entropy,
            idempotency_key=draw_key or None,
        )
    except DomainError as exc:
        return render(request, "h5/_draw_result.html", {"error": error_key(exc)})
    return render(
        request,
        "h5/_draw_result.html",
        {"result": result, "next_key": secrets.token_urlsafe(16)},
    )


def _wallet_page(request: Request, user: PageUser, **extra: Any) -> Response:
    with unit_of_work(read_only=True) as session:
        wallet = benefits.wallet(session, membership_id=_member(user).membership_id)
        vouchers = [
            {"voucher": VoucherRead.model_validate(v), "qr": qr_svg(v.code)}
            for v in wallet.vouchers
        ]
        prizes = [PrizeRead.model_validate(p) for p in wallet.prizes]
    context: dict[str, Any] = {
        "csrf_token": user.csrf_token,
        "points": wallet.points,
        "vouchers": vouchers,
        "prizes": prizes,
        "awaiting": PrizeStatus.AWAITING_ADDRESS,
        "tab": "wallet",
    }
    context.update(extra)
    return render(request, "h5/wallet.html", context)


@router.get("/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, user: H5Member, claimed: int = 0) -> Response:
    return _wallet_page(request, user, claimed=bool(claimed))


@router.get("/prizes/{prize_id}/address", response_class=HTMLResponse)
def address_page(request: Request, user: H5Member, prize_id: Id) -> Response:
    return render(
        request,
        "h5/address.html",
        {"csrf_token": user.csrf_token, "prize_id": prize_id, "tab": "wallet", "fields": {}},
    )


@router.post("/prizes/{prize_id}/address", response_class=HTMLResponse)
def give_address(
    request: Request,
    user: H5Member,
    prize_id: Id,
    name: Annotated[str, Form(max_length=50)],
    phone: Annotated[str, Form(max_length=20)],
    address: Annotated[str, Form(max_length=300)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    fields: dict[str, str] = {}
    locale = request_locale(request)
    body: AddressRequest | None = None
    try:
        # The API's own request model holds the rules of a valid address.
        body = AddressRequest(name=name.strip(), phone=phone.strip(), address=address.strip())
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0])
            fields[field] = translate(locale, f"address.invalid_{field}")
    error = None
    if body is not None:
        try:
            hotwrite.run(
                benefits.give_address_once,
                membership_id=_member(user).membership_id,
                prize_id=prize_id,
                name=body.name,
                phone=body.phone,
                address=body.address,
                idempotency_key=None,
            )
        except DomainError as exc:
            error = error_key(exc)
        else:
            return RedirectResponse("/h5/wallet?" + urlencode({"claimed": 1}), status_code=303)
    context = {
        "csrf_token": user.csrf_token,
        "prize_id": prize_id,
        "tab": "wallet",
        "fields": fields,
        "error": error,
        "name": name,
        "phone": phone,
        "address": address,
    }
    return render(request, "h5/address.html", context)


@router.post("/activities/{activity_id}/quiz", response_class=HTMLResponse)
def start_quiz(
    request: Request, user: H5Member, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    item = _hub_item(user, activity_id)
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "item": item, "tab": "hub"}
    try:
        attempt = hotwrite.run(
            attempts.start_attempt, member=_member(user), activity_id=activity_id
        )
    except DomainError as exc:
        context["error"] = error_key(exc)
        if item is not None:
            context["draw_key"] = secrets.token_urlsafe(16)
        return render(request, "h5/activity.html", context, status=404 if item is None else 200)
    context.update(attempt=attempt, submit_key=secrets.token_urlsafe(16))
    return render(request, "h5/quiz.html", context)


@router.post("/quiz/{attempt_id}", response_class=HTMLResponse)
async def submit_quiz(request: Request, user: H5Member, attempt_id: Id) -> Response:
    form = await request.form()
    check_csrf(request, user, str(form.get("csrf") or ""))
    answers: dict[int, list[int]] = {}
    for key, value in form.multi_items():
        if key.startswith("q_") and key[2:].isdigit() and str(value).isdigit():
            answers.setdefault(int(key[2:]), []).append(int(str(value)))
    activity_id = int(str(form.get("activity_id") or 0))
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "tab": "hub"}
    try:
        submit_key = str(form.get("submit_key") or "") or None
        result = await hotwrite.run_async(
            attempts.submit,
            member=_member(user),
            attempt_id=attempt_id,
            answers=answers,
            idempotency_key=submit_key,
        )
    except DomainError as exc:
        context["error"] = error_key(exc)
        return render(request, "h5/quiz_result.html", context)
    context.update(result=result, activity_id=activity_id)
    return render(request, "h5/quiz_result.html", context)


WECHAT_STATE_COOKIE = "gh_wx_state"
WECHAT_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"


def _wechat_simulated() -> bool:
    return dev_conveniences_allowed() and not get_settings().wechat_base_url


@router.get("/login/wechat")
def wechat_start() -> Response:
    """Official-account OAuth: to WeChat's consent page (the simulator's outside
    production), which comes back to the callback with a code."""
    settings = get_settings()
    state = secrets.token_urlsafe(16)
    if _wechat_simulated():
        target = "/h5/login/wechat/sim?" + urlencode({"state": state})
    else:
        callback = settings.public_base_url.rstrip("/") + "/h5/login/wechat/callback"
        query = urlencode(
            {
                "appid": settings.wechat_oa_appid,
                "redirect_uri": callback,
                "response_type": "code",
                "scope": "snsapi_userinfo",
                "state": state,
            }
        )
        target = f"{WECHAT_AUTHORIZE}?{query}#wechat_redirect"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        WECHAT_STATE_COOKIE,
        state,
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=settings.public_base_url.startswith("https"),
        path="/h5/login/wechat",
    )
    return response


@router.get("/login/wechat/sim", response_class=HTMLResponse)
def wechat_simulated_consent(request: Request, state: str = "") -> Response:
    if not _wechat_simulated():
        return RedirectResponse("/h5/login", status_code=303)
    return render(request, "h5/wechat_sim.html", {"state": state})


@router.post("/login/wechat/sim")
def wechat_simulated_allow(
    request: Request,
    nickname: Annotated[str, Form(min_length=1, max_length=32)],
    state: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The development stand-in for the user tapping "allow" in WeChat: the simulator mints
    the OAuth code that WeChat would put on the redirect."""
    check_same_origin(request)
    if not _wechat_simulated():
        return RedirectResponse("/h5/login", status_code=303)
    settings = get_settings()
    minted = httpx.post(
        settings.resolved_wechat_base_url + "/_control/login-code",
        json={"appid": settings.wechat_oa_appid, "person": nickname, "nickname": nickname},
        timeout=10,
    )
    minted.raise_for_status()
    query = urlencode({"code": minted.json()["code"], "state": state})
    return RedirectResponse(f"/h5/login/wechat/callback?{query}", status_code=303)


@router.get("/login/wechat/callback", response_class=HTMLResponse)
def wechat_callback(request: Request, code: str = "", state: str = "") -> Response:
    expected = request.cookies.get(WECHAT_STATE_COOKIE) or ""
    if not code or not expected or not secrets.compare_digest(state, expected):
        return _login_page(request, error="h5.wechat_state")
    try:
        with unit_of_work() as session:
            pair = wechat.sign_in_with_official_account(
                session,
                code=code,
                channel="h5",
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except DomainError as exc:
        return _login_page(request, error=error_key(exc))
    response = RedirectResponse("/h5/", status_code=303)
    response.delete_cookie(WECHAT_STATE_COOKIE, path="/h5/login/wechat")
    set_sign_in_cookies(response, pair)
    return response
