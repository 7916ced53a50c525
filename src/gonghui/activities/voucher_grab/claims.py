"""Members claim coupons of a voucher grab; the coupons are sent after the claim commits.

A claim (:func:`claim`, a hot operation of the writer) checks the campaign is live for the
member, the stock is open, the member's WeChat is linked for the stock's app and the
member's limits (per stock, and the activity's total and daily); takes one coupon of the
stock by a conditional UPDATE (``claimed < max_coupons``), then one of the member's org's
share when the campaign caps it (:mod:`.org_shares`); writes the claim in state
``sending`` with a fresh ``out_request_no``; and queues ``vouchers.send_coupon`` in the
same transaction. So a claim the member was told of is never lost, and none passes a
stock or a limit under any concurrency.

The task sends the coupon with the claim's ``out_request_no`` until WeChat Pay answers:
no answer (a timeout, a 5xx, an answer that fails verification) is retried with backoff
and the same number, which WeChat Pay answers with the coupon it sent the first time, so
a coupon is never sent twice, even when a worker dies between the send and its record.
A refusal (WeChat Pay answered 4xx) fails the claim and gives back its coupon to the stock,
the member's turns (per stock, and the activity's total and daily) and the org's share.

A coupon spent arrives as WeChat Pay's ``COUPON.USE`` notification
(:mod:`gonghui.payments`): the claim becomes ``used`` and the ledger says so, once.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui import idempotency, tasks
from gonghui.accounts.identities import wechat_openid
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import ActivityKind
from gonghui.activities.participation import (
    claim_participation,
    live_activity,
    release_participation,
)
from gonghui.activities.voucher_grab import org_shares
from gonghui.activities.voucher_grab.models import (
    ClaimState,
    StockStatus,
    VoucherClaim,
    VoucherStock,
)
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.errors import Conflict, NotFound, ServiceUnavailable
from gonghui.integrations import wechatpay
from gonghui.payments import service as payments

SEND_COUPON = "vouchers.send_coupon"


def claim_view(claim: VoucherClaim, stock: VoucherStock) -> dict[str, Any]:
    return {
        "id": claim.id,
        "activity_id": claim.activity_id,
        "stock_id": stock.id,
        "name": stock.name,
        "coupon_amount_cents": stock.coupon_amount_cents,
        "threshold_cents": stock.threshold_cents,
        "state": str(claim.state),
        "coupon_id": claim.coupon_id,
        "claimed_at": claim.claimed_at.isoformat(),
        "sent_at": claim.sent_at.isoformat() if claim.sent_at else None,
        "used_at": claim.used_at.isoformat() if claim.used_at else None,
    }


def claim(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    stock_id: int,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Hot operation: one coupon of ``stock_id`` for the member (see the module)."""

    def act() -> dict[str, Any]:
        activity = live_activity(
            session, member=member, activity_id=activity_id, kinds={ActivityKind.VOUCHER_GRAB}
        )
        stock = session.get(VoucherStock, stock_id)
        if stock is None or stock.activity_id != activity.id:
            raise NotFound(ActivitiesError.STOCK_NOT_FOUND, f"voucher stock {stock_id} not found")
        if stock.status == StockStatus.PAUSED:
            raise Conflict(
                ActivitiesError.STOCK_PAUSED,
                "the union has paused these vouchers for now; try again later",
                {"status": str(stock.status)},
            )
        if stock.status != StockStatus.RUNNING:
            raise Conflict(
                ActivitiesError.STOCK_NOT_OPEN,
                "these vouchers are not open yet"
                if stock.status == StockStatus.OPENING
                else "these vouchers cannot be claimed",
                {"status": str(stock.status)},
            )
        openid = wechat_openid(session, membership_id=member.membership_id, appid=stock.appid)
        if openid is None:
            raise Conflict(
                ActivitiesError.WECHAT_NOT_LINKED,
                "vouchers arrive in WeChat: sign in once through the union's WeChat mini "
                "program to link your WeChat, then claim",
                {"appid": stock.appid},
            )
        if not counters.claim(
            session,
            activity_id=activity.id,
            membership_id=member.membership_id,
            scope=f"stock:{stock.id}",
            granted=stock.max_per_member,
        ):
            raise Conflict(ActivitiesError.STOCK_LIMIT, "you have claimed all you may of these")
        claim_participation(session, member=member, activity=activity)
        taken = session.execute(
            update(VoucherStock)
            .where(VoucherStock.id == stock.id, VoucherStock.claimed < VoucherStock.max_coupons)
            .values(claimed=VoucherStock.claimed + 1)
        )
        if rowcount(taken) != 1:
            raise Conflict(ActivitiesError.STOCK_EMPTY, "all the vouchers have been claimed")
        cap = org_shares.max_per_org(activity.config)
        if cap is not None and not org_shares.take(
            session, activity_id=activity.id, org_id=member.org_id, cap=cap
        ):
            raise Conflict(
                ActivitiesError.ORG_LIMIT,
                "the members of your union have claimed all of its share of these vouchers",
                {"max_per_org": cap},
            )
        row = VoucherClaim(
            stock_id=stock.id,
            activity_id=activity.id,
            membership_id=member.membership_id,
            org_id=member.org_id,
            openid=openid,
            out_request_no=f"GH{stock.id}X{secrets.token_hex(12)}",
            state=ClaimState.SENDING,
        )
        session.add(row)
        session.flush()
        tasks.defer(session, SEND_COUPON, claim_id=row.id)
        return claim_view(row, stock)

    return idempotency.run_once(
        session,
        membership_id=member.membership_id,
        key=idempotency_key,
        operation=f"vouchers.claim:{stock_id}",
        action=act,
    )


