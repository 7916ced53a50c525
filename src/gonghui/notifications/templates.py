"""Templates: the platform's defaults, an org's own (inherited down its subtree), and
rendering them. Operators write templates with ``$name`` placeholders from a fixed set
per event (:data:`VARIABLES`); rendering is :class:`string.Template`'s ``safe_substitute``,
so operator text is never code and an unknown placeholder stays as written."""

from __future__ import annotations

import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.db import once_per_session
from gonghui.errors import InvalidInput, NotFound
from gonghui.notifications.errors import NotificationsError
from gonghui.notifications.models import Channel, Event, Template
from gonghui.orgs.models import Org

# The variables each event offers its templates; anything else is refused when saved.
VARIABLES: dict[Event, tuple[str, ...]] = {
    Event.PRIZE_WON: ("activity", "prize"),
    Event.VERIFICATION_APPROVED: ("org",),
    Event.VERIFICATION_REJECTED: ("org", "note"),
    Event.VOUCHER_ARRIVED: ("activity", "amount"),
    Event.ORDER_SHIPPED: ("order_id", "courier", "courier_no"),
    Event.ACTIVITY_STARTING: ("activity", "starts_at"),
    Event.BROADCAST: ("title", "body"),
}

# Messages that go out even in quiet hours.
URGENT: frozenset[Event] = frozenset()


@dataclass(frozen=True)
class Text:
    """A template as it applies to an org: its own, an ancestor's or the platform's."""

    event: Event
    channel: Channel
    enabled: bool
    title: str
    body: str
    wechat_template_id: str = ""
    wechat_page: str = ""
    # The org whose template this is; None: the platform's default.
    org_id: int | None = None


def _d(event: Event, title: str, body: str, *, sms: bool = True, page: str = "") -> list[Text]:
    # Template messages are for service notices, not broadcasts (WeChat's rules).
    oa = event != Event.BROADCAST
    return [
        Text(event, Channel.INBOX, True, title, body),
        Text(event, Channel.SMS, sms, title, body),
        Text(event, Channel.WECHAT, True, title, body, f"platform-{event.value}", page),
        Text(event, Channel.WECHAT_OA, oa, title, body, f"platform-oa-{event.value}", page),
    ]


DEFAULTS: dict[tuple[Event, Channel], Text] = {
    (t.event, t.channel): t
    for t in [
        *_d(Event.PRIZE_WON, "中奖通知", "恭喜您在「$activity」中获得$prize，请在会员中心查看。"),
        *_d(Event.VERIFICATION_APPROVED, "会员认证通过", "您已通过$org的会员认证。"),
        *_d(Event.VERIFICATION_REJECTED, "会员认证未通过", "您在$org的会员认证未通过：$note"),
        *_d(Event.VOUCHER_ARRIVED, "消费券到账", "您在「$activity」领取的$amount元消费券已到账。"),
        *_d(
            Event.ORDER_SHIPPED,
            "订单已发货",
            "您的订单$order_id已由$courier发出，运单号$courier_no。",
        ),
        *_d(Event.ACTIVITY_STARTING, "活动开始提醒", "您关注的「$activity」已经开始，快来参加吧。"),
        *_d(Event.BROADCAST, "$title", "$body", sms=False),
    ]
}


def check(event: Event, *texts: str) -> None:
    """Refuse placeholders the event does not offer, and malformed ones."""
    allowed = set(VARIABLES[event])
    for text in texts:
        tpl = string.Template(text)
        if not tpl.is_valid():
            raise InvalidInput(
                NotificationsError.BAD_TEMPLATE, "a $ must start a placeholder ($$ for a $ sign)"
            )
        unknown = set(tpl.get_identifiers()) - allowed
        if unknown:
            raise InvalidInput(
                NotificationsError.BAD_TEMPLATE,
                f"unknown placeholders: {', '.join(sorted(unknown))}",
                {"allowed": sorted(allowed)},
            )


def render(text: str, variables: dict[str, str]) -> str:
    return string.Template(text).safe_substitute(variables)


def chain(session: Session, org_id: int) -> list[int]:
    """``org_id`` and its ancestors, nearest first."""
    path = session.scalar(select(Org.path).where(Org.id == org_id))
    if path is None:
        raise NotFound(NotificationsError.NOT_FOUND, f"org {org_id} not found")
    return [int(part) for part in reversed(path.strip("/").split("/")) if part]


def effective(session: Session, org_id: int) -> dict[tuple[Event, Channel], Text]:
    """Every template as it applies to ``org_id``: the nearest org's own, else the default."""
    ids = chain(session, org_id)
    own: dict[tuple[Event, Channel], Text] = {}
    rows = session.scalars(select(Template).where(Template.org_id.in_(ids))).all()
    for row in sorted(rows, key=lambda r: ids.index(r.org_id), reverse=True):
        own[(Event(row.event), Channel(row.channel))] = Text(
            Event(row.event),
            Channel(row.channel),
            row.enabled,
            row.title,
            row.body,
            row.wechat_template_id,
            row.wechat_page,
            row.org_id,
        )
    return {**DEFAULTS, **own}


def of_org(session: Session, org_id: int) -> dict[tuple[Event, Channel], Text]:
    """:func:`effective`, read once per session (a batch of notifications or deliveries)."""
    return once_per_session(
        session, "notifications.texts", org_id, lambda: effective(session, org_id)
    )
