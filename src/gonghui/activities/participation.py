"""A member taking part: visibility (org chain), eligibility and per-member limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.clock import local_day
from gonghui.errors import Conflict, DomainError, NotFound, PermissionDenied
from gonghui.orgs.models import Org

UNLIMITED = 2**31 - 1


def chain_ids(org_path: str) -> list[int]:
    """The member's org and every ancestor: "/1/7/42/" → [1, 7, 42]."""
    return [int(p) for p in org_path.strip("/").split("/") if p]


def _visible(member: MemberInfo, activity_id: int, activity: Activity | None) -> Activity:
    if (
        activity is None
        or activity.org_id not in chain_ids(member.org_path)
        or activity.status == ActivityStatus.DRAFT
    ):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def visible_activity(session: Session, *, member: MemberInfo, activity_id: int) -> Activity:
    """The activity if its org is in the member's chain and it is published; else 404."""
    return _visible(member, activity_id, session.get(Activity, activity_id))


@dataclass(frozen=True)
class EligibilityRules:
    """An activity's eligibility rules (its ``eligibility``, as
    :class:`gonghui.activities.schemas.Eligibility` stores it), read once to be asked of
    many members."""

    tags_any: frozenset[str]
    min_membership_days: int

    @classmethod
    def of(cls, eligibility: Mapping[str, Any] | None) -> EligibilityRules:
        rules = eligibility or {}
        tags, days = rules.get("tags_any"), rules.get("min_membership_days")
        if not tags and not days:  # most activities: nothing to build on a member's path
            return _OPEN
        return cls(frozenset(str(t) for t in tags or ()), int(days or 0))

    @property
    def open_to_all(self) -> bool:
        return not self.tags_any and not self.min_membership_days

    def problem(
        self, *, tags: Iterable[str], member_since: date, today: date | None = None
    ) -> str | None:
        """Why a member with these tags, a member since that day, may not take part on
        ``today`` (default: the local day now), or None."""
        if self.tags_any and self.tags_any.isdisjoint(tags):
            return "this activity is for members with certain tags"
        days = self.min_membership_days
        if days and ((today or local_day()) - member_since).days < days:
            return f"members of at least {days} days only"
        return None


_OPEN = EligibilityRules(frozenset(), 0)


def eligibility_problem(*, member: MemberInfo, eligibility: Mapping[str, Any]) -> str | None:
    """Why the member may not take part under an activity's eligibility rules, or None."""
    return EligibilityRules.of(eligibility).problem(
        tags=member.tags, member_since=member.member_since
    )


def _live(
    member: MemberInfo,
    activity_id: int,
    activity: Activity | None,
    org: Org | None,
    kinds: set[ActivityKind],
) -> Activity:
    activity = _visible(member, activity_id, activity)
    if activity.kind not in kinds:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    status = effective_status(activity)
    if status is not ActivityStatus.LIVE:
        raise Conflict(
            ActivitiesError.NOT_LIVE, f"the activity is {status}", {"status": str(status)}
        )
    problem = eligibility_problem(member=member, eligibility=activity.eligibility or {})
    if problem is not None:
        raise PermissionDenied(ActivitiesError.NOT_ELIGIBLE, problem)
    # A member whose union is archived does not take part.
    if org is None or org.archived_at is not None:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def live_activities(
    session: Session,
    *,
    members: Sequence[MemberInfo],
    activity_id: int,
    kinds: set[ActivityKind],
) -> list[Activity | DomainError]:
    """For each member, the activity if they may act in it right now, else the reason why
    not (the activity and its org are read once for all of them)."""
    activity = session.get(Activity, activity_id)
    org = session.get(Org, activity.org_id) if activity is not None else None
    answers: list[Activity | DomainError] = []
    for member in members:
        try:
            answers.append(_live(member, activity_id, activity, org, kinds))
        except DomainError as exc:
            answers.append(exc)
    return answers


class RoundMember(Protocol):
    """A call of a batch form's round: where its answer goes and whose it is."""

    @property
    def index(self) -> int: ...

    @property
    def member(self) -> MemberInfo: ...


C = TypeVar("C", bound=RoundMember)