def member_claims(
    session: Session, *, membership_id: int, activity_id: int | None = None
) -> list[dict[str, Any]]:
    """The member's claims (of one activity, with ``activity_id``), newest first, 200 at
    most."""
    query = (
        select(VoucherClaim, VoucherStock)
        .join(VoucherStock, VoucherStock.id == VoucherClaim.stock_id)
        .where(VoucherClaim.membership_id == membership_id)
    )
    if activity_id is not None:
        query = query.where(VoucherClaim.activity_id == activity_id)
    rows = session.execute(query.order_by(VoucherClaim.id.desc()).limit(200))
    return [claim_view(c, s) for c, s in rows]


def _dead(args: dict[str, Any], error: str) -> None:
    """Out of attempts with no answer from WeChat Pay: the claim stays ``sending`` (its
    coupon may have gone) with the error for operators, who requeue the task."""
    with unit_of_work() as session:
        row = session.get(VoucherClaim, int(args["claim_id"]))
        if row is not None:
            row.last_error = error[:300]


@tasks.task(SEND_COUPON, max_attempts=30, on_dead=_dead)
def send_coupon(claim_id: int) -> None:
    """Send the claim's coupon with its ``out_request_no`` (see the module)."""
    with unit_of_work(read_only=True) as session:
        found = session.execute(
            select(VoucherClaim, VoucherStock)
            .join(VoucherStock, VoucherStock.id == VoucherClaim.stock_id)
            .where(VoucherClaim.id == claim_id)
        ).one_or_none()
        if found is None or found[0].state != ClaimState.SENDING:
            return
        claim_row, stock = found
        request = {
            "stock_id": stock.wechat_stock_id,
            "out_request_no": claim_row.out_request_no,
            "appid": stock.appid,
        }
        openid = claim_row.openid
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    request["stock_creator_mchid"] = client.merchant.mchid
    try:
        sent = client.call("POST", f"/v3/marketing/favor/users/{openid}/coupons", request)
    except wechatpay.WechatPayRefused as exc:
        _refused(claim_row, exc.message)
        return
    except wechatpay.WechatPayUnavailable as exc:
        raise tasks.Retry(exc.message) from exc
    _sent(claim_row, stock, str(sent["coupon_id"]))


def _sent(claim_row: VoucherClaim, stock: VoucherStock, coupon_id: str) -> None:
    """WeChat Pay sent the coupon: the claim (as :func:`send_coupon` read it) is ``sent``
    and the ledger says so, once."""
    with unit_of_work() as session:
        moved = session.execute(
            update(VoucherClaim)
            .where(VoucherClaim.id == claim_row.id, VoucherClaim.state == ClaimState.SENDING)
            .values(state=ClaimState.SENT, coupon_id=coupon_id, sent_at=now(), last_error=None)
        )
        if rowcount(moved) != 1:
            return  # recorded by an earlier run
        benefits.record_coupon(
            session,
            membership_id=claim_row.membership_id,
            activity_id=claim_row.activity_id,
            action=LedgerAction.ISSUE,
            amount_cents=stock.coupon_amount_cents,
            source="wechatpay.coupon_sent",
            details={"coupon_id": coupon_id, "claim_id": claim_row.id, "stock_id": stock.id},
        )


def _refused(claim_row: VoucherClaim, error: str) -> None:
    """WeChat Pay refused the coupon: the claim (as :func:`send_coupon` read it) fails and
    gives back its coupon, the member's turns (per stock, in all and that day) and the
    org's share."""
    with unit_of_work() as session:
        moved = session.execute(
            update(VoucherClaim)
            .where(VoucherClaim.id == claim_row.id, VoucherClaim.state == ClaimState.SENDING)
            .values(state=ClaimState.FAILED, last_error=error[:300])
        )
        if rowcount(moved) != 1:
            return
        session.execute(
            update(VoucherStock)
            .where(VoucherStock.id == claim_row.stock_id)
            .values(claimed=VoucherStock.claimed - 1)
        )
        counters.release_many(
            session,
            activity_id=claim_row.activity_id,
            members=[claim_row.membership_id],
            scope=f"stock:{claim_row.stock_id}",
        )
        release_participation(
            session,
            activity_id=claim_row.activity_id,
            membership_id=claim_row.membership_id,
            at=claim_row.claimed_at,
        )
        if claim_row.org_id is not None:
            org_shares.give_back(
                session, activity_id=claim_row.activity_id, org_id=claim_row.org_id
            )


@payments.handles("COUPON.USE")
def coupon_used(session: Session, notification: wechatpay.Notification) -> None:
    """WeChat Pay says a coupon was spent: the claim is ``used`` and the ledger says so."""
    coupon_id = str(notification.resource.get("coupon_id", ""))
    row = session.scalar(select(VoucherClaim).where(VoucherClaim.coupon_id == coupon_id))
    if row is None:
        # Sent, but its answer not recorded yet (the send task retries): refuse for now,
        # and WeChat Pay sends the notification again.
        raise ServiceUnavailable(
            "vouchers.coupon_unknown_yet", f"coupon {coupon_id} is not recorded yet"
        )
    if row.state != ClaimState.SENT:
        return
    row.state = ClaimState.USED
    row.used_at = now()
    stock = session.get(VoucherStock, row.stock_id)
    assert stock is not None
    consumed = notification.resource.get("consume_information") or {}
    benefits.record_coupon(
        session,
        membership_id=row.membership_id,
        activity_id=row.activity_id,
        action=LedgerAction.REDEEM,
        amount_cents=-stock.coupon_amount_cents,
        source="wechatpay.coupon_use",
        details={
            "coupon_id": coupon_id,
            "claim_id": row.id,
            "transaction_id": str(consumed.get("transaction_id", ""))[:64],
            "notification_id": notification.id,
        },
    )
