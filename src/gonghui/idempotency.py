"""Idempotent member actions: the first response to (member, Idempotency-Key) is kept.

Shared by every domain whose member actions take a key (draws, quiz answers, voucher
redemptions, functions' member operations); it owns its table.

A request claims its key before it acts, by inserting the key's row (``ON CONFLICT DO
NOTHING``): a concurrent request with the same key waits on the unique index (PostgreSQL)
or on the write lock (SQLite), then finds the stored response instead of acting twice.
The row gets the response once the action succeeds; an action that fails takes the row
with it (its transaction or savepoint rolls back, or :func:`drop_keys` for one refused in
a batch), so that a retry acts afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Delete,
    ForeignKey,
    String,
    UniqueConstraint,
    Update,
    bindparam,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk, upsert_insert
from gonghui.errors import Conflict, DomainError

Body = dict[str, Any]
# (membership id, key, operation)
KeyClaim = tuple[int, str, str]


class IdempotencyError(StrEnum):
    # The code predates this module's move out of activities; clients match on it.
    KEY_REUSED = "activities.idempotency_key_reused"


class IdempotentResponse(Base):
    """The first response to a member's request with an ``Idempotency-Key``; retries get it."""

    # The table keeps the name it had under activities (no migration for a move).
    __tablename__ = "activities_idempotent_response"
    __table_args__ = (UniqueConstraint("membership_id", "key"),)

    id: Mapped[IdPk]
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    key: Mapped[str] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(default=200)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)


@cache
def _claim(dialect: str) -> Any:
    return (
        upsert_insert(dialect)(IdempotentResponse)
        .on_conflict_do_nothing(index_elements=["membership_id", "key"])
        .returning(IdempotentResponse.membership_id, IdempotentResponse.key)
    )


@cache
def _store() -> Update:
    return (
        update(IdempotentResponse)
        .where(
            IdempotentResponse.membership_id == bindparam("m_"),
            IdempotentResponse.key == bindparam("k_"),
        )
        .values(body=bindparam("body_"))
    )


@cache
def _drop() -> Delete:
    return delete(IdempotentResponse).where(
        IdempotentResponse.membership_id == bindparam("m_"),
        IdempotentResponse.key == bindparam("k_"),
    )


def claim_keys(session: Session, claims: Sequence[KeyClaim]) -> list[Body | DomainError | None]:
    """Claim each (member, key) for its operation: None where this request now owns the key
    (it acts, then :func:`store_bodies`), else the body an earlier request stored, or the
    error for a key used for another operation. Each (member, key) appears once."""
    if not claims:
        return []
    connection = session.connection()
    instant = now()
    rows = [
        {"membership_id": m, "key": k, "operation": op, "body": None, "created_at": instant}
        for m, k, op in claims
    ]
    statement = _claim(session.get_bind().dialect.name)
    owned = {(m, k) for m, k in connection.execute(statement, rows)}
    taken = [(m, k) for m, k, _ in claims if (m, k) not in owned]
    stored: dict[tuple[int, str], tuple[str, Body | None]] = {}
    if taken:
        found = connection.execute(
            select(
                IdempotentResponse.membership_id,
                IdempotentResponse.key,
                IdempotentResponse.operation,
                IdempotentResponse.body,
            ).where(tuple_(IdempotentResponse.membership_id, IdempotentResponse.key).in_(taken))
        )
        stored = {(m, k): (op, body) for m, k, op, body in found}
    answers: list[Body | DomainError | None] = []
    for m, k, op in claims:
        if (m, k) in owned:
            answers.append(None)
            continue
        operation, body = stored[(m, k)]
        if operation != op:
            answers.append(
                Conflict(
                    IdempotencyError.KEY_REUSED,
                    "this Idempotency-Key was used for another request",
                )
            )
            continue
        assert body is not None  # stored with its response in the transaction that claimed it
        answers.append(body)
    return answers


def store_bodies(session: Session, answered: Sequence[tuple[int, str, Body]]) -> None:
    """Keep each owned key's response for its retries."""
    if answered:
        session.connection().execute(
            _store(), [{"m_": m, "k_": k, "body_": body} for m, k, body in answered]
        )


def drop_keys(session: Session, refused: Sequence[tuple[int, str]]) -> None:
    """Give up owned keys whose requests were refused: a retry acts afresh."""
    if refused:
        session.connection().execute(_drop(), [{"m_": m, "k_": k} for m, k in refused])


def settle_keys(
    session: Session, owned: Sequence[tuple[int, str, Body | DomainError | None]]
) -> None:
    """After a batch form's requests with owned keys: keep each answer given, give up each
    key whose request was refused (:func:`store_bodies`, :func:`drop_keys`)."""
    store_bodies(session, [(m, k, a) for m, k, a in owned if isinstance(a, dict)])
    drop_keys(session, [(m, k) for m, k, a in owned if isinstance(a, DomainError)])


class RoundCall(Protocol):
    """A call of a batch form (:mod:`gonghui.hotwrite`): where its answer goes, its
    member and its idempotency key."""

    @property
    def index(self) -> int: ...

    @property
    def member_id(self) -> int: ...

    @property
    def key(self) -> str | None: ...


C = TypeVar("C", bound=RoundCall)


def keyed_round(
    session: Session,
    calls: Sequence[C],
    outcomes: list[Body | DomainError | None],
    *,
    operation: Callable[[C], str],
    work: Callable[[list[C]], None],
) -> None:
    """One round of a batch form's calls (each member at most once, ``hotwrite.rounds``):
    claim their keys in member order (every batch locks key rows in that order), answer
    each call whose key was answered before, let ``work`` fill in the others' ``outcomes``,
    then keep or give up the keys this round owned by what it answered."""
    keyed = sorted((call for call in calls if call.key is not None), key=lambda c: c.member_id)
    earlier = claim_keys(session, [(c.member_id, c.key or "", operation(c)) for c in keyed])
    owned = []
    for call, answer in zip(keyed, earlier, strict=True):
        if answer is None:
            owned.append(call)
        else:
            outcomes[call.index] = answer
    work([call for call in calls if outcomes[call.index] is None])
    settle_keys(session, [(c.member_id, c.key or "", outcomes[c.index]) for c in owned])


def run_once(
    session: Session,
    *,
    membership_id: int,
    key: str | None,
    operation: str,
    action: Callable[[], Body],
) -> Body:
    """``action()``'s body, or the body stored for this key by an earlier request. If the
    action raises, the caller's transaction (or savepoint) rolls the key's row back."""
    if key is None:
        return action()
    (earlier,) = claim_keys(session, [(membership_id, key, operation)])
    if isinstance(earlier, DomainError):
        raise earlier
    if earlier is not None:
        return earlier
    body = action()
    store_bodies(session, [(membership_id, key, body)])
    return body
