"""Self-service verification with a daily limit on failed attempts.

:func:`gonghui.members.service.verify` holds the matching rule; this use case wraps it for
members calling the API: every attempt is recorded, and after
``MAX_FAILED_ATTEMPTS_PER_DAY`` failures in one local day the account must wait for the
next day (or ask for a manual review). Failures are stored even though the attempt is
refused (``keep_changes``), so that the count cannot be reset by failing.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui.clock import now, start_of_local_day
from gonghui.errors import DomainError, RateLimited
from gonghui.members.errors import MembersError
from gonghui.members.models import Membership, VerificationAttempt
from gonghui.members.service import verify

MAX_FAILED_ATTEMPTS_PER_DAY = 10
_OK = "ok"


def verify_member(session: Session, *, user_id: int, name: str, id_number: str) -> Membership:
    day_start = start_of_local_day()
    failures = session.scalar(
        select(func.count())
        .select_from(VerificationAttempt)
        .where(
            VerificationAttempt.user_id == user_id,
            VerificationAttempt.at >= day_start,
            VerificationAttempt.outcome != _OK,
        )
    )
    if (failures or 0) >= MAX_FAILED_ATTEMPTS_PER_DAY:
        wait = day_start.timestamp() + 24 * 3600 - now().timestamp()
        raise RateLimited(
            MembersError.VERIFY_THROTTLED,
            "too many failed verification attempts today; try tomorrow or ask for a review",
            retry_after_s=max(int(wait), 1),
        )
    try:
        membership = verify(session, user_id=user_id, name=name, id_number=id_number)
    except DomainError as exc:
        session.add(VerificationAttempt(user_id=user_id, outcome=exc.code[:64]))
        exc.keep_changes = True
        raise
    session.add(VerificationAttempt(user_id=user_id, outcome=_OK))
    return membership
