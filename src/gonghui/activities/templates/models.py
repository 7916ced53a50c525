"""Saved activity templates: an activity's design kept under a name by its org."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gonghui.activities.models import ActivityKind
from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk
from gonghui.orgs.models import Org


class ActivityTemplate(Base):
    """What an activity was designed to be (see :mod:`gonghui.activities.design`), for its
    org and every org below it to start from. Holds no participation of any kind."""

    __tablename__ = "activities_activity_template"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[ActivityKind] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column()
    eligibility: Mapped[dict[str, Any]] = mapped_column(default=dict)
    limit_total: Mapped[int | None]
    limit_per_day: Mapped[int | None]
    budget_cents: Mapped[int | None]
    budget_points: Mapped[int | None]
    # Fields of the source's configuration not saved (``config.…`` paths): the operator
    # fills them in on the activity made from the template.
    left_out: Mapped[list[Any]] = mapped_column(default=list)
    source_activity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("activities_activity.id")
    )
    # The source's start: the configuration's instants (a competition's registration window
    # and deadline) keep their distance from it in an activity made from the template
    # (None: the source was gone when this was first recorded; the instants stay as saved).
    anchor_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)

    # Loaded with the row: every reader shows whose template it is.
    org: Mapped[Org] = relationship(lazy="joined", viewonly=True)

    @property
    def org_name(self) -> str:
        return self.org.name
