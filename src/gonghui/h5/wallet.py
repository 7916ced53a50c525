"""The wallet: points, vouchers and prizes, and the delivery address of a physical prize."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui import hotwrite
from gonghui.benefits import service as benefits
from gonghui.benefits.models import PrizeStatus, VoucherStatus
from gonghui.benefits.schemas import AddressRequest, PrizeRead, VoucherRead
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5Member, member_of
from gonghui.merchants import codes, redeem
from gonghui.merchants import directory as merchants
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.i18n import translate
from gonghui.web.qr import qr_svg
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter()


def _wallet_page(request: Request, user: PageUser, **extra: Any) -> Response:
    with unit_of_work(read_only=True) as session:
        wallet = benefits.wallet(session, membership_id=member_of(user).membership_id)
        names = merchants.names(session, wallet.merchant_ids())
        vouchers = [VoucherRead.of(v, names) for v in wallet.vouchers]
        prizes = [PrizeRead.model_validate(p) for p in wallet.prizes]
    context: dict[str, Any] = {
        "csrf_token": user.csrf_token,
        "points": wallet.points,
        "vouchers": vouchers,
        "prizes": prizes,
        "awaiting": PrizeStatus.AWAITING_ADDRESS,
        "issued": VoucherStatus.ISSUED,
        "tab": "wallet",
    }
    context.update(extra)
    return render(request, "h5/wallet.html", context)


@router.get("/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, user: H5Member, claimed: int = 0) -> Response:
    return _wallet_page(request, user, claimed=bool(claimed))


@router.get("/wallet/vouchers/{voucher_id}/code", response_class=HTMLResponse)
def voucher_code_page(request: Request, user: H5Member, voucher_id: Id) -> Response:
    """The code to show at a merchant's till: a QR code the page renews before it expires
    (htmx asks for the fragment again), until the voucher is spent."""
    context: dict[str, Any] = {
        "csrf_token": user.csrf_token,
        "tab": "wallet",
        "id": voucher_id,
        "voucher": None,
    }
    fragment = bool(request.headers.get("hx-request"))
    try:
        with unit_of_work(read_only=True) as session:
            membership_id = member_of(user).membership_id
            code = redeem.member_code(session, membership_id=membership_id, voucher_id=voucher_id)
            if not fragment:  # the page says where it may be spent; the renewed code need not
                voucher = benefits.member_voucher(session, membership_id, voucher_id)
                names = merchants.names(session, voucher.merchant_ids or ())
                context["voucher"] = VoucherRead.of(voucher, names)
    except DomainError as exc:
        context["error"] = error_key(exc)
    else:
        context.update(code=code, qr=qr_svg(code.text, scale=7), refresh_s=codes.CODE_TTL_S // 3)
    template = "h5/_voucher_code.html" if fragment else "h5/voucher_code.html"
    return render(request, template, context)


def parse_address(
    request: Request, *, name: str, phone: str, address: str
) -> tuple[AddressRequest | None, dict[str, str]]:
    """A delivery address typed in a form, or the message of each field in error."""
    fields: dict[str, str] = {}
    try:
        # The API's own request model holds the rules of a valid address.
        body = AddressRequest(name=name.strip(), phone=phone.strip(), address=address.strip())
    except ValidationError as exc:
        locale = request_locale(request)
        for problem in exc.errors():
            field = str(problem["loc"][0])
            fields[field] = translate(locale, f"address.invalid_{field}")
        return None, fields
    return body, fields


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
    body, fields = parse_address(request, name=name, phone=phone, address=address)
    error = None
    if body is not None:
        try:
            hotwrite.run(
                benefits.give_address_once,
                membership_id=member_of(user).membership_id,
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
