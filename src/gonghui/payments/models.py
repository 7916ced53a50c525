"""Payments: the notifications WeChat Pay delivered, each kept once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base


class PaymentNotification(Base):
    """A notification WeChat Pay delivered and we accepted, by its id: WeChat Pay sends one
    again until it is answered 2xx, and may send it twice anyway, so what it reports (a
    coupon used, an order paid, a refund made) happens here once."""

    __tablename__ = "payments_notification"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32))
    # The decrypted resource, as WeChat Pay sent it (reconciliation reads it back).
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=now)
