"""Platform calls that act on the union's members: award points, send a notice by SMS.

Only a function running with the app's server rights may make them, and only for members
of the app's org subtree (others answer "not found", as everywhere). Each takes a key,
usually the triggering event's id: deliveries are at least once, and a repeated key
answers as the first call did instead of awarding or sending twice. Functions never see
a member's phone number: the platform looks it up and sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts.models import User
from gonghui.activities import idempotency
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.baas.permissions import Caller
from gonghui.benefits.service import add_points
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


def award_points(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    _server_only(caller)
    membership = _member_in_app(session, caller, args.get("membership_id"))
    points = int(args.get("points") or 0)
    if not 1 <= points <= MAX_POINTS:
        raise SdkRefusal(FunctionsError.BAD_CALL, f"points: between 1 and {MAX_POINTS}")
    activity_id = args.get("activity_id")

    def award() -> dict[str, Any]:
        add_points(
            session,
            membership_id=membership.id,
            activity_id=int(activity_id) if activity_id else None,
            points=points,
            source=f"app:{caller.app_id}",
        )
        return {"membership_id": membership.id, "points": points}

    return idempotency.run_once(
        session,
        membership_id=membership.id,
        key=_key(args),
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
