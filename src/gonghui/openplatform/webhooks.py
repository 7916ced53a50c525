"""Integrators' webhooks: a client's endpoints receive the union's events of its org's
subtree, signed as Standard Webhooks (https://www.standardwebhooks.com/).

Events come from the hook bus (:mod:`gonghui.hooks`) inside the transaction that caused
them; each subscribed endpoint gets a delivery on the triggers' engine
(:mod:`gonghui.baas.triggers.delivery`: retries with backoff, dead letters, the attempt log,
redelivery, outbound HTTP to public addresses only). A payload names the member only by the
client's pairwise ``sub`` (:func:`gonghui.openplatform.identity.pairwise_subject`): never an
internal id, a name, a phone or an ID number.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, object_session

from gonghui import hooks, invalidation, pii
from gonghui.audit import service as audit
from gonghui.baas.triggers import delivery as engine
from gonghui.baas.triggers.models import Delivery, DeliveryAttempt
from gonghui.baas.triggers.signing import new_standard_secret
from gonghui.clock import now
from gonghui.db import once_per_session
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.members.models import Membership
from gonghui.observability import request_id_var, request_scope
from gonghui.openplatform import clients
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.identity import pairwise_subject
from gonghui.openplatform.models import Client, WebhookEndpoint
from gonghui.orgs.models import ORG_TREE_TOPIC, Org
from gonghui.outbound import OutboundError, check_url
from gonghui.settings import get_settings
from gonghui.tenancy import Actor, path_ids

MAX_ENDPOINTS = 10


class WebhookEvent(StrEnum):
    ACTIVITY_PUBLISHED = "activity.published"
    MEMBER_VERIFIED = "member.verified"
    PRIZE_WON = "prize.won"
    VOUCHER_USED = "voucher.used"
    ORDER_PAID = "order.paid"


_FROM_ORG_EVENT = {
    hooks.OrgEvent.ACTIVITY_PUBLISHED: WebhookEvent.ACTIVITY_PUBLISHED,
    hooks.OrgEvent.VERIFICATION_APPROVED: WebhookEvent.MEMBER_VERIFIED,
    hooks.OrgEvent.PRIZE_WON: WebhookEvent.PRIZE_WON,
    hooks.OrgEvent.VOUCHER_USED: WebhookEvent.VOUCHER_USED,
    hooks.OrgEvent.ORDER_PAID: WebhookEvent.ORDER_PAID,
}

# What of each event's payload a client may read, besides the member's ``sub`` and the
# org: ids the open APIs show, amounts, prize and voucher names. Never a voucher's code.
_PUBLIC_FIELDS = {
    WebhookEvent.ACTIVITY_PUBLISHED: ("activity_id", "kind", "title", "starts_at", "ends_at"),
    WebhookEvent.MEMBER_VERIFIED: ("via",),
    WebhookEvent.PRIZE_WON: ("activity_id", "prize"),
    WebhookEvent.VOUCHER_USED: ("activity_id", "voucher_id", "name", "value_cents"),
    WebhookEvent.ORDER_PAID: ("activity_id", "order_id", "total_cents", "paid_at"),
}


def _bad(field: str, message: str) -> InvalidInput:
    code = OpenPlatformError.BAD_WEBHOOK
    return InvalidInput(code, message, [field_error(field, code, message)])


def _sealed(endpoint_id: int, secret: str) -> bytes:
    return pii.seal_bytes(f"oauth-webhook:{endpoint_id}", secret.encode())


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return pii.unseal_bytes(f"oauth-webhook:{endpoint.id}", endpoint.secret_enc).decode()


def check_endpoint_url(url: str) -> str:
    """An https URL to a public host; plain http only to an address the operator allows
    (``GONGHUI_OUTBOUND_ALLOW_NETWORKS``: a receiver on the same network, tests). Names are
    checked again at each delivery, since what they resolve to may change."""
    try:
        target = check_url(url)
    except OutboundError as exc:
        raise _bad("url", exc.message) from exc
    if target.scheme != "https" and not _operator_allowed(target.host):
        raise _bad("url", "an https:// URL")
    return url


def _operator_allowed(host: str) -> bool:
    """``host`` is an address literal in one of the networks the operator allows."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    networks = [
        ipaddress.ip_network(n, strict=False) for n in get_settings().outbound_allow_networks
    ]
    return any(address in net for net in networks if net.version == address.version)


