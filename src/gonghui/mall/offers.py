"""What the checkout page offers a member before they check out: the mall sales whose
subsidy they may use now, the vouchers of theirs an order of this size could spend, and
whether they can pay at all (WeChat linked). Checkout decides for good: these only
narrow the choices a page shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts.identities import wechat_openid
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.participation import chain_ids, live_activity
from gonghui.activities.schemas import MallRules
from gonghui.benefits.models import Voucher, VoucherStatus
from gonghui.clock import now
from gonghui.errors import DomainError
from gonghui.mall.checkout import payer_appid


@dataclass(frozen=True, slots=True)
class SaleOffer:
    activity_id: int
    title: str
    subsidy_percent: int
    member_cap_cents_per_month: int


def open_sales(session: Session, *, member: MemberInfo) -> list[SaleOffer]:
    """The live mall sales of the member's union and those above it that they may use."""
    candidates = session.scalars(
        select(Activity.id)
        .where(
            Activity.kind == ActivityKind.MALL,
            Activity.org_id.in_(chain_ids(member.org_path)),
            Activity.status.in_([ActivityStatus.SCHEDULED, ActivityStatus.LIVE]),
            Activity.ends_at > now(),
        )
        .order_by(Activity.id)
    ).all()
    offers = []
    for activity_id in candidates:
        try:
            activity = live_activity(
                session, member=member, activity_id=activity_id, kinds={ActivityKind.MALL}
            )
        except DomainError:
            continue
        rules = MallRules.model_validate(activity.config["mall"])
        offers.append(
            SaleOffer(
                activity_id=activity.id,
                title=activity.title,
                subsidy_percent=rules.subsidy_percent,
                member_cap_cents_per_month=rules.member_cap_cents_per_month,
            )
        )
    return offers


def usable_vouchers(session: Session, *, membership_id: int, goods_cents: int) -> list[Voucher]:
    """The member's issued vouchers valid now whose threshold ``goods_cents`` reaches (not
    those limited to named merchants: the mall is none of them)."""
    instant = now()
    return list(
        session.scalars(
            select(Voucher)
            .where(
                Voucher.membership_id == membership_id,
                Voucher.status == VoucherStatus.ISSUED,
                Voucher.valid_from <= instant,
                Voucher.valid_until > instant,
                Voucher.threshold_cents <= goods_cents,
                Voucher.merchant_ids.is_(None),
            )
            .order_by(Voucher.value_cents.desc(), Voucher.id)
        )
    )


def can_pay(session: Session, *, membership_id: int) -> bool:
    """Whether the member has signed in once through the WeChat app members pay in."""
    return wechat_openid(session, membership_id=membership_id, appid=payer_appid()) is not None
