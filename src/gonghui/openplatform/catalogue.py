"""The members' service catalogue: third-party services (employment, transport, education,
life) that a union lists for its members, each an OAuth client with a card.

A union's developers give a client of their subtree a card (title, category, description,
icon, the provider's ``launch_uri``, the orgs it is shown to) and list it. A member sees the
listed cards of enabled clients that serve them (their verified union lies in the client's
org's subtree, and within one of the orgs the card is shown to). Opening one counts the open
for the member's union and sends the member to the provider's ``launch_uri`` with ``iss``
(OpenID Connect Core §4, third-party-initiated login): the provider starts its own
authorization request, the member (already signed in on the H5) consents once, and arrives
signed in. The provider learns only what the member grants.

The launch URI must be on the same origin as one of the client's redirect URIs, so a card
sends members only to the provider the client already is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.clock import local_day, now
from gonghui.db import get_engine, on_commit, on_rollback, upsert_insert
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.images import ImageTooLarge, NotAnImage, web_image_extension
from gonghui.openplatform import clients, identity
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.identity import MemberView
from gonghui.openplatform.models import Client, ServiceCard, ServiceOpenDay
from gonghui.openplatform.provider import issuer
from gonghui.orgs.models import Org
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, path_within, require_org, scoped

ICON_PREFIX = "openplatform/icons/"
ICON_MAX_BYTES = 256 * 1024


class Category(StrEnum):
    EMPLOYMENT = "employment"
    TRANSPORT = "transport"
    EDUCATION = "education"
    LIFE = "life"


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        OpenPlatformError.BAD_SERVICE,
        message,
        [field_error(field, OpenPlatformError.BAD_SERVICE, message)],
    )


def _origin(uri: str) -> tuple[str, str, int | None]:
    parts = urlsplit(uri)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _check_launch_uri(client: Client, uri: str) -> str:
    clients.check_redirect_uris([uri])  # https (or http to loopback), no fragment
    if not any(_origin(uri) == _origin(r) for r in client.redirect_uris):
        raise _bad("launch_uri", "the launch URI must be on the origin of a redirect URI")
    return uri


def _check_shown_to(
    session: Session, actor: Actor, client: Client, org_ids: list[int]
) -> list[int]:
    owner = session.get(Org, client.org_id)
    assert owner is not None
    for n, org_id in enumerate(dict.fromkeys(org_ids)):
        org = require_org(session, actor, Permission.APPS_MANAGE, org_id)
        if not path_within(org.path, owner.path):
            raise _bad(f"shown_to.{n}", "a card is shown only within its client's unions")
    return list(dict.fromkeys(org_ids))


def set_card(
    session: Session,
    *,
    actor: Actor,
    client_pk: int,
    category: Category,
    title: str,
    description: str,
    launch_uri: str,
    shown_to: list[int],
    listed: bool,
) -> ServiceCard:
    """Create or replace the card of a client the caller manages; audited."""
    client = clients.get(session, actor=actor, client_pk=client_pk)
    if not title.strip():
        raise _bad("title", "a card needs a title")
    card = session.scalar(select(ServiceCard).where(ServiceCard.client_pk == client.id))
    if card is None:
        card = ServiceCard(client_pk=client.id, org_id=client.org_id)
        session.add(card)
    card.category = category.value
    card.title = title.strip()
    card.description = description.strip()
    card.launch_uri = _check_launch_uri(client, launch_uri.strip())
    card.shown_to = _check_shown_to(session, actor, client, shown_to)
    card.listed = listed
    card.updated_by = actor.user_id
    card.updated_at = now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="openplatform.service.set",
        org_id=client.org_id,
        subject_type="oauth_client",
        subject_id=client.id,
        details={"category": card.category, "title": card.title, "listed": listed},
    )
    return card


def card_of(session: Session, *, actor: Actor, client_pk: int) -> ServiceCard | None:
    client = clients.get(session, actor=actor, client_pk=client_pk)
    return session.scalar(select(ServiceCard).where(ServiceCard.client_pk == client.id))


def cards(session: Session, *, actor: Actor) -> list[ServiceCard]:
    """The cards of the clients the caller manages."""
    return list(
        session.scalars(
            scoped(select(ServiceCard), actor, Permission.APPS_MANAGE).order_by(ServiceCard.id)
        )
    )


def set_icon(session: Session, *, actor: Actor, client_pk: int, data: bytes) -> ServiceCard:
    """The card's icon: a JPEG, PNG or WebP of at most :data:`ICON_MAX_BYTES` (callers read
    one byte more, so a larger file is refused rather than cut short)."""
    card = card_of(session, actor=actor, client_pk=client_pk)
    if card is None:
        raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, "the client has no card yet")
    if len(data) > ICON_MAX_BYTES:
        raise InvalidInput(OpenPlatformError.BAD_ICON, f"an icon is at most {ICON_MAX_BYTES} bytes")
    try:
        extension = web_image_extension(data)
    except (NotAnImage, ImageTooLarge) as exc:
        raise InvalidInput(OpenPlatformError.BAD_ICON, str(exc)[:200]) from None
    if extension is None:
        raise InvalidInput(OpenPlatformError.BAD_ICON, "an icon is a JPEG, PNG or WebP")
    key = f"{ICON_PREFIX}{secrets.token_hex(16)}.{extension}"
    get_store().put(key, [data])
    on_rollback(session, lambda: get_store().delete(key))
    old, card.icon_key = card.icon_key, key
    card.updated_by, card.updated_at = actor.user_id, now()
    session.flush()
    if old:
        on_commit(session, lambda: get_store().delete(old))
    audit.record(
        session,
        actor=actor,
        action="openplatform.service.icon",
        org_id=card.org_id,
        subject_type="oauth_client",
        subject_id=card.client_pk,
    )
    return card


@dataclass(frozen=True)
class Offer:
    """A card as a member sees it."""

    id: int
    category: str
    title: str
    description: str
    union: str
    has_icon: bool


def _visible(
    card: ServiceCard, client_org_path: str, shown_paths: list[str], view: MemberView
) -> bool:
    if not identity.serves(client_org_path, view) or view.org_path is None:
        return False
    return not shown_paths or any(path_within(view.org_path, p) for p in shown_paths)


def _listed(session: Session) -> list[tuple[ServiceCard, Org]]:
    rows = session.execute(
        select(ServiceCard, Org)
        .join(Client, Client.id == ServiceCard.client_pk)
        .join(Org, Org.id == ServiceCard.org_id)
        .where(ServiceCard.listed.is_(True), Client.disabled_at.is_(None))
        .order_by(ServiceCard.category, ServiceCard.title)
    )
    return [(card, org) for card, org in rows]


def _shown_paths(session: Session, cards: list[ServiceCard]) -> dict[int, str]:
    ids = {i for c in cards for i in c.shown_to}
    if not ids:
        return {}
    return dict(session.execute(select(Org.id, Org.path).where(Org.id.in_(ids))).all())


def offers(session: Session, *, view: MemberView) -> list[Offer]:
    """The listed services this member may open, by category then title."""
    if not view.verified:
        return []
    listed = _listed(session)
    paths = _shown_paths(session, [c for c, _ in listed])
    return [
        Offer(c.id, c.category, c.title, c.description, org.name, c.icon_key is not None)
        for c, org in listed
        if _visible(c, org.path, [paths[i] for i in c.shown_to if i in paths], view)
    ]


def _offered(session: Session, *, card_id: int, view: MemberView) -> ServiceCard:
    for card, org in _listed(session):
        if card.id == card_id:
            paths = _shown_paths(session, [card])
            if _visible(card, org.path, [paths[i] for i in card.shown_to if i in paths], view):
                return card
            break
    # Not listed, not for this member, or no such card: the same answer.
    raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, f"service {card_id} not found")


def icon_key(session: Session, *, card_id: int, view: MemberView) -> str:
    card = _offered(session, card_id=card_id, view=view)
    if card.icon_key is None:
        raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, "the service has no icon")
    return card.icon_key


def open_service(session: Session, *, card_id: int, view: MemberView) -> str:
    """Count the open for the member's union; where to send the member (the provider's
    launch URI with ``iss`` and ``target_link_uri``, OpenID Connect Core §4)."""
    card = _offered(session, card_id=card_id, view=view)
    org_id = session.scalar(select(Org.id).where(Org.path == view.org_path))
    table = ServiceOpenDay.__table__
    upsert = upsert_insert(get_engine().dialect.name)(table)
    session.execute(
        upsert.values(
            card_id=card.id, org_id=org_id, day=local_day(), opens=1
        ).on_conflict_do_update(
            index_elements=[table.c.card_id, table.c.org_id, table.c.day],
            set_={"opens": table.c.opens + 1},
        )
    )
    joint = "&" if urlsplit(card.launch_uri).query else "?"
    query = urlencode({"iss": issuer(), "target_link_uri": card.launch_uri})
    return f"{card.launch_uri}{joint}{query}"


@dataclass(frozen=True)
class UsageRow:
    category: str
    org_id: int
    org_name: str
    opens: int


def usage(session: Session, *, actor: Actor, days: int = 30) -> list[UsageRow]:
    """Opens of the services the caller manages over the last ``days``, by category and the
    union of the members who opened them."""
    since = local_day() - timedelta(days=days - 1)
    visible = scoped(select(ServiceCard.id), actor, Permission.APPS_MANAGE)
    rows = session.execute(
        select(ServiceCard.category, Org.id, Org.name, func.sum(ServiceOpenDay.opens))
        .join(ServiceCard, ServiceCard.id == ServiceOpenDay.card_id)
        .join(Org, Org.id == ServiceOpenDay.org_id)
        .where(and_(ServiceOpenDay.day >= since, ServiceOpenDay.card_id.in_(visible)))
        .group_by(ServiceCard.category, Org.id, Org.name)
        .order_by(ServiceCard.category, func.sum(ServiceOpenDay.opens).desc())
    )
    return [UsageRow(c, o, n, int(total)) for c, o, n, total in rows]
