"""Platform calls that act on the union's members: award points, send a notice by SMS.

Only a function running with the app's server rights may make them, and only for members
of the app's org subtree (others answer "not found", as everywhere). Each takes a key,
usually the triggering event's id: deliveries are at least once, and a repeated key
answers as the first call did instead of awarding or sending twice. Functions never see
a member's phone number: the platform looks it up and sends.

Points a function awards are charged to the points budget of an activity of the app's
org subtree (``activity_id``), with the same conditional UPDATE every other issue uses, so
concurrent awards never pass the budget; each award writes an audit row naming the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import idempotency
from gonghui.accounts.models import User
from gonghui.activities.models import Activity
from gonghui.audit import service as audit
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.baas.permissions import Caller
from gonghui.benefits.models import Budget
from gonghui.benefits.service import add_points, charge_budget
from gonghui.integrations.sms import NoticeMessage, get_sms_sender
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, unseal
from gonghui.tenancy import within

MAX_POINTS = 10_000


def _server_only(caller: Caller) -> None:
    if not caller.server:
        raise SdkRefusal(
            FunctionsError.SERVER_ONLY, "only a function that runs with server rights may do this"
        )


def _member_in_app(session: Session, caller: Caller, membership_id: Any) -> Membership:
    membership = session.scalar(
        select(Membership)
        .join(Org, Org.id == Membership.org_id)
        .where(Membership.id == int(membership_id), within(Org.path, caller.org_path))
    )
    if membership is None:
        raise SdkRefusal(FunctionsError.MEMBER_NOT_FOUND, f"member {membership_id} not found")
    return membership


def _key(args: dict[str, Any]) -> str:
    key = str(args.get("key") or "")
    if not 1 <= len(key) <= 128:
        raise SdkRefusal(FunctionsError.BAD_CALL, "key: the event id, 1-128 characters")
    return key


def _activity_in_app(session: Session, caller: Caller, activity_id: Any) -> Activity:
    if isinstance(activity_id, bool) or not isinstance(activity_id, int):
        activity_id = 0
    if not 1 <= activity_id < 2**63:  # a database id
        raise SdkRefusal(
            FunctionsError.BAD_CALL, "activity_id: the activity whose points budget pays"
        )
    activity = session.scalar(
        select(Activity)
        .join(Org, Org.id == Activity.org_id)
        .where(Activity.id == activity_id, Org.path.startswith(caller.org_path))
    )
    if activity is None:
        raise SdkRefusal(FunctionsError.ACTIVITY_NOT_FOUND, f"activity {activity_id} not found")
    return activity


def award_points(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    _server_only(caller)
    membership = _member_in_app(session, caller, args.get("membership_id"))
    points = args.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_POINTS:
        raise SdkRefusal(FunctionsError.BAD_CALL, f"points: between 1 and {MAX_POINTS}")
    activity = _activity_in_app(session, caller, args.get("activity_id"))
    key = _key(args)

    def award() -> dict[str, Any]:
        budget = session.get(Budget, activity.id)
        if budget is None or budget.points_total is None:
            # No budget row (a draft) or no points budget: nothing caps the issue.
            raise SdkRefusal(
                FunctionsError.NO_POINTS_BUDGET,
                f"activity {activity.id} has no points budget to award from",
            )
        if not charge_budget(session, activity_id=activity.id, points=points):
            raise SdkRefusal(
                FunctionsError.BUDGET_EXHAUSTED,
                f"activity {activity.id}'s points budget has less than {points} left",
            )
        add_points(
            session,
            membership_id=membership.id,
            activity_id=activity.id,
            points=points,
            source=f"app:{caller.app_id}",
        )
        audit.record(
            session,
            actor=None,
            action="benefits.points_awarded_by_function",
            org_id=activity.org_id,
            subject_type="membership",
            subject_id=membership.id,
            details={
                "app_id": caller.app_id,
                "activity_id": activity.id,
                "points": points,
                "key": key,
            },
        )
        return {"membership_id": membership.id, "activity_id": activity.id, "points": points}

    return idempotency.run_once(
        session,
        membership_id=membership.id,
        key=key,
        operation=f"functions.award_points:{caller.app_id}",
        action=award,
    )


def notify_by_sms(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    _server_only(caller)
    membership = _member_in_app(session, caller, args.get("membership_id"))
    raw = args.get("params") or {}
    if not isinstance(raw, dict) or len(raw) > 10:
        raise SdkRefusal(FunctionsError.BAD_CALL, "params: up to 10 template parameters")
    params = {str(k)[:20]: str(v)[:40] for k, v in raw.items()}
    text = str(args.get("text") or "")[:200]

    def send() -> dict[str, Any]:
        entry = session.get(RosterEntry, membership.roster_entry_id)
        user = session.get(User, membership.user_id)
        blob = (entry.phone_enc if entry else None) or (user.phone_enc if user else None)
        if blob is None:
            return {"sent": False, "reason": "no phone number"}
        phone = unseal(PiiField.PHONE, blob)
        get_sms_sender().send_notice(NoticeMessage(phone=phone, params=params, text=text))
        return {"sent": True}

    return idempotency.run_once(
        session,
        membership_id=membership.id,
        key=_key(args),
        operation=f"functions.notify_sms:{caller.app_id}",
        action=send,
    )


OPS: dict[str, Callable[[Session, Caller, dict[str, Any]], Any]] = {
    "benefits.award_points": award_points,
    "members.notify_sms": notify_by_sms,
}
