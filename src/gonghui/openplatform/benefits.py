"""The open API's ``benefits:read``: the wallet of the member who granted the token, as a
client may see it: points, vouchers without their codes (a code is what a merchant takes
as payment), prizes without the delivery address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.benefits import service as benefits
from gonghui.benefits.service import Wallet
from gonghui.members.models import Membership, MembershipStatus


def member_wallet(session: Session, *, user_id: int) -> Wallet:
    """The member's wallet; empty without a verified membership."""
    membership_id = session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id, Membership.status == MembershipStatus.VERIFIED
        )
    )
    if membership_id is None:
        return Wallet(points=0, vouchers=[], prizes=[])
    return benefits.wallet(session, membership_id=membership_id)
