"""A voucher grab's stocks: made as the campaign is published, then created and started at
WeChat Pay by a task (``vouchers.open_stock``), so that publishing never waits on WeChat
Pay and a stock whose creation meets no answer is asked for again with the same
``out_request_no`` (WeChat Pay creates one stock per request number). Operators pause and
restart a running stock (:func:`move_stock`) at WeChat Pay, and claims follow its state;
the coupon sends that waited while it was paused resume as it restarts (:mod:`.waiting`)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity
from gonghui.activities.schemas import VoucherGrabRules
from gonghui.activities.voucher_grab import waiting
from gonghui.activities.voucher_grab.models import StockStatus, VoucherStock
from gonghui.audit import service as audit
from gonghui.db import rowcount, unit_of_work
from gonghui.errors import Conflict, NotFound, ServiceUnavailable, UpstreamError
from gonghui.integrations import wechatpay
from gonghui.payments import service as payments
from gonghui.settings import get_settings
from gonghui.tenancy import Actor, Permission, get_scoped

OPEN_STOCK = "vouchers.open_stock"


def rules_of(activity: Activity) -> VoucherGrabRules | None:
    config = activity.config or {}
    if config.get("kind") != "voucher_grab":
        return None
    return VoucherGrabRules.model_validate(config["voucher_grab"])


def open_stocks(session: Session, activity: Activity) -> None:
    """As a voucher grab is published: its stocks, each to be opened at WeChat Pay."""
    rules = rules_of(activity)
    if rules is None:
        return
    appid = rules.appid or get_settings().wechat_mp_appid
    for position, stock in enumerate(rules.stocks):
        row = VoucherStock(
            activity_id=activity.id,
            position=position,
            name=stock.name,
            coupon_amount_cents=stock.coupon_amount_cents,
            threshold_cents=stock.threshold_cents,
            max_coupons=stock.max_coupons,
            max_per_member=stock.max_per_member,
            appid=appid,
        )
        session.add(row)
        session.flush()
        tasks.defer(session, OPEN_STOCK, stock_id=row.id)


def list_stocks(session: Session, *, activity_id: int) -> list[VoucherStock]:
    return list(
        session.scalars(
            select(VoucherStock)
            .where(VoucherStock.activity_id == activity_id)
            .order_by(VoucherStock.position)
        )
    )


def managed_stock(
    session: Session, *, actor: Actor, activity_id: int, stock_id: int
) -> VoucherStock:
    """A stock of a campaign the actor manages; 404 otherwise."""
    activity = get_scoped(session, Activity, activity_id, actor, Permission.ACTIVITIES_MANAGE)
    stock = session.get(VoucherStock, stock_id)
    if stock is None or stock.activity_id != activity.id:
        raise NotFound(ActivitiesError.STOCK_NOT_FOUND, f"voucher stock {stock_id} not found")
    return stock


# A move: the state it starts from and the state it leads to (WeChat Pay's own rule).
MOVES: dict[str, tuple[StockStatus, StockStatus]] = {
    "pause": (StockStatus.RUNNING, StockStatus.PAUSED),
    "restart": (StockStatus.PAUSED, StockStatus.RUNNING),
}


def move_stock(
    *, actor: Actor, activity_id: int, stock_id: int, move: Literal["pause", "restart"]
) -> VoucherStock:
    """Pause or restart a stock at WeChat Pay, then record it here (audited).

    It owns its transactions, as a task does: WeChat Pay is called between a read and the
    write, never inside a write transaction. WeChat Pay refusing (502) or not answering
    (503) leaves the stock as it was here; the same move asked again is safe (WeChat Pay
    answers a stock already in the state asked for as done)."""
    source, target = MOVES[move]
    with unit_of_work(read_only=True) as session:
        stock = managed_stock(session, actor=actor, activity_id=activity_id, stock_id=stock_id)
        if stock.status != source or stock.wechat_stock_id is None:
            raise Conflict(
                ActivitiesError.STOCK_BAD_STATE,
                f"a {stock.status} stock cannot be {move}ed",
                {"status": str(stock.status)},
            )
        wechat_stock_id = stock.wechat_stock_id
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    try:
        client.call(
            "POST",
            f"/v3/marketing/favor/stocks/{wechat_stock_id}/{move}",
            {"stock_creator_mchid": client.merchant.mchid},
        )
    except wechatpay.WechatPayRefused as exc:
        raise UpstreamError(
            ActivitiesError.WECHATPAY_REFUSED,
            f"WeChat Pay refused to {move} the stock; it is unchanged: {exc.message}",
        ) from exc
    except wechatpay.WechatPayUnavailable as exc:
        raise ServiceUnavailable(
            ActivitiesError.WECHATPAY_UNAVAILABLE,
            f"WeChat Pay did not answer; the stock is unchanged here, {move} it again",
        ) from exc
    with unit_of_work() as session:
        moved = session.execute(
            update(VoucherStock)
            .where(VoucherStock.id == stock_id, VoucherStock.status == source)
            .values(status=target)
        )
        resumed = 0
        if target == StockStatus.RUNNING and rowcount(moved):
            resumed = waiting.resume(session, stock_id=stock_id)  # the sends that waited
        stock = managed_stock(session, actor=actor, activity_id=activity_id, stock_id=stock_id)
        activity = session.get(Activity, activity_id)
        assert activity is not None
        audit.record(
            session,
            actor=actor,
            action=f"vouchers.stock_{move}",
            org_id=activity.org_id,
            subject_type="voucher_stock",
            subject_id=stock.id,
            details={
                "activity_id": activity_id,
                "wechat_stock_id": wechat_stock_id,
                **({"sends_resumed": resumed} if move == "restart" else {}),
            },
        )
        session.flush()
        session.expunge(stock)
    return stock


@tasks.task(OPEN_STOCK, max_attempts=20)
def open_stock(stock_id: int) -> None:
    """Create the stock at WeChat Pay (once per request number) and start it."""
    with unit_of_work(read_only=True) as session:
        stock = session.get(VoucherStock, stock_id)
        if stock is None or stock.status != StockStatus.OPENING:
            return
        activity = session.get(Activity, stock.activity_id)
        assert activity is not None
        window = (
            wechatpay.wechat_time(activity.starts_at),
            wechatpay.wechat_time(activity.ends_at),
        )
        wechat_stock_id = stock.wechat_stock_id
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    mchid = client.merchant.mchid
    try:
        # Where WeChat Pay tells us of the coupons spent (set again each time: idempotent).
        client.call(
            "POST",
            "/v3/marketing/favor/callbacks",
            {"mchid": mchid, "notify_url": payments.notify_url(), "switch": True},
        )
        if wechat_stock_id is None:
            created = client.call(
                "POST", "/v3/marketing/favor/coupon-stocks", _new_stock(stock, mchid, window)
            )
            wechat_stock_id = str(created["stock_id"])
            with unit_of_work() as session:
                row = session.get(VoucherStock, stock_id)
                assert row is not None
                row.wechat_stock_id = wechat_stock_id
        client.call(
            "POST",
            f"/v3/marketing/favor/stocks/{wechat_stock_id}/start",
            {"stock_creator_mchid": mchid},
        )
    except wechatpay.WechatPayRefused as exc:
        _set(stock_id, StockStatus.FAILED, exc.message)
        return
    except wechatpay.WechatPayUnavailable as exc:
        raise tasks.Retry(exc.message) from exc
    _set(stock_id, StockStatus.RUNNING, None)


def _new_stock(stock: VoucherStock, mchid: str, window: tuple[str, str]) -> dict[str, Any]:
    return {
        "stock_name": stock.name,
        "belong_merchant": mchid,
        "available_begin_time": window[0],
        "available_end_time": window[1],
        "stock_use_rule": {
            "max_coupons": stock.max_coupons,
            "max_amount": stock.max_coupons * stock.coupon_amount_cents,
            "max_coupons_per_user": stock.max_per_member,
            "natural_person_limit": False,
            "prevent_api_abuse": False,
        },
        "coupon_use_rule": {
            "fixed_normal_coupon": {
                "coupon_amount": stock.coupon_amount_cents,
                "transaction_minimum": stock.threshold_cents,
            },
            "available_merchants": [mchid],
        },
        "no_cash": False,
        "stock_type": "NORMAL",
        "out_request_no": f"GHSTOCK{stock.id}",
    }


def _set(stock_id: int, status: StockStatus, error: str | None) -> None:
    with unit_of_work() as session:
        row = session.get(VoucherStock, stock_id)
        assert row is not None
        row.status = status
        row.last_error = error[:300] if error else None
