"""Voucher grabs: the WeChat Pay stocks of a campaign, and members' claims on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk

# The task that sends a claim's coupon (voucher_grab.claims), deferred by the claim and by
# the resumption of a send that waited (voucher_grab.waiting).
SEND_COUPON = "vouchers.send_coupon"


class StockStatus(StrEnum):
    OPENING = "opening"  # created here; being created and started at WeChat Pay
    RUNNING = "running"  # started at WeChat Pay: coupons can be sent
    PAUSED = "paused"  # paused at WeChat Pay by an operator: no claims until restarted
    FAILED = "failed"  # WeChat Pay refused to create or start it (last_error says why)


class ClaimState(StrEnum):
    SENDING = "sending"  # committed here; the coupon is being sent
    # its stock is paused: the send waits for it to restart (voucher_grab.waiting)
    WAITING = "waiting"
    SENT = "sent"  # WeChat Pay sent it (coupon_id)
    USED = "used"  # spent (COUPON.USE)
    FAILED = "failed"  # WeChat Pay refused to send it; the claim was given back


class VoucherStock(Base):
    """A stock of the campaign, mirroring a WeChat Pay 代金券 stock. ``claimed`` counts the
    claims that hold a coupon of it (sending, sent or used) and never passes
    ``max_coupons``: one conditional UPDATE takes one."""

    __tablename__ = "vouchers_stock"

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), index=True
    )
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(20))
    coupon_amount_cents: Mapped[int]
    threshold_cents: Mapped[int]
    max_coupons: Mapped[int]
    max_per_member: Mapped[int]
    claimed: Mapped[int] = mapped_column(default=0)
    appid: Mapped[str] = mapped_column(String(64))
    status: Mapped[StockStatus] = mapped_column(String(16), default=StockStatus.OPENING)
    wechat_stock_id: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=now)


class VoucherClaim(Base):
    """A member's claim of one coupon: committed first, then sent with ``out_request_no``
    (WeChat Pay sends one coupon per request number, however often it is asked)."""

    __tablename__ = "vouchers_claim"
    __table_args__ = (
        Index("ix_vouchers_claim_member", "membership_id", "id"),
        # The opening-minute dashboard: claims by state, and the last minute's, of one grab.
        Index("ix_vouchers_claim_activity_state", "activity_id", "state", "claimed_at"),
        # The sends waiting for a paused stock (few, and none in a grab running well).
        Index(
            "ix_vouchers_claim_waiting",
            "stock_id",
            "waiting_since",
            sqlite_where=text("state = 'waiting'"),
            postgresql_where=text("state = 'waiting'"),
        ),
    )

    id: Mapped[IdPk]
    stock_id: Mapped[int] = mapped_column(BigId, ForeignKey("vouchers_stock.id"), index=True)
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    # The member's org when they claimed: the org whose share (``max_per_org``) it took.
    org_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    openid: Mapped[str] = mapped_column(String(128))
    out_request_no: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[ClaimState] = mapped_column(String(16), default=ClaimState.SENDING)
    coupon_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime] = mapped_column(default=now)
    # When its send first waited for the stock to restart (kept: the wait is bounded in all).
    waiting_since: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]


class OrgShare(Base):
    """How many coupons of a campaign the members of one org hold (sending, sent or used),
    when the campaign caps it (``max_per_org``): one conditional upsert takes one, so the
    cap is never passed, and only the members of one org wait on its row."""

    __tablename__ = "vouchers_org_share"
    __table_args__ = (UniqueConstraint("activity_id", "org_id"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    claimed: Mapped[int] = mapped_column(default=0)