def check_events(events: list[str]) -> list[str]:
    if not events:
        raise _bad("events", "choose at least one event")
    known = {str(e) for e in WebhookEvent}
    for i, name in enumerate(events):
        if name not in known:
            raise _bad(f"events.{i}", f"unknown event {name}; one of {', '.join(sorted(known))}")
    return sorted(set(events))


def _audit(
    session: Session,
    actor: Actor,
    client: Client,
    action: str,
    endpoint: WebhookEndpoint,
    **kw: Any,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"openplatform.webhook.{action}",
        org_id=client.org_id,
        subject_type="oauth_webhook",
        subject_id=endpoint.id,
        details={"client_id": client.id, **kw},
    )


def create_endpoint(
    session: Session,
    *,
    actor: Actor,
    client_pk: int,
    url: str,
    events: list[str],
    description: str = "",
    enabled: bool = True,
    max_attempts: int = 8,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the client, and its secret (shown once)."""
    client = clients.get(session, actor=actor, client_pk=client_pk)
    if not 1 <= max_attempts <= 20:
        raise _bad("max_attempts", "between 1 and 20")
    endpoint = WebhookEndpoint(
        client_pk=client.id,
        url=check_endpoint_url(url),
        events=check_events(events),
        description=description,
        enabled=enabled,
        max_attempts=max_attempts,
        secret_enc=b"",
    )
    if len(list_endpoints(session, actor=actor, client_pk=client.id)) >= MAX_ENDPOINTS:
        raise _bad("url", f"at most {MAX_ENDPOINTS} endpoints per client")
    session.add(endpoint)
    session.flush()
    secret = new_standard_secret()
    endpoint.secret_enc = _sealed(endpoint.id, secret)
    _forget(session)
    _audit(session, actor, client, "create", endpoint, url=endpoint.url, events=endpoint.events)
    return endpoint, secret


def list_endpoints(session: Session, *, actor: Actor, client_pk: int) -> list[WebhookEndpoint]:
    client = clients.get(session, actor=actor, client_pk=client_pk)
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.client_pk == client.id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(
    session: Session, *, actor: Actor, client_pk: int, endpoint_id: int
) -> tuple[Client, WebhookEndpoint]:
    client = clients.get(session, actor=actor, client_pk=client_pk)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.client_pk != client.id or endpoint.deleted_at is not None:
        raise NotFound(OpenPlatformError.WEBHOOK_NOT_FOUND, f"webhook {endpoint_id} not found")
    return client, endpoint


def update_endpoint(
    session: Session,
    *,
    actor: Actor,
    client_pk: int,
    endpoint_id: int,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    client, endpoint = get_endpoint(
        session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
    )
    changes: dict[str, Any] = {}
    if url is not None:
        endpoint.url = changes["url"] = check_endpoint_url(url)
    if events is not None:
        endpoint.events = changes["events"] = check_events(events)
    if description is not None:
        endpoint.description = changes["description"] = description
    if enabled is not None:
        endpoint.enabled = changes["enabled"] = enabled
    _forget(session)
    _audit(session, actor, client, "update", endpoint, **changes)
    return endpoint


def delete_endpoint(session: Session, *, actor: Actor, client_pk: int, endpoint_id: int) -> None:
    """Gone from the client's list; deliveries still pending for it are dead-lettered."""
    client, endpoint = get_endpoint(
        session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
    )
    endpoint.deleted_at = now()
    endpoint.enabled = False
    _forget(session)
    _audit(session, actor, client, "delete", endpoint)


def rotate_secret(session: Session, *, actor: Actor, client_pk: int, endpoint_id: int) -> str:
    """A new secret; deliveries from the commit on (retries too) are signed with it."""
    client, endpoint = get_endpoint(
        session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
    )
    secret = new_standard_secret()
    endpoint.secret_enc = _sealed(endpoint.id, secret)
    _audit(session, actor, client, "rotate_secret", endpoint)
    return secret


# -- the delivery log ---------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    *,
    actor: Actor,
    client_pk: int,
    endpoint_id: int,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    _, endpoint = get_endpoint(session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id)
    return engine.log_page(
        session,
        Delivery.endpoint_id == endpoint.id,
        status=status,
        before_id=before_id,
        limit=limit,
    )


def get_delivery(
    session: Session, *, actor: Actor, client_pk: int, endpoint_id: int, delivery_id: int
) -> tuple[Delivery, list[DeliveryAttempt]]:
    _, endpoint = get_endpoint(session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound(OpenPlatformError.DELIVERY_NOT_FOUND, f"delivery {delivery_id} not found")
    return delivery, engine.attempts_of(session, delivery.id)


def redeliver(
    session: Session, *, actor: Actor, client_pk: int, endpoint_id: int, delivery_id: int
) -> Delivery:
    """Send an event again, with the same ``webhook-id`` (receivers de-duplicate by it)."""
    delivery, _ = get_delivery(
        session,
        actor=actor,
        client_pk=client_pk,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
    )
    client, endpoint = get_endpoint(
        session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
    )
    engine.resend(session, delivery, max_attempts=endpoint.max_attempts)
    audit.record(
        session,
        actor=actor,
        action="openplatform.webhook.redeliver",
        org_id=client.org_id,
        subject_type="delivery",
        subject_id=delivery.id,
        details={"client_id": client.id, "endpoint_id": endpoint.id},
    )
    return delivery


# -- events in, deliveries out ------------------------------------------------------------------

# The subscribed endpoints of each org's chain, read once per transaction (a batch of draws
# emits an event per prize); a change of an endpoint in the transaction forgets them.
_BY_ORG = "openplatform.webhooks.by_org"

# Which events the endpoints of each org's chain are subscribed to, held per process as the
# org triggers are (baas/triggers/service.py): every batch of hot writes (draws, coupons
# sent) is a transaction of its own that emits events, and almost always finds no endpoint
# to tell. Any change of an endpoint or a client through the ORM (topic
# ``openplatform.webhooks``, recorded by the mapper hooks below) or a move in the org tree
# drops the lot, at its commit in this process and within the feed's lag in every other;
# in a transaction that changed one, the table is read. Only the answer "none" is taken
# from here: deliveries are made from the rows as the transaction reads them.
TOPIC = "openplatform.webhooks"
SUBSCRIPTIONS_TTL_S = 300.0
_subscriptions: invalidation.TopicCache[int, frozenset[str]] = invalidation.TopicCache(
    "openplatform.webhooks.subscriptions",
    key_of=lambda org_id, _: str(org_id),
    ttl_s=SUBSCRIPTIONS_TTL_S,
    cleared_by=(TOPIC, ORG_TREE_TOPIC),
)


def _endpoints_changed(_mapper: Any, _connection: Any, target: Any) -> None:
    session = object_session(target)
    if session is not None:
        invalidation.changed(session, TOPIC)


for _model in (WebhookEndpoint, Client):
    for _change in ("after_insert", "after_update", "after_delete"):
        sa_event.listen(_model, _change, _endpoints_changed)


def _subscribed(session: Session, org_id: int, name: str) -> bool:
    """Whether any enabled endpoint over ``org_id`` is subscribed to event ``name``."""
    if invalidation.pending(session, TOPIC):
        return any(name in e.events for e, _ in _endpoints_over(session, org_id))
    events = _subscriptions.read_through(
        session, org_id, lambda: _read_subscriptions(session, org_id)
    )
    return name in events


def _read_subscriptions(session: Session, org_id: int) -> frozenset[str]:
    return frozenset(str(n) for e, _ in _endpoints_over(session, org_id) for n in e.events)


def _forget(session: Session) -> None:
    session.info.pop(_BY_ORG, None)


def _endpoints_over(session: Session, org_id: int) -> list[tuple[WebhookEndpoint, Client]]:
    """The enabled endpoints of enabled clients whose org is ``org_id`` or above it: the
    clients whose subtree the event lies in."""
    return once_per_session(session, _BY_ORG, org_id, lambda: _read_endpoints(session, org_id))


# Built once, not per call: a hot write's batch reads it in every transaction, and building
# the statement cost almost as much as running it (590 µs a call against 320 µs, when
# no endpoint is found).
_ENDPOINTS_OVER = (
    select(WebhookEndpoint, Client)
    .join(Client, Client.id == WebhookEndpoint.client_pk)
    .where(
        Client.org_id.in_(bindparam("chain", expanding=True)),
        Client.disabled_at.is_(None),
        WebhookEndpoint.enabled.is_(True),
        WebhookEndpoint.deleted_at.is_(None),
    )
    .order_by(WebhookEndpoint.id)
)


def _read_endpoints(session: Session, org_id: int) -> list[tuple[WebhookEndpoint, Client]]:
    org = session.get(Org, org_id)
    chain = path_ids(org.path) if org else []
    rows = session.execute(_ENDPOINTS_OVER, {"chain": chain}).all()
    return [(endpoint, client) for endpoint, client in rows]


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _user_of(session: Session, payload: dict[str, Any]) -> int | None:
    if payload.get("user_id") is not None:
        return int(payload["user_id"])
    if payload.get("membership_id") is not None:
        return session.scalar(
            select(Membership.user_id).where(Membership.id == payload["membership_id"])
        )
    return None


def _on_org_event(
    session: Session,
    org_id: int,
    event: hooks.OrgEvent,
    payloads: Sequence[dict[str, Any]],
    request_ids: Sequence[str | None],
) -> None:
    name = _FROM_ORG_EVENT.get(event)
    if name is None or not _subscribed(session, org_id, str(name)):
        return
    subscribed = [(e, c) for e, c in _endpoints_over(session, org_id) if name in e.events]
    if not subscribed:
        return
    org = session.get_one(Org, org_id)
    for payload, request_id in zip(payloads, request_ids, strict=True):
        with request_scope(request_id):
            _deliver(session, org, name, payload, subscribed)


def _deliver(
    session: Session,
    org: Org,
    name: WebhookEvent,
    payload: dict[str, Any],
    subscribed: list[tuple[WebhookEndpoint, Client]],
) -> None:
    """One event's deliveries to the endpoints subscribed to it."""
    # A round trip through JSON: datetimes as ISO strings, as the body will carry them.
    shared = json.loads(
        json.dumps({k: payload[k] for k in _PUBLIC_FIELDS[name] if k in payload}, default=_iso)
    )
    shared["org"] = {"code": org.code, "name": org.name}
    user_id = _user_of(session, payload)
    for endpoint, client in subscribed:
        data = dict(shared)
        if user_id is not None:
            data["sub"] = pairwise_subject(client.client_id, user_id)
        delivery = Delivery(
            event_id="msg_" + uuid.uuid4().hex,
            endpoint_id=endpoint.id,
            event=str(name),
            payload=data,
            next_attempt_at=now(),
            request_id=request_id_var.get(),
        )
        engine.store(session, delivery, max_attempts=endpoint.max_attempts)


hooks.subscribe(_on_org_event)


@engine.resolves_endpoints
def _target(session: Session, endpoint_id: int) -> engine.EndpointTarget | None:
    row = session.execute(
        select(WebhookEndpoint, Client)
        .join(Client, Client.id == WebhookEndpoint.client_pk)
        .where(WebhookEndpoint.id == endpoint_id)
    ).first()
    if row is None:
        return None
    endpoint, client = row
    refused = None
    if endpoint.deleted_at is not None:
        refused = "the endpoint was deleted"
    elif client.disabled_at is not None:
        refused = "the client is disabled"
    elif not endpoint.enabled:
        refused = "the endpoint is disabled"
    return engine.EndpointTarget(
        org_id=client.org_id, url=endpoint.url, secret=endpoint_secret(endpoint), refused=refused
    )
