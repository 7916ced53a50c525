"""Activities as operators run them: create, edit, publish, pause, resume, end, clone,
repeat.

The lifecycle is draft → scheduled → live → paused → ended → archived. "Live" and "ended"
follow from the schedule window and the server clock (:func:`effective_status`), so an
activity opens and closes on time without a job flipping it.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.activities import design
from gonghui.activities.competition import form as competition_form
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery import fairness
from gonghui.activities.lottery.models import PoolPrize, PrizeKind
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.schemas import (
    ActivityConfig,
    ActivityCreate,
    ActivityUpdate,
    LotteryRules,
    QuizRules,
)
from gonghui.activities.voucher_grab import stocks as voucher_stocks
from gonghui.audit import service as audit
from gonghui.benefits import service as benefits
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, field_error
from gonghui.merchants import directory as merchants
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, get_scoped, list_scoped, require_org, scoped

MANAGE = Permission.ACTIVITIES_MANAGE
# What an operator may still change once members can see the activity.
SAFE_WHEN_PUBLISHED = frozenset({"title", "description", "ends_at"})

_config_adapter: TypeAdapter[Any] = TypeAdapter(ActivityConfig)


def status_at(
    stored: str, starts_at: datetime, ends_at: datetime, instant: datetime
) -> ActivityStatus:
    """The status members see at ``instant``: the stored one, moved along by the window."""
    status = ActivityStatus(stored)
    if status in (ActivityStatus.SCHEDULED, ActivityStatus.LIVE, ActivityStatus.PAUSED):
        if instant >= ends_at:
            return ActivityStatus.ENDED
        if status is ActivityStatus.SCHEDULED and instant >= starts_at:
            return ActivityStatus.LIVE
    return status


def effective_status(activity: Activity, at: datetime | None = None) -> ActivityStatus:
    """The status members see now (or ``at``)."""
    return status_at(activity.status, activity.starts_at, activity.ends_at, at or now())


def lottery_rules(activity: Activity) -> LotteryRules | None:
    raw = activity.config.get("lottery")
    return None if raw is None else LotteryRules.model_validate(raw)


def quiz_rules(activity: Activity) -> QuizRules | None:
    raw = activity.config.get("quiz")
    return None if raw is None else QuizRules.model_validate(raw)


def _check_window(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput(
            ActivitiesError.BAD_WINDOW,
            "the activity must end after it starts",
            [field_error("ends_at", ActivitiesError.BAD_WINDOW, "must be after starts_at")],
        )


def _audit(session: Session, actor: Actor, action: str, activity: Activity, **details: Any) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"activities.{action}",
        org_id=activity.org_id,
        subject_type="activity",
        subject_id=activity.id,
        details=details or None,
    )


def _check_linked_lottery(session: Session, actor: Actor, config: dict[str, Any]) -> None:
    """A quiz's chances go to a lottery the operator manages; say which field is wrong."""
    rules = config.get("quiz")
    reward = (rules or {}).get("reward") or {}
    target_id = reward.get("lottery_activity_id")
    if target_id is None:
        return
    target = session.scalar(scoped(select(Activity).where(Activity.id == target_id), actor, MANAGE))
    if target is None or target.kind not in (ActivityKind.LOTTERY, ActivityKind.QUIZ_LOTTERY):
        field = "config.quiz.reward.lottery_activity_id"
        raise InvalidInput(
            ActivitiesError.BAD_CONFIG,
            f"activity {target_id} is not a lottery you manage",
            [field_error(field, ActivitiesError.BAD_CONFIG, "not a lottery you manage")],
        )


