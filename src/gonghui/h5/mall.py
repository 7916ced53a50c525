"""The help-the-farmers mall for members: the shelf, a product, the cart and checkout,
paying in WeChat (or the simulator's pay step in development), and my orders."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui import hotwrite, risk
from gonghui.db import unit_of_work
from gonghui.deployment import dev_conveniences_allowed
from gonghui.errors import DomainError
from gonghui.h5.access import H5Member, member_of
from gonghui.h5.member_action import challenge_page, risk_context
from gonghui.h5.wallet import parse_address
from gonghui.mall import cart, catalog, checkout, fulfilment, offers, orders, payment, refunds
from gonghui.mall.models import OrderState, Product
from gonghui.settings import get_settings
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/mall")

SHELF_SIZE = 50
# What the order page confirms after a member's action.
DONE = frozenset({"cancelled", "received", "refund_requested"})


def _pay_simulated() -> bool:
    """Payments go to the WeChat Pay simulator (development, tests), which shows its pay
    step instead of WeChat's."""
    return dev_conveniences_allowed() and not get_settings().wechatpay_private_key


def _in_wechat(request: Request) -> bool:
    return "MicroMessenger" in request.headers.get("user-agent", "")


def _base(user: PageUser, **extra: Any) -> dict[str, Any]:
    return {"csrf_token": user.csrf_token, "tab": "mall", **extra}


def _cards(products: list[Product], skus: dict[int, list[Any]]) -> list[dict[str, Any]]:
    return [
        {
            "product": p,
            "image": catalog.image_url(p.images[0]) if p.images else None,
            "images": [catalog.image_url(key) for key in p.images],
            "skus": skus[p.id],
            "lowest_cents": min((s.price_cents for s in skus[p.id]), default=None),
            "stock": sum(s.stock for s in skus[p.id]),
        }
        for p in products
    ]


@router.get("", response_class=HTMLResponse)
def shelf_page(request: Request, user: H5Member) -> Response:
    with unit_of_work(read_only=True) as session:
        found = catalog.shelf(session, member=member_of(user), limit=SHELF_SIZE)
        cards = _cards(found, catalog.skus_of(session, [p.id for p in found]))
    return render(request, "h5/mall.html", _base(user, cards=cards))


def _product_page(request: Request, user: PageUser, product_id: int, **extra: Any) -> Response:
    with unit_of_work(read_only=True) as session:
        product = catalog.shelf_product(session, member=member_of(user), product_id=product_id)
        (card,) = _cards([product], catalog.skus_of(session, [product.id]))
    return render(request, "h5/mall_product.html", _base(user, card=card, **extra))


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, user: H5Member, product_id: Id) -> Response:
    return _product_page(request, user, product_id)


