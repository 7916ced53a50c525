"""What we send by SMS, and the protocol every SMS adapter implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OtpMessage:
    """A one-time code to deliver; adapters render it (text or provider template)."""

    phone: str
    code: str
    ttl_minutes: int


@dataclass(frozen=True)
class NoticeMessage:
    """A notification (a prize won): the provider's notice template and its parameters,
    and the same text rendered for the development sink."""

    phone: str
    params: dict[str, str]
    text: str


class SmsSender(Protocol):
    def send_code(self, message: OtpMessage) -> None:
        """Deliver or raise :class:`gonghui.errors.UpstreamError`."""

    def send_notice(self, message: NoticeMessage) -> None:
        """Deliver or raise :class:`gonghui.errors.UpstreamError`."""