def _check_prize_merchants(session: Session, org_id: int, config: dict[str, Any]) -> None:
    """A voucher prize names only open merchants of the activity's org or below it; say
    which prize's ``merchant_ids`` names which merchant that is not (one answer whether
    it is unknown, closed or elsewhere)."""
    prizes = (config.get("lottery") or {}).get("prizes") or []
    named = {i: list(p.get("merchant_ids") or []) for i, p in enumerate(prizes)}
    wanted = [m for ids in named.values() for m in ids]
    if not wanted:
        return
    org = session.get(Org, org_id)
    assert org is not None
    refused = set(merchants.not_open_within(session, org_path=org.path, merchant_ids=wanted))
    problems = [
        field_error(
            f"config.lottery.prizes.{i}.merchant_ids",
            ActivitiesError.MERCHANT_NOT_OPEN,
            f"merchant {bad[0]} is not an open merchant of the activity's org or below it",
        )
        for i, ids in named.items()
        if (bad := [m for m in ids if m in refused])
    ]
    if problems:
        raise InvalidInput(
            ActivitiesError.MERCHANT_NOT_OPEN,
            "a voucher prize names a merchant that is not open within the activity's org",
            problems,
        )


def _check_competition_form(session: Session, org_id: int, config: dict[str, Any]) -> None:
    """A competition's registration form is a table of an app its org manages."""
    rules = config.get("competition")
    if rules is None:
        return
    org = session.get(Org, org_id)
    assert org is not None
    competition_form.check_form(session, organiser=org, form=rules["form"])


def validated_create(payload: dict[str, Any]) -> ActivityCreate:
    """``payload`` read as :class:`ActivityCreate`; a stored design that no longer passes
    (a rule changed since it was saved) is refused field by field, as the API would."""
    try:
        return ActivityCreate.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(
            ActivitiesError.BAD_CONFIG,
            "the design is no longer valid; edit it first",
            [
                field_error(
                    ".".join(str(p) for p in e["loc"]), ActivitiesError.BAD_CONFIG, e["msg"]
                )
                for e in exc.errors()
            ],
        ) from exc


def _check_participation_limits(
    kind: ActivityKind, limit_total: int | None, limit_per_day: int | None
) -> None:
    """A vote counts each member's votes by its own rules (``config.vote``); the activity's
    participation limits would be a second, silently ignored set."""
    if kind == ActivityKind.VOTE and (limit_total is not None or limit_per_day is not None):
        message = "a vote's limits are config.vote's votes_per_day and votes_total"
        raise InvalidInput(
            ActivitiesError.BAD_CONFIG,
            message,
            [
                field_error(name, ActivitiesError.BAD_CONFIG, message)
                for name, value in (("limit_total", limit_total), ("limit_per_day", limit_per_day))
                if value is not None
            ],
        )


def create_activity(
    session: Session,
    *,
    actor: Actor,
    data: ActivityCreate,
    cloned_from_id: int | None = None,
    origin: dict[str, Any] | None = None,
) -> Activity:
    """The one way an activity comes to be (the wizard, the API, a copy, a repeat, a
    template): a draft in an org the actor manages. ``origin`` tells the audit log where
    the design came from."""
    org = require_org(session, actor, MANAGE, data.org_id)
    _check_window(data.starts_at, data.ends_at)
    _check_linked_lottery(session, actor, data.config.model_dump(mode="json"))
    _check_prize_merchants(session, org.id, data.config.model_dump(mode="json"))
    _check_competition_form(session, org.id, data.config.model_dump(mode="json"))
    _check_participation_limits(
        ActivityKind(data.config.kind), data.limit_total, data.limit_per_day
    )
    activity = Activity(
        org_id=org.id,
        kind=ActivityKind(data.config.kind),
        title=data.title,
        description=data.description,
        status=ActivityStatus.DRAFT,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        config=data.config.model_dump(mode="json"),
        eligibility=data.eligibility.model_dump(mode="json"),
        limit_total=data.limit_total,
        limit_per_day=data.limit_per_day,
        budget_cents=data.budget_cents,
        budget_points=data.budget_points,
        cloned_from_id=cloned_from_id,
        created_by=actor.user_id,
    )
    session.add(activity)
    session.flush()
    _audit(
        session,
        actor,
        "create",
        activity,
        kind=activity.kind,
        title=activity.title,
        **(origin or {}),
    )
    return activity


