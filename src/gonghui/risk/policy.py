"""What an activity's risk control allows: its limits (an operator's, or the defaults),
read once per process and kept current by the change feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.activities.models import Activity
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import read_sync
from gonghui.risk.models import Flag, FlagStatus, RiskPolicy
from gonghui.tenancy import Actor, Permission, get_scoped
from gonghui.types import MAX_BIGINT

TOPIC = "risk.policy"
MANAGE = Permission.ACTIVITIES_MANAGE


class Rate(BaseModel):
    """Actions per window of one subject: at ``challenge`` the client must solve a captcha,
    past ``refuse`` it is refused outright (429). None: no such threshold."""

    model_config = ConfigDict(extra="forbid")

    challenge: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    refuse: int | None = Field(default=None, ge=1, le=MAX_BIGINT)


class Limits(BaseModel):
    """An activity's risk limits. Rates count per minute; the accounts of one network per
    ``network_window_s``. Defaults suit a member acting by hand: a person does not draw,
    claim or check out twenty times a minute."""

    model_config = ConfigDict(extra="forbid")

    account: Rate = Rate(challenge=20, refuse=60)
    device: Rate = Rate(challenge=30, refuse=120)
    ip: Rate = Rate(challenge=60, refuse=600)
    network: Rate = Rate(challenge=300, refuse=3000)
    # Distinct accounts acting from one network (an IPv4 /24, an IPv6 /64) in the window:
    # past this, the network is flagged for review and its requests are challenged.
    network_accounts: int | None = Field(default=30, ge=2, le=MAX_BIGINT)
    network_window_s: int = Field(default=600, ge=60, le=86_400)
    # Actions by accounts verified within the last hour, per ``network_window_s``, across
    # the activity: past this, a flag (a wave of fresh accounts is how farms start).
    fresh_account_actions: int | None = Field(default=200, ge=1, le=MAX_BIGINT)
    # A request without a device id (the H5 always sends one) is challenged.
    require_device_id: bool = True
    # A solved challenge lets its account act without further challenges this long
    # (hard limits still apply).
    pass_s: int = Field(default=600, ge=0, le=86_400)
    # Open flags of this activity at which it is paused automatically; None: never.
    pause_after_flags: int | None = Field(default=None, ge=1, le=MAX_BIGINT)


DEFAULTS = Limits()


@dataclass(frozen=True)
class ActivityRisk:
    """An activity's limits, and the subjects its flags name with their latest status
    (open or confirmed: challenged; dismissed: let through). ``activity_id`` None: actions
    outside any activity (a mall order without a sale), on the defaults."""

    activity_id: int | None
    org_id: int | None
    limits: Limits
    marked: dict[str, FlagStatus]


# Activity id (0: none) -> its settings; a change of either (limits set, a flag raised or
# reviewed) is announced under TOPIC with the activity id as key. An unknown activity
# (None) is not kept.
_cache: invalidation.TopicCache[int, ActivityRisk | None] = invalidation.TopicCache(
    TOPIC, key_of=lambda activity_id, _v: str(activity_id), ttl_s=300.0
)


def _load(connection: Any, activity_id: int | None) -> ActivityRisk | None:
    condition = (
        Flag.activity_id.is_(None) if activity_id is None else Flag.activity_id == activity_id
    )
    flags = connection.execute(
        select(Flag.subject, Flag.status).where(condition).order_by(Flag.id)
    ).all()
    marked = {subject: FlagStatus(status) for subject, status in flags}
    if activity_id is None:
        return ActivityRisk(None, None, DEFAULTS, marked)
    row = connection.execute(
        select(Activity.org_id, RiskPolicy.limits)
        .outerjoin(RiskPolicy, RiskPolicy.activity_id == Activity.id)
        .where(Activity.id == activity_id)
    ).first()
    if row is None:
        return None
    limits = DEFAULTS if row.limits is None else Limits.model_validate(row.limits)
    return ActivityRisk(activity_id, row.org_id, limits, marked)


def cached(activity_id: int | None) -> ActivityRisk | None:
    """The activity's risk settings if this process holds them current (no I/O)."""
    return _cache.get(activity_id or 0)


def load(activity_id: int | None) -> ActivityRisk | None:
    """The activity's risk settings, read when this process does not hold them; None for
    an unknown activity (its own service answers "not found")."""
    key = activity_id or 0
    found = _cache.get(key)
    if found is not None:
        return found
    return read_sync(
        lambda connection: _cache.read_through(
            connection, key, lambda: _load(connection, activity_id)
        )
    )


def get_limits(session: Session, *, actor: Actor, activity_id: int) -> Limits:
    get_scoped(session, Activity, activity_id, actor, MANAGE)
    row = session.get(RiskPolicy, activity_id)
    return DEFAULTS if row is None else Limits.model_validate(row.limits)


def set_limits(session: Session, *, actor: Actor, activity_id: int, limits: Limits) -> Limits:
    """An operator sets an activity's limits (audited; every process follows at once)."""
    activity = get_scoped(session, Activity, activity_id, actor, MANAGE)
    row = session.get(RiskPolicy, activity_id)
    data = limits.model_dump(mode="json")
    if row is None:
        session.add(RiskPolicy(activity_id=activity_id, limits=data, updated_by=actor.user_id))
    else:
        row.limits, row.updated_by, row.updated_at = data, actor.user_id, now()
    audit.record(
        session,
        actor=actor,
        action="risk.set_limits",
        org_id=activity.org_id,
        subject_type="activity",
        subject_id=activity_id,
        details=data,
    )
    invalidation.changed(session, TOPIC, str(activity_id))
    return limits
