"""Idempotent member actions: the first response to (member, Idempotency-Key) is kept.

The key row is inserted before the action runs, inside a savepoint: a concurrent request
with the same key waits on the unique index (PostgreSQL) or on the write lock (SQLite),
then finds the stored response instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import IdempotentResponse
from gonghui.errors import Conflict

Body = dict[str, Any]


def _stored(session: Session, membership_id: int, key: str, operation: str) -> Body | None:
    row = session.scalar(
        select(IdempotentResponse).where(
            IdempotentResponse.membership_id == membership_id, IdempotentResponse.key == key
        )
    )
    if row is None:
        return None
    if row.operation != operation:
        raise Conflict(
            ActivitiesError.IDEMPOTENCY_MISMATCH,
            "this Idempotency-Key was used for another request",
        )
    assert row.body is not None
    return row.body


def run_once(
    session: Session,
    *,
    membership_id: int,
    key: str | None,
    operation: str,
    action: Callable[[], Body],
) -> Body:
    """``action()``'s body, or the body stored for this key by an earlier request."""
    if key is None:
        return action()
    stored = _stored(session, membership_id, key, operation)
    if stored is not None:
        return stored
    row = IdempotentResponse(membership_id=membership_id, key=key, operation=operation, body=None)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another request with this key committed first: answer as it did.
        stored = _stored(session, membership_id, key, operation)
        assert stored is not None
        return stored
    body = action()
    row.body = body
    session.flush()
    return body