def get_activity(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    return get_scoped(session, Activity, activity_id, actor, MANAGE)


def list_activities(
    session: Session, *, actor: Actor, org_id: int | None = None, limit: int = 100
) -> list[Activity]:
    return list_scoped(session, Activity, actor, MANAGE, org_id=org_id, limit=limit)


def update_activity(
    session: Session, *, actor: Actor, activity_id: int, data: ActivityUpdate
) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    changes = data.model_dump(exclude_unset=True)
    status = effective_status(activity)
    if status in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED):
        raise Conflict(ActivitiesError.BAD_STATE, f"an {status} activity cannot be edited")
    if status is not ActivityStatus.DRAFT:
        locked = sorted(set(changes) - SAFE_WHEN_PUBLISHED)
        if locked:
            raise Conflict(
                ActivitiesError.FIELD_LOCKED,
                "once published only the title, description and end time may change",
                [
                    field_error(f, ActivitiesError.FIELD_LOCKED, "locked after publishing")
                    for f in locked
                ],
            )
        # (A null end, like any null for a field that cannot be empty, changes nothing.)
        if changes.get("ends_at") is not None and changes["ends_at"] <= now():
            raise InvalidInput(
                ActivitiesError.BAD_WINDOW,
                "a published activity's end can only move into the future",
                [field_error("ends_at", ActivitiesError.BAD_WINDOW, "must be in the future")],
            )
    for name in ("title", "description", "starts_at", "ends_at"):
        if name in changes and changes[name] is not None:
            setattr(activity, name, changes[name])
    if data.config is not None:
        _check_linked_lottery(session, actor, data.config.model_dump(mode="json"))
        _check_prize_merchants(session, activity.org_id, data.config.model_dump(mode="json"))
        _check_competition_form(session, activity.org_id, data.config.model_dump(mode="json"))
        activity.config = data.config.model_dump(mode="json")
        activity.kind = ActivityKind(data.config.kind)
    if data.eligibility is not None:
        activity.eligibility = data.eligibility.model_dump(mode="json")
    for name in ("limit_total", "limit_per_day", "budget_cents", "budget_points"):
        if name in changes:
            setattr(activity, name, changes[name])
    _check_window(activity.starts_at, activity.ends_at)
    _check_participation_limits(activity.kind, activity.limit_total, activity.limit_per_day)
    activity.updated_at = now()
    _audit(session, actor, "update", activity, fields=sorted(changes))
    return activity


