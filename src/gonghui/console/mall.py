"""Console: the help-the-farmers mall's products and SKUs, its orders (shipping, refunds,
the address revealed to ship), and the sales report."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from gonghui import xlsx
from gonghui.bodylimit import max_body, upload_limit
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.mall import catalog, fulfilment, orders, refund_failures, refunds, reports
from gonghui.mall.models import OrderState
from gonghui.mall.schemas import (
    MAX_IMAGES,
    AbnormalRefundRequest,
    ProductCreate,
    ProductUpdate,
    SkuCreate,
    SkuUpdate,
)
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id, form_cents
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/mall", include_in_schema=False)

SKU_ROWS = 3


def _problems(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) + f": {e['msg']}" for e in exc.errors()]


# -- products ------------------------------------------------------------------------------


PRODUCTS_PAGE = 50


def _products_page(
    request: Request, user: PageUser, *, before: int | None = None, **extra: Any
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        products = catalog.list_products(
            session, actor=actor, before=before, limit=PRODUCTS_PAGE + 1
        )
        more, products = len(products) > PRODUCTS_PAGE, products[:PRODUCTS_PAGE]
        skus = catalog.skus_of(session, [p.id for p in products])
        visible = orgs.list_orgs(session, actor=actor)
    context = {
        "active": "nav.mall",
        "csrf_token": user.csrf_token,
        "products": products,
        "skus": skus,
        "org_names": {o.id: o.name for o in visible},
        "orgs": [o for o in visible if actor.can(Permission.ACTIVITIES_MANAGE, o.path)],
        "rows": range(SKU_ROWS),
        "before": before,
        "older": products[-1].id if more else None,
        "form": {},
        **extra,
    }
    return render(request, "console/mall_products.html", context)


@router.get("", response_class=HTMLResponse)
def products_page(request: Request, user: ConsoleStaff, before: Id | None = None) -> Response:
    """Products newest first, a page at a time (``before``: the last id of the page seen)."""
    return _products_page(request, user, before=before)


@router.post("/products", response_class=HTMLResponse)
@max_body(upload_limit)
async def create_product(request: Request, user: ConsoleStaff) -> Response:
    # The form's uploads are spooled files: closed when the form is.
    async with request.form() as form:
        return await _create_product(request, user, form)


async def _create_product(request: Request, user: PageUser, form: FormData) -> Response:
    check_csrf(request, user, str(form.get("csrf", "")))
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    skus = []
    for i in range(SKU_ROWS):
        name = typed.get(f"sku_{i}_name", "").strip()
        if name:
            price = typed.get(f"sku_{i}_price", "")
            skus.append(
                {
                    "name": name,
                    "price_cents": form_cents(price) if form_cents(price) is not None else price,
                    "stock": typed.get(f"sku_{i}_stock") or 0,
                }
            )
    uploads = [f for f in form.getlist("images") if isinstance(f, UploadFile) and f.filename]
    try:
        data = ProductCreate.model_validate(
            {
                "org_id": typed.get("org_id"),
                "name": typed.get("name", "").strip(),
                "description": typed.get("description", "").strip(),
                "origin_region": typed.get("origin_region", "").strip(),
                "skus": skus,
                "on_shelf": typed.get("on_shelf") == "1",
            }
        )
    except ValidationError as exc:
        return _products_page(request, user, problems=_problems(exc), form=typed)
    actor = _actor(request, user)
    try:
        data.images = [
            catalog.save_image(actor=actor, data=await f.read(catalog.IMAGE_MAX_BYTES + 1))
            for f in uploads[:MAX_IMAGES]
        ]
        with unit_of_work() as session:
            product_id = catalog.create_product(session, actor=actor, data=data).id
    except DomainError as exc:
        return _products_page(request, user, error=error_key(exc), form=typed)
    return RedirectResponse(f"/console/mall/products/{product_id}?saved=1", status_code=303)


def _product_page(request: Request, user: PageUser, product_id: int, **extra: Any) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        product = catalog.get_product(session, actor=actor, product_id=product_id)
        context: dict[str, Any] = {
            "active": "nav.mall",
            "csrf_token": user.csrf_token,
            "product": product,
            "images": [catalog.image_url(key) for key in product.images],
            "skus": catalog.skus_of(session, [product.id])[product.id],
            "org_name": orgs.get_org(session, actor=actor, org_id=product.org_id).name,
            **extra,
        }
    return render(request, "console/mall_product.html", context)


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, user: ConsoleStaff, product_id: Id, saved: int = 0) -> Response:
    return _product_page(request, user, product_id, saved=bool(saved))


def _saved(product_id: int) -> Response:
    return RedirectResponse(f"/console/mall/products/{product_id}?saved=1", status_code=303)


@router.post("/products/{product_id}/shelf", response_class=HTMLResponse)
def set_shelf(
    request: Request,
    user: ConsoleStaff,
    product_id: Id,
    on_shelf: Annotated[bool, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        catalog.update_product(
            session,
            actor=_actor(request, user),
            product_id=product_id,
            data=ProductUpdate(on_shelf=on_shelf),
        )
    return _saved(product_id)


@router.post("/products/{product_id}/details", response_class=HTMLResponse)
@max_body(upload_limit)
async def update_details(request: Request, user: ConsoleStaff, product_id: Id) -> Response:
    """Name, region, description and images: the images kept (ticked) in their order, then
    those uploaded, nine at most."""
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        typed = {k: v for k, v in form.items() if isinstance(v, str)}
        kept = [k for k in form.getlist("keep") if isinstance(k, str)]
        uploads = [f for f in form.getlist("images") if isinstance(f, UploadFile) and f.filename]
        actor = _actor(request, user)
        try:
            with unit_of_work(read_only=True) as session:
                current = catalog.get_product(session, actor=actor, product_id=product_id).images
            kept = [key for key in current if key in kept]  # only its own, in its order
            if len(kept) + len(uploads) > MAX_IMAGES:
                too_many = f"images: at most {MAX_IMAGES} (kept and new)"
                return _product_page(request, user, product_id, problems=[too_many])
            data = ProductUpdate(
                name=typed.get("name", "").strip(),
                origin_region=typed.get("origin_region", "").strip(),
                description=typed.get("description", "").strip(),
                images=kept,
            )
            assert data.images is not None
            data.images += [
                catalog.save_image(actor=actor, data=await f.read(catalog.IMAGE_MAX_BYTES + 1))
                for f in uploads
            ]
            with unit_of_work() as session:
                catalog.update_product(session, actor=actor, product_id=product_id, data=data)
        except ValidationError as exc:
            return _product_page(request, user, product_id, problems=_problems(exc))
        except DomainError as exc:
            return _product_page(request, user, product_id, error=error_key(exc))
    return _saved(product_id)


@router.post("/products/{product_id}/skus", response_class=HTMLResponse)
def add_sku(
    request: Request,
    user: ConsoleStaff,
    product_id: Id,
    name: Annotated[str, Form(max_length=100)],
    price: Annotated[str, Form(max_length=20)],
    stock: Annotated[int, Form(ge=0, le=10_000_000)] = 0,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        data = SkuCreate(name=name.strip(), price_cents=form_cents(price) or 0, stock=stock)
    except ValidationError as exc:
        return _product_page(request, user, product_id, problems=_problems(exc))
    try:
        with unit_of_work() as session:
            catalog.add_sku(session, actor=_actor(request, user), product_id=product_id, data=data)
    except DomainError as exc:
        return _product_page(request, user, product_id, error=error_key(exc))
    return _saved(product_id)


@router.post("/products/{product_id}/skus/{sku_id}", response_class=HTMLResponse)
def update_sku(
    request: Request,
    user: ConsoleStaff,
    product_id: Id,
    sku_id: Id,
    price: Annotated[str, Form(max_length=20)] = "",
    add_stock: Annotated[int, Form(ge=-10_000_000, le=10_000_000)] = 0,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        # A price left empty stays; one that is not an amount is refused as zero.
        cents = (form_cents(price) or 0) if price.strip() else None
        data = SkuUpdate(price_cents=cents, add_stock=add_stock)
    except ValidationError as exc:
        return _product_page(request, user, product_id, problems=_problems(exc))
    try:
        with unit_of_work() as session:
            catalog.update_sku(session, actor=_actor(request, user), sku_id=sku_id, data=data)
    except DomainError as exc:
        return _product_page(request, user, product_id, error=error_key(exc))
    return _saved(product_id)


# -- orders --------------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request, user: ConsoleStaff, state: str = "") -> Response:
    chosen = OrderState(state) if state in set(OrderState) else None
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = orders.list_orders(session, actor=actor, state=chosen, limit=200)
        views = [orders.order_view(session, order, staff=True) for order in found]
    context = {
        "active": "nav.mall",
        "csrf_token": user.csrf_token,
        "orders": views,
        "placed": {order.id: order.created_at for order in found},
        "states": [s.value for s in OrderState],
        "state": state if chosen else "",
    }
    return render(request, "console/mall_orders.html", context)


def _order_page(
    request: Request, user: PageUser, order_id: int, *, reveal: bool = False, **extra: Any
) -> Response:
    actor = _actor(request, user)
    # A reveal is written to the audit log in the same unit as the read.
    with unit_of_work(read_only=not reveal) as session:
        order = orders.get_order(session, actor=actor, order_id=order_id)
        if reveal:
            orders.reveal_address(session, actor=actor, order=order)
        view = orders.order_view(session, order, reveal=reveal, staff=True)
        path = orgs.get_org(session, actor=actor, org_id=order.org_id).path
        last_error = order.last_error
    context = {
        "active": "nav.mall",
        "csrf_token": user.csrf_token,
        "order": view,
        "revealed": reveal,
        "may_reveal": actor.can(Permission.PII_UNMASK, path),
        "last_error": last_error,
        **extra,
    }
    return render(request, "console/mall_order.html", context)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, user: ConsoleStaff, order_id: Id, done: str = "") -> Response:
    return _order_page(request, user, order_id, done=done if done in DONE else "")


DONE = frozenset({"shipped", "approved", "refused", "retried", "abnormal_applied"})


@router.post("/orders/{order_id}/reveal", response_class=HTMLResponse)
def reveal(
    request: Request, user: ConsoleStaff, order_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    try:
        return _order_page(request, user, order_id, reveal=True)
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))


def _done(order_id: int, done: str) -> Response:
    query = urlencode({"done": done})
    return RedirectResponse(f"/console/mall/orders/{order_id}?{query}", status_code=303)


@router.post("/orders/{order_id}/ship", response_class=HTMLResponse)
def ship(
    request: Request,
    user: ConsoleStaff,
    order_id: Id,
    courier_company: Annotated[str, Form(max_length=50)],
    courier_no: Annotated[str, Form(max_length=50)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            fulfilment.ship(
                session,
                actor=_actor(request, user),
                order_id=order_id,
                courier_company=courier_company.strip(),
                courier_no=courier_no.strip(),
            )
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))
    return _done(order_id, "shipped")


@router.post("/orders/{order_id}/refund/{decision}", response_class=HTMLResponse)
def decide_refund(
    request: Request,
    user: ConsoleStaff,
    order_id: Id,
    decision: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    decisions = {
        "approve": (refunds.approve, "approved"),
        "refuse": (refunds.refuse, "refused"),
        "retry": (refund_failures.retry, "retried"),
    }
    if decision not in decisions:
        return _order_page(request, user, order_id)
    decide, done = decisions[decision]
    try:
        with unit_of_work() as session:
            decide(session, actor=_actor(request, user), order_id=order_id)
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))
    return _done(order_id, done)


@router.post("/orders/{order_id}/abnormal-refund", response_class=HTMLResponse)
def apply_abnormal_refund(
    request: Request,
    user: ConsoleStaff,
    order_id: Id,
    kind: Annotated[str, Form(alias="type", max_length=20)],
    bank_type: Annotated[str, Form(max_length=16)] = "",
    bank_account: Annotated[str, Form(max_length=30)] = "",
    real_name: Annotated[str, Form(max_length=50)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    to_card = kind == "USER_BANK_CARD"
    try:
        body = AbnormalRefundRequest.model_validate(
            {
                "type": kind,
                "bank_type": bank_type.strip().upper() if to_card else None,
                "bank_account": bank_account.replace(" ", "") if to_card else None,
                "real_name": real_name.strip() if to_card else None,
            }
        )
    except ValidationError:
        return _order_page(request, user, order_id, error="error.mall.bank_card_needed")
    card = None
    if body.bank_type and body.bank_account and body.real_name:
        card = refund_failures.BankCard(body.bank_type, body.bank_account, body.real_name)
    try:
        refund_failures.apply_abnormal(
            actor=_actor(request, user), order_id=order_id, kind=body.type, card=card
        )
    except DomainError as exc:
        return _order_page(request, user, order_id, error=error_key(exc))
    return _done(order_id, "abnormal_applied")


@router.get("/sales.xlsx")
def sales_report(request: Request, user: ConsoleStaff) -> Response:
    with unit_of_work(read_only=True) as session:
        body = reports.sales_xlsx(session, actor=_actor(request, user))
    return xlsx.attachment(body, "mall-sales.xlsx")
