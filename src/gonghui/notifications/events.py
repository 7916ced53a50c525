"""What of the union's business notifies a member: the hook bus's events
(:mod:`gonghui.hooks`) turned into notifications.

The subscriber runs inside the emitting transaction (a lottery draw's hot write path
among them), so it only defers one task carrying the event: a rolled-back change notifies
no one, and the lookups, the inbox row and the channels' deliveries are the worker's. The
tasks run in groups (:func:`gonghui.tasks.grouped`): the wins of a draw burst are told a
hundred to a transaction, not one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hooks, tasks
from gonghui.activities.models import Activity
from gonghui.db import once_per_session, unit_of_work
from gonghui.members.models import Membership
from gonghui.notifications.models import Event
from gonghui.notifications.service import Notice, notify_many
from gonghui.orgs.models import Org

ON_EVENT = "notifications.on_event"

_EVENTS: dict[hooks.OrgEvent, Event] = {
    hooks.OrgEvent.PRIZE_WON: Event.PRIZE_WON,
    hooks.OrgEvent.VERIFICATION_APPROVED: Event.VERIFICATION_APPROVED,
    hooks.OrgEvent.VERIFICATION_REJECTED: Event.VERIFICATION_REJECTED,
    hooks.OrgEvent.VOUCHER_ISSUED: Event.VOUCHER_ARRIVED,
    hooks.OrgEvent.ORDER_SHIPPED: Event.ORDER_SHIPPED,
}


def on_org_event(
    session: Session,
    org_id: int,
    event: hooks.OrgEvent,
    payloads: Sequence[dict[str, Any]],
    request_ids: Sequence[str | None],
) -> None:
    mapped = _EVENTS.get(event)
    if mapped is not None:
        tasks.defer_many(
            session,
            ON_EVENT,
            [{"event": str(mapped), "org_id": org_id, "payload": p} for p in payloads],
            request_ids=request_ids,
        )


hooks.subscribe(on_org_event)


def _users_of(session: Session, batch: list[dict[str, Any]]) -> dict[int, int]:
    """The user of each membership the batch's payloads name (one query)."""
    ids = {
        int(one["payload"]["membership_id"])
        for one in batch
        if one["payload"].get("membership_id") is not None
    }
    if not ids:
        return {}
    rows = session.execute(select(Membership.id, Membership.user_id).where(Membership.id.in_(ids)))
    return {int(m): int(u) for m, u in rows}


def _user_of(payload: dict[str, Any], users: dict[int, int]) -> int | None:
    if payload.get("user_id") is not None:
        return int(payload["user_id"])
    if payload.get("membership_id") is not None:
        return users.get(int(payload["membership_id"]))
    return None


def _name(session: Session, column: Any, id_column: Any, row_id: int) -> str:
    """An activity's title or an org's name, read once per session (a group of one
    activity's wins reads its title once)."""
    return once_per_session(
        session,
        "notifications.names",
        (str(column), row_id),
        lambda: session.scalar(select(column).where(id_column == row_id)) or "",
    )


def _activity(session: Session, payload: dict[str, Any]) -> str:
    if payload.get("activity_id") is None:
        return ""
    return _name(session, Activity.title, Activity.id, int(payload["activity_id"]))


def variables(
    session: Session, event: Event, org_id: int, payload: dict[str, Any]
) -> dict[str, str]:
    """The event's template variables from its payload (ids in, names out)."""
    if event == Event.PRIZE_WON:
        prize = payload.get("prize") or {}
        return {"activity": _activity(session, payload), "prize": str(prize.get("name", ""))}
    if event in (Event.VERIFICATION_APPROVED, Event.VERIFICATION_REJECTED):
        return {
            "org": _name(session, Org.name, Org.id, org_id),
            "note": str(payload.get("note") or ""),
        }
    if event == Event.VOUCHER_ARRIVED:
        cents = int(payload.get("amount_cents") or 0)
        return {"activity": _activity(session, payload), "amount": f"{cents / 100:g}"}
    if event == Event.ORDER_SHIPPED:
        return {
            "order_id": str(payload.get("order_id", "")),
            "courier": str(payload.get("courier_company", "")),
            "courier_no": str(payload.get("courier_no", "")),
        }
    return {}


@tasks.grouped(ON_EVENT, max_attempts=5)
def on_events(batch: list[dict[str, Any]]) -> None:
    with unit_of_work() as session:
        users = _users_of(session, batch)
        notices = []
        for one in batch:
            event, org_id, payload = Event(one["event"]), int(one["org_id"]), one["payload"]
            user_id = _user_of(payload, users)
            if user_id is not None:
                notices.append(
                    Notice(org_id, user_id, event, variables(session, event, org_id, payload))
                )
        notify_many(session, notices)
        tasks.complete(session)
