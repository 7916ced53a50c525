"""Receiving WeChat Pay's notifications: verified and decrypted by the integration
(:func:`gonghui.integrations.wechatpay.parse_notification`), kept once by id, and handed
to the domain that handles their event type, in the same transaction.

A domain handles an event type with :func:`handles` in one of :data:`HANDLER_MODULES`
(imported before the first notification is dispatched). A notification of a type nobody
handles is kept and acknowledged, so WeChat Pay stops sending it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gonghui.db import upsert_insert
from gonghui.hooks import LazyModules
from gonghui.integrations.wechatpay import Notification, configured_merchant, parse_notification
from gonghui.payments.models import PaymentNotification
from gonghui.settings import get_settings

Handler = Callable[[Session, Notification], None]

# Modules that register handlers when imported (they import this module).
HANDLER_MODULES = LazyModules(
    "gonghui.activities.voucher_grab.claims",
    "gonghui.mall.payment",
    "gonghui.mall.refunds",
)
_handlers: dict[str, Handler] = {}


def notify_url() -> str:
    """Where WeChat Pay sends its notifications to us (the coupon callback, each order's
    ``notify_url``)."""
    return f"{get_settings().resolved_public_base_url}/api/v1/payments/wechatpay/notifications"


def handles(event_type: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``event_type``."""

    def register(handler: Handler) -> Handler:
        if _handlers.setdefault(event_type, handler) is not handler:
            raise ValueError(f"{event_type} has a handler already")
        return handler

    return register


def load_handlers() -> dict[str, Handler]:
    """The handlers by event type, once :data:`HANDLER_MODULES` are imported."""
    HANDLER_MODULES.load()
    return _handlers


def receive_wechatpay(session: Session, *, headers: dict[str, str], body: bytes) -> bool:
    """Check the notification (``NotificationRefused``: nothing is written) and act on it
    once. True if it was new, False if it was seen before (nothing runs again)."""
    return record(session, parse_notification(configured_merchant(), headers, body))


def record(session: Session, notification: Notification) -> bool:
    """Keep ``notification`` by its id and run its handler; False if kept already."""
    handlers = load_handlers()
    dialect = session.get_bind().dialect.name
    inserted = session.execute(
        upsert_insert(dialect)(PaymentNotification)
        .values(
            id=notification.id,
            event_type=notification.event_type,
            resource=notification.resource,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(PaymentNotification.id)
    ).scalar_one_or_none()
    if inserted is None:
        return False
    handler = handlers.get(notification.event_type)
    if handler is not None:
        handler(session, notification)
    return True
