"""Activities: the activity row, per-member counters (limits, chances, wins)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column

from gonghui import invalidation
from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk
from gonghui.orgs.models import Org


class ActivityKind(StrEnum):
    QUIZ = "quiz"
    LOTTERY = "lottery"
    QUIZ_LOTTERY = "quiz_lottery"
    VOUCHER_GRAB = "voucher_grab"
    MALL = "mall"  # a sale in the help-the-farmers mall: the union subsidises orders
    VOTE = "vote"  # a praise vote for model workers and craftsmen (劳模/工匠评选)
    COMPETITION = "competition"  # a skills or creative competition: entries, judges, results


class ActivityStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"
    ARCHIVED = "archived"


class Activity(Base):
    __tablename__ = "activities_activity"
    __table_args__ = (Index("ix_activities_activity_status_starts", "status", "starts_at"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    kind: Mapped[ActivityKind] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The stored status; the schedule window turns "scheduled" into live or ended as time
    # passes (see ``lifecycle.effective_status``), so no job has to flip it on time.
    status: Mapped[ActivityStatus] = mapped_column(String(16), default=ActivityStatus.DRAFT)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    limit_total: Mapped[int | None]
    limit_per_day: Mapped[int | None]
    budget_cents: Mapped[int | None]
    budget_points: Mapped[int | None]
    # Verifiable draws: SHA-256 of the seed is public from publication; the seed after the end.
    seed_commitment: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[str | None] = mapped_column(String(64))
    cloned_from_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    created_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    published_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class Counter(Base):
    """One per (activity, member, scope): ``used`` never passes ``granted``.

    Scopes: ``limit`` and ``limit:<day>`` (per-member limits), ``free:<day>`` (free draws),
    ``earned`` (chances earned by a quiz), ``wins``, ``draws`` (the member's draw number),
    ``attempts:<day>`` (quiz attempts). Claiming is one ``UPDATE ... WHERE used < granted``.
    """

    __tablename__ = "activities_counter"
    __table_args__ = (UniqueConstraint("activity_id", "membership_id", "scope"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    scope: Mapped[str] = mapped_column(String(32))
    used: Mapped[int] = mapped_column(default=0)
    granted: Mapped[int] = mapped_column(default=0)


# The topic under which the hub's catalog of open activities learns of changes (see
# :mod:`gonghui.activities.catalog` and :mod:`gonghui.invalidation`).
CATALOG_TOPIC = "catalog"


def _touches_catalog(session: Session) -> bool:
    def ours(objects: Iterable[object]) -> bool:
        return any(isinstance(o, Activity | Org) for o in objects)

    return (
        ours(session.new)
        or ours(session.deleted)
        or any(isinstance(o, Activity | Org) and session.is_modified(o) for o in session.dirty)
    )


@event.listens_for(Session, "before_flush")
def _stamp_catalog_changes(session: Session, _context: UOWTransaction, _objects: object) -> None:
    # Activities and orgs change through the ORM (services set attributes), so every such
    # write passes here; bulk ``update(Activity)`` statements would not, and are not used.
    if _touches_catalog(session):
        invalidation.changed(session, CATALOG_TOPIC)