@router.post("/products/{product_id}/cart", response_class=HTMLResponse)
def add_to_cart(
    request: Request,
    user: H5Member,
    product_id: Id,
    sku_id: Annotated[Id, Form()],
    quantity: Annotated[int, Form(ge=1, le=99)] = 1,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            cart.set_item(session, member=member_of(user), sku_id=sku_id, quantity=quantity)
    except DomainError as exc:
        return _product_page(request, user, product_id, error=error_key(exc))
    return RedirectResponse("/h5/mall/cart?" + urlencode({"added": 1}), status_code=303)


def _cart_page(request: Request, user: PageUser, **extra: Any) -> Response:
    member = member_of(user)
    with unit_of_work(read_only=True) as session:
        content = cart.read_cart(session, member=member)
        context = _base(
            user,
            cart=content,
            sales=offers.open_sales(session, member=member),
            vouchers=offers.usable_vouchers(
                session, membership_id=member.membership_id, goods_cents=content["goods_cents"]
            ),
            can_pay=offers.can_pay(session, membership_id=member.membership_id),
            order_key=secrets.token_urlsafe(16),
            fields={},
        )
    # The first sale and the best voucher unless the member chose.
    context["chosen"] = {
        "activity_id": str(context["sales"][0].activity_id) if context["sales"] else "",
        "voucher_id": str(context["vouchers"][0].id) if context["vouchers"] else "",
    }
    context.update(extra)
    return render(request, "h5/mall_cart.html", context)


@router.get("/cart", response_class=HTMLResponse)
def cart_page(request: Request, user: H5Member, added: int = 0) -> Response:
    return _cart_page(request, user, added=bool(added))


@router.post("/cart/{sku_id}", response_class=HTMLResponse)
def change_quantity(
    request: Request,
    user: H5Member,
    sku_id: Id,
    quantity: Annotated[int, Form(ge=1, le=99)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            cart.set_item(session, member=member_of(user), sku_id=sku_id, quantity=quantity)
    except DomainError as exc:
        return _cart_page(request, user, error=error_key(exc))
    return RedirectResponse("/h5/mall/cart", status_code=303)


@router.post("/cart/{sku_id}/remove")
def remove_from_cart(
    request: Request, user: H5Member, sku_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        cart.remove_item(session, member=member_of(user), sku_id=sku_id)
    return RedirectResponse("/h5/mall/cart", status_code=303)


@router.post("/orders", response_class=HTMLResponse)
def place_order(
    request: Request,
    user: H5Member,
    name: Annotated[str, Form(max_length=50)],
    phone: Annotated[str, Form(max_length=20)],
    address: Annotated[str, Form(max_length=300)],
    activity_id: Annotated[str, Form(max_length=20)] = "",
    voucher_id: Annotated[str, Form(max_length=20)] = "",
    order_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
    risk_challenge: Annotated[str, Form(max_length=128)] = "",
    risk_answer: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, user, csrf)
    body, fields = parse_address(request, name=name, phone=phone, address=address)
    typed = {"name": name, "phone": phone, "address": address}
    chosen = {"activity_id": activity_id, "voucher_id": voucher_id}
    if body is None:
        return _cart_page(request, user, fields=fields, **typed, chosen=chosen)
    member = member_of(user)
    sale_id = int(activity_id) if activity_id.isdigit() else None
    answered = (risk_challenge, risk_answer) if risk_challenge else None
    try:
        risk.check(
            risk.Action.CHECKOUT, member, risk_context(request, answered), activity_id=sale_id
        )
        placed = hotwrite.run(
            checkout.checkout,
            member=member,
            items=None,
            activity_id=sale_id,
            voucher_id=int(voucher_id) if voucher_id.isdigit() else None,
            address=body.model_dump(),
            idempotency_key=order_key or None,
        )
    except risk.ChallengeRequired as exc:
        resend = {**typed, **chosen, "order_key": order_key, "csrf": csrf}
        return challenge_page(request, exc, resend)
    except DomainError as exc:
        return _cart_page(request, user, error=error_key(exc), **typed, chosen=chosen)
    return RedirectResponse(f"/h5/mall/orders/{placed['id']}", status_code=303)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request, user: H5Member) -> Response:
    with unit_of_work(read_only=True) as session:
        found = orders.member_orders(session, membership_id=member_of(user).membership_id)
        views = [orders.order_view(session, order) for order in found]
    return render(request, "h5/mall_orders.html", _base(user, orders=views))


def _order_page(request: Request, user: PageUser, order_id: int, **extra: Any) -> Response:
    with unit_of_work(read_only=True) as session:
        order = orders.member_order(
            session, membership_id=member_of(user).membership_id, order_id=order_id
        )
        view = orders.order_view(session, order)
        due_at = order.due_at if order.state == OrderState.UNPAID else None
    context = _base(
        user,
        order=view,
        due_at=due_at,
        refundable=[str(s) for s in refunds.REFUNDABLE],
        **extra,
    )
    return render(request, "h5/mall_order.html", context)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, user: H5Member, order_id: Id, done: str = "") -> Response:
    return _order_page(request, user, order_id, done=done if done in DONE else "")


@router.post("/orders/{order_id}/pay", response_class=HTMLResponse)
def pay(
    request: Request, user: H5Member, order_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Inside WeChat, the page hands the signed parameters to WeChat's payment sheet;
    outside it, where the simulator stands in for WeChat Pay, its pay step."""
    check_csrf(request, user, csrf)
    member = member_of(user)
    try:
        params = payment.prepare_payment(membership_id=member.membership_id, order_id=order_id)
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))
    if _pay_simulated() and not _in_wechat(request):
        return _order_page(request, user, order_id, simulate=True)
    return render(request, "h5/mall_pay.html", _base(user, order_id=order_id, params=params))


@router.post("/orders/{order_id}/pay/sim")
def pay_simulated(
    request: Request, user: H5Member, order_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    """The development stand-in for the payer confirming in WeChat: the simulator pays the
    order and sends WeChat Pay's notification, as WeChat would."""
    check_csrf(request, user, csrf)
    if not _pay_simulated():
        return RedirectResponse(f"/h5/mall/orders/{order_id}", status_code=303)
    with unit_of_work(read_only=True) as session:
        order = orders.member_order(
            session, membership_id=member_of(user).membership_id, order_id=order_id
        )
        out_trade_no = order.out_trade_no
    paid = httpx.post(
        f"{get_settings().resolved_wechatpay_base_url}/_control/transactions/{out_trade_no}/pay",
        json={},
        timeout=10,
    )
    paid.raise_for_status()
    return RedirectResponse(f"/h5/mall/orders/{order_id}", status_code=303)


def _act(
    request: Request, user: PageUser, order_id: int, done: str, act: Any, **kwargs: Any
) -> Response:
    try:
        act(membership_id=member_of(user).membership_id, order_id=order_id, **kwargs)
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))
    return RedirectResponse(f"/h5/mall/orders/{order_id}?done={done}", status_code=303)


def _in_unit(service: Any) -> Any:
    def run(**kwargs: Any) -> None:
        with unit_of_work() as session:
            service(session, **kwargs)

    return run


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request, user: H5Member, order_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    return _act(request, user, order_id, "cancelled", payment.cancel)


@router.post("/orders/{order_id}/receipt", response_class=HTMLResponse)
def confirm_receipt(
    request: Request, user: H5Member, order_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    return _act(request, user, order_id, "received", _in_unit(fulfilment.confirm_receipt))


@router.post("/orders/{order_id}/refund", response_class=HTMLResponse)
def request_refund(
    request: Request,
    user: H5Member,
    order_id: Id,
    reason: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return _act(
        request,
        user,
        order_id,
        "refund_requested",
        _in_unit(refunds.request_refund),
        reason=reason.strip(),
    )
