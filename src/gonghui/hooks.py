"""The hook bus for events of the union's business that other domains react to.

A domain emits an event inside its transaction (a member took part in an activity, won a
prize, was verified); subscribers record what they need in the same transaction, so a
rolled-back change fires nothing. The subscribers are the baas trigger outbox
(:func:`gonghui.baas.triggers.service.org_event`), OAuth clients' webhook endpoints
(:mod:`gonghui.openplatform.webhooks`) and members' notifications
(:mod:`gonghui.notifications.events`), all delivering after commit.

:class:`LazyModules` is how every registry of this kind (these subscribers, WeChat Pay's
notification handlers, an app template's sections) finds the modules that register with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from gonghui.observability import request_id_var


class OrgEvent(StrEnum):
    PARTICIPATED = "activity.participated"
    PRIZE_WON = "activity.prize_won"
    VERIFICATION_APPROVED = "members.verification_approved"
    ACTIVITY_PUBLISHED = "activity.published"
    VOUCHER_USED = "benefits.voucher_used"
    ORDER_PAID = "mall.order_paid"
    VERIFICATION_REJECTED = "members.verification_rejected"
    VOUCHER_ISSUED = "benefits.voucher_issued"
    ORDER_SHIPPED = "mall.order_shipped"


class LazyModules:
    """The modules that register with a registry when imported, imported (once) before
    the registry is first used: they import the registry's module, so it cannot import
    them."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self._loaded = False

    def load(self) -> None:
        if not self._loaded:
            for name in self.names:
                importlib.import_module(name)
            self._loaded = True


# A subscriber is told of one or more events of one kind in one org: their payloads, and
# the request each is for (in the same order).
Subscriber = Callable[
    [Session, int, OrgEvent, Sequence[dict[str, Any]], Sequence[str | None]], None
]

SUBSCRIBER_MODULES = LazyModules(
    "gonghui.baas.triggers.service",
    "gonghui.openplatform.webhooks",
    "gonghui.notifications.events",
)
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    _subscribers.remove(subscriber)


def emit(session: Session, *, org_id: int, event: OrgEvent, payload: dict[str, Any]) -> None:
    """Tell every subscriber, inside the caller's transaction, that ``event`` happened in
    ``org_id``. Payloads carry ids, never personal data."""
    emit_many(session, org_id=org_id, event=event, payloads=[payload])


def emit_many(
    session: Session,
    *,
    org_id: int,
    event: OrgEvent,
    payloads: Sequence[dict[str, Any]],
    request_ids: Sequence[str | None] | None = None,
) -> None:
    """:func:`emit` once per payload, told to each subscriber at once: a batch form's
    events (a batch of draws' wins) cost a subscriber one set of rows, not a statement
    each. ``request_ids``, in the same order, are the requests the events are for (by
    default the current request)."""
    if not payloads:
        return
    if request_ids is None:
        request_ids = [request_id_var.get()] * len(payloads)
    if len(request_ids) != len(payloads):
        raise ValueError("one request id per payload")
    SUBSCRIBER_MODULES.load()
    for subscriber in list(_subscribers):
        subscriber(session, org_id, event, payloads, request_ids)