def live_round(
    session: Session,
    calls: Sequence[C],
    outcomes: list[dict[str, Any] | DomainError | None],
    *,
    activity_id: int,
    kinds: set[ActivityKind],
) -> tuple[Activity | None, list[C]]:
    """A round of one activity's calls (:func:`gonghui.idempotency.keyed_round`'s work):
    the activity and the calls whose member may act in it now; the others get why not in
    ``outcomes``. The activity is None when nobody may."""
    found = live_activities(
        session, members=[call.member for call in calls], activity_id=activity_id, kinds=kinds
    )
    activity: Activity | None = None
    going = []
    for call, live in zip(calls, found, strict=True):
        if isinstance(live, DomainError):
            outcomes[call.index] = live
        else:
            activity = live
            going.append(call)
    return activity, going


def live_activity(
    session: Session, *, member: MemberInfo, activity_id: int, kinds: set[ActivityKind]
) -> Activity:
    """The activity the member may act in right now, or the reason why not (raised)."""
    (answer,) = live_activities(session, members=[member], activity_id=activity_id, kinds=kinds)
    if isinstance(answer, DomainError):
        raise answer
    return answer


def claim_participations(
    session: Session, *, activity: Activity, members: Sequence[MemberInfo]
) -> dict[int, DomainError]:
    """Count one participation (a draw, a quiz attempt) for each member against the
    per-member limits, and tell the hook bus that they took part. Returns the members
    refused, by membership id, with why: nothing is counted for them."""
    refused = count_participations(
        session, activity=activity, members=[member.membership_id for member in members]
    )
    participated(
        session,
        activity=activity,
        members=[m.membership_id for m in members if m.membership_id not in refused],
    )
    return refused


def count_participations(
    session: Session, *, activity: Activity, members: Sequence[int]
) -> dict[int, DomainError]:
    """Count one participation for each member (membership ids, each once) against the
    per-member limits, without telling the hook bus yet (:func:`participated`, once the
    rest of the work is known to go ahead; :func:`release_participations` gives back what
    did not). Returns the members refused, with why: nothing is counted for them."""
    refused: dict[int, DomainError] = {}
    if activity.limit_total is not None or activity.limit_per_day is not None:
        counted = counters.claim_many(
            session,
            activity_id=activity.id,
            members=members,
            scope="limit",
            granted=activity.limit_total or UNLIMITED,
        )
        for member_id in members:
            if member_id not in counted:
                refused[member_id] = Conflict(
                    ActivitiesError.LIMIT_TOTAL, "you have used all your turns"
                )
    if activity.limit_per_day is not None:
        left = [member_id for member_id in members if member_id not in refused]
        today = counters.claim_many(
            session,
            activity_id=activity.id,
            members=left,
            scope=_today_scope(),
            granted=activity.limit_per_day,
        )
        over = [member_id for member_id in left if member_id not in today]
        counters.release_many(session, activity_id=activity.id, members=over, scope="limit")
        for member_id in over:
            refused[member_id] = Conflict(
                ActivitiesError.LIMIT_DAY, "no more turns today; come back tomorrow"
            )
    return refused


def release_participations(session: Session, *, activity: Activity, members: Sequence[int]) -> None:
    """Give back the participations :func:`count_participations` counted in this
    transaction for ``members`` (whose work was then refused)."""
    if activity.limit_total is not None or activity.limit_per_day is not None:
        counters.release_many(session, activity_id=activity.id, members=members, scope="limit")
    if activity.limit_per_day is not None:
        counters.release_many(
            session, activity_id=activity.id, members=members, scope=_today_scope()
        )


def participated(session: Session, *, activity: Activity, members: Sequence[int]) -> None:
    """Tell the hook bus that each member (membership ids) took part."""
    hooks.emit_many(
        session,
        org_id=activity.org_id,
        event=hooks.OrgEvent.PARTICIPATED,
        payloads=[
            {"activity_id": activity.id, "kind": str(activity.kind), "membership_id": member_id}
            for member_id in members
        ],
    )


def _today_scope() -> str:
    return f"limit:{local_day().isoformat()}"


def claim_participation(session: Session, *, member: MemberInfo, activity: Activity) -> None:
    """Count one member's participation (see :func:`claim_participations`); raises if the
    limits refuse it."""
    refused = claim_participations(session, activity=activity, members=[member])
    if refused:
        raise refused[member.membership_id]


def release_participation(
    session: Session, *, activity_id: int, membership_id: int, at: datetime
) -> None:
    """Give back one participation counted at ``at`` that came to nothing (a coupon WeChat
    Pay refused to send): the member's turn in all and on that day."""
    for scope in ("limit", f"limit:{local_day(at).isoformat()}"):
        counters.release_many(
            session, activity_id=activity_id, members=[membership_id], scope=scope
        )
