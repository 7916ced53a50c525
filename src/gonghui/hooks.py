"""The hook bus for events of the union's business that other domains react to.

A domain emits an event inside its transaction (a member took part in an activity, won a
prize, was verified); subscribers record what they need in the same transaction, so a
rolled-back change fires nothing. Today the subscriber is the baas trigger outbox
(:func:`gonghui.baas.triggers.service.org_event`), which delivers after commit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session


class OrgEvent(StrEnum):
    PARTICIPATED = "activity.participated"
    PRIZE_WON = "activity.prize_won"
    VERIFICATION_APPROVED = "members.verification_approved"


Subscriber = Callable[[Session, int, OrgEvent, dict[str, Any]], None]

# Modules that subscribe when imported (they import this module, so not the other way).
SUBSCRIBER_MODULES = ("gonghui.baas.triggers.service",)
_subscribers: list[Subscriber] = []
_loaded = False


def subscribe(subscriber: Subscriber) -> None:
    _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    _subscribers.remove(subscriber)


def emit(session: Session, *, org_id: int, event: OrgEvent, payload: dict[str, Any]) -> None:
    """Tell every subscriber, inside the caller's transaction, that ``event`` happened in
    ``org_id``. Payloads carry ids, never personal data."""
    global _loaded
    if not _loaded:
        for module in SUBSCRIBER_MODULES:
            importlib.import_module(module)
        _loaded = True
    for subscriber in list(_subscribers):
        subscriber(session, org_id, event, payload)