def publish(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    """Draft → scheduled: the prize pool is stocked, the budget opened, the seed committed."""
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if activity.status != ActivityStatus.DRAFT:
        raise Conflict(
            ActivitiesError.BAD_STATE, f"only a draft can be published ({activity.status})"
        )
    if activity.ends_at <= now():
        raise InvalidInput(
            ActivitiesError.BAD_WINDOW,
            "the activity would already be over",
            [field_error("ends_at", ActivitiesError.BAD_WINDOW, "must be in the future")],
        )
    # Re-validate: the configuration may predate a rule change.
    try:
        _config_adapter.validate_python(activity.config)
    except ValidationError as exc:
        raise InvalidInput(
            ActivitiesError.BAD_CONFIG,
            "the configuration is no longer valid; edit it first",
            [
                field_error(
                    ".".join(["config", *(str(p) for p in e["loc"])]),
                    ActivitiesError.BAD_CONFIG,
                    e["msg"],
                )
                for e in exc.errors()
            ],
        ) from exc
    _check_linked_lottery(session, actor, activity.config)
    _check_prize_merchants(session, activity.org_id, activity.config)
    _check_competition_form(session, activity.org_id, activity.config)
    rules = lottery_rules(activity)
    if rules is not None:
        for position, prize in enumerate(rules.prizes):
            stock = 0 if prize.kind is PrizeKind.NONE else prize.stock
            session.add(
                PoolPrize(
                    activity_id=activity.id,
                    position=position,
                    name=prize.name,
                    kind=prize.kind,
                    weight=prize.weight,
                    initial_stock=stock,
                    stock=stock,
                    value=prize.value,
                )
            )
        seed = secrets.token_hex(32)
        activity.seed = seed
        activity.seed_commitment = fairness.commitment(seed)
    voucher_stocks.open_stocks(session, activity)
    benefits.open_budget(
        session,
        activity_id=activity.id,
        cents_total=activity.budget_cents,
        points_total=activity.budget_points,
    )
    activity.status = ActivityStatus.SCHEDULED
    activity.published_at = activity.updated_at = now()
    session.flush()
    _audit(session, actor, "publish", activity, seed_commitment=activity.seed_commitment)
    hooks.emit(
        session,
        org_id=activity.org_id,
        event=hooks.OrgEvent.ACTIVITY_PUBLISHED,
        payload={
            "activity_id": activity.id,
            "kind": str(activity.kind),
            "title": activity.title,
            "starts_at": activity.starts_at,
            "ends_at": activity.ends_at,
        },
    )
    return activity


def pause(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if effective_status(activity) is not ActivityStatus.LIVE:
        raise Conflict(ActivitiesError.BAD_STATE, "only a live activity can be paused")
    activity.status = ActivityStatus.PAUSED
    activity.updated_at = now()
    _audit(session, actor, "pause", activity)
    return activity


def resume(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if effective_status(activity) is not ActivityStatus.PAUSED:
        raise Conflict(ActivitiesError.BAD_STATE, "only a paused activity can be resumed")
    # Back to "scheduled": the window decides whether that reads as live.
    activity.status = ActivityStatus.SCHEDULED
    activity.updated_at = now()
    _audit(session, actor, "resume", activity)
    return activity


def end(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    status = effective_status(activity)
    if status in (ActivityStatus.DRAFT, ActivityStatus.ARCHIVED):
        raise Conflict(ActivitiesError.BAD_STATE, f"a {status} activity cannot be ended")
    if activity.status != ActivityStatus.ENDED:
        instant = now()
        activity.status = ActivityStatus.ENDED
        activity.ended_at = min(instant, activity.ends_at)
        activity.ends_at = min(activity.ends_at, instant)
        activity.updated_at = instant
        _audit(session, actor, "end", activity)
    return activity


def archive(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if effective_status(activity) is not ActivityStatus.ENDED:
        raise Conflict(ActivitiesError.BAD_STATE, "only an ended activity can be archived")
    activity.status = ActivityStatus.ARCHIVED
    activity.ended_at = activity.ended_at or activity.ends_at
    activity.updated_at = now()
    _audit(session, actor, "archive", activity)
    return activity


def clone(
    session: Session,
    *,
    actor: Actor,
    activity_id: int,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    title: str | None = None,
) -> Activity:
    """An activity's design as a new draft of the same org (see :mod:`.design` for what is
    left out): same rules and prizes, no members, no draws, no stock taken."""
    source = get_activity(session, actor=actor, activity_id=activity_id)
    config, left_out = design.portable_config(source.config, for_template=False)
    if starts_at is not None:
        config = design.shift_dates(config, starts_at - source.starts_at)
    data = validated_create(
        {
            "org_id": source.org_id,
            "title": title or source.title,
            "description": source.description,
            "starts_at": starts_at or source.starts_at,
            "ends_at": ends_at or source.ends_at,
            "config": config,
            "eligibility": source.eligibility,
            "limit_total": source.limit_total,
            "limit_per_day": source.limit_per_day,
            "budget_cents": source.budget_cents,
            "budget_points": source.budget_points,
        }
    )
    origin: dict[str, Any] = {"cloned_from_id": source.id}
    if left_out:
        origin["left_out"] = left_out
    return create_activity(session, actor=actor, data=data, cloned_from_id=source.id, origin=origin)


def repeat(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    """ "Repeat last month's": a draft copy whose window starts on the same day and time one
    month later (clamped to the month's last day, :func:`design.one_month_later`) and lasts
    as long. Same duration rather than "same end day" so a week-long activity stays a week
    long; a whole-month activity (1st to 31st) therefore repeats as Feb 1 to Mar 3, and the
    operator shortens it in the draft."""
    source = get_activity(session, actor=actor, activity_id=activity_id)
    starts_at = design.one_month_later(source.starts_at)
    return clone(
        session,
        actor=actor,
        activity_id=source.id,
        starts_at=starts_at,
        ends_at=starts_at + (source.ends_at - source.starts_at),
    )
