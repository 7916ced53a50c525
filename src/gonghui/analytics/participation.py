"""What counts as a member taking part in an activity, read from each kind's own rows: a
lottery draw, a quiz attempt, a vote not voided, a voucher-grab claim not refused, a paid
mall order of a sale, a place in a competition entry. One row per act: (membership,
activity, when)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select, union_all

from gonghui.activities.competition.models import Entry, EntryMember
from gonghui.activities.lottery.models import Draw
from gonghui.activities.quiz.models import Attempt
from gonghui.activities.vote.models import Vote
from gonghui.activities.voucher_grab.models import ClaimState, VoucherClaim
from gonghui.mall.models import Order


def acts(activity_ids: Select[Any] | None = None) -> Any:
    """A subquery of every act of taking part (``membership_id``, ``activity_id``, ``at``),
    of the activities ``activity_ids`` selects (None: all)."""

    def only(column: Any) -> list[ColumnElement[bool]]:
        return [] if activity_ids is None else [column.in_(activity_ids)]

    parts = [
        select(Draw.membership_id, Draw.activity_id, Draw.at.label("at")).where(
            *only(Draw.activity_id)
        ),
        select(Attempt.membership_id, Attempt.activity_id, Attempt.started_at.label("at")).where(
            *only(Attempt.activity_id)
        ),
        select(Vote.membership_id, Vote.activity_id, Vote.at.label("at")).where(
            Vote.voided_at.is_(None), *only(Vote.activity_id)
        ),
        select(
            VoucherClaim.membership_id,
            VoucherClaim.activity_id,
            VoucherClaim.claimed_at.label("at"),
        ).where(VoucherClaim.state != ClaimState.FAILED, *only(VoucherClaim.activity_id)),
        select(Order.membership_id, Order.activity_id, Order.paid_at.label("at")).where(
            Order.activity_id.is_not(None), Order.paid_at.is_not(None), *only(Order.activity_id)
        ),
        select(EntryMember.membership_id, EntryMember.activity_id, Entry.created_at.label("at"))
        .join(Entry, Entry.id == EntryMember.entry_id)
        .where(*only(EntryMember.activity_id)),
    ]
    return union_all(*parts).subquery("acts")
