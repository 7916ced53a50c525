"""HTTP edge of the open platform.

- ``/api/v1/oauth-clients``: an org's developers register and manage clients (staff).
- ``/.well-known/openid-configuration``, ``/oauth/jwks``: discovery and keys.
- ``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``: the protocol's back channel,
  answering in OAuth's own format (RFC 6749 §5), which its client libraries read.
- ``/oauth/userinfo`` and ``/open/v1/me``: what a member's token may read.
- ``/api/v1/oauth-clients/{id}/service`` and ``/api/v1/open-platform/services/usage``: a
  client's card in the members' service catalogue, and its opens (``catalogue.py``).

The authorization endpoint (sign-in and consent) is the member H5's page
``/h5/oauth/authorize``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    File,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.openapi.utils import get_openapi
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui import db, ratelimit
from gonghui.activities.schemas import ActivityCreate
from gonghui.baas.records.query import parse_where
from gonghui.baas.schemas import RecordPage
from gonghui.baas.triggers.schemas import AttemptRead
from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.db import unit_of_work
from gonghui.deps import CurrentStaff, SessionDep, WriteSessionDep
from gonghui.errors import BearerRefused, DomainError, NotFound, RateLimited
from gonghui.openplatform import activities as openactivities
from gonghui.openplatform import (
    approvals,
    catalogue,
    clients,
    keys,
    org_members,
    resource,
    scopes,
    usage,
    webhooks,
)
from gonghui.openplatform import baas as openbaas
from gonghui.openplatform import benefits as openbenefits
from gonghui.openplatform import news as opennews
from gonghui.openplatform.catalogue import Category
from gonghui.openplatform.clients import ClientKind
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import ServiceCard
from gonghui.openplatform.provider import HttpAnswer, Provider, WebRequest, issuer
from gonghui.types import Id

router = APIRouter(tags=["open platform"])

# The back channel's requests per network a minute: a client's servers exchange a code for
# each member signing in (20 a second), a phone its own few. Secrets, codes and tokens are
# 256-bit random strings: the limit bounds load, guessing is hopeless anyway.
TOKEN_REQUESTS_PER_MINUTE = 1200
FORM_BYTES_MAX = 16 * 1024


class ClientCreate(BaseModel):
    org_id: Id
    name: str = Field(min_length=1, max_length=100)
    kind: ClientKind
    redirect_uris: list[Annotated[str, Field(max_length=1000)]] = Field(max_length=10)
    scope: str = Field(default="openid", max_length=1000)


class ClientUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    redirect_uris: list[Annotated[str, Field(max_length=1000)]] | None = Field(
        default=None, max_length=10
    )
    scope: str | None = Field(default=None, max_length=1000)
    disabled: bool | None = None


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: str
    org_id: int
    name: str
    kind: str
    redirect_uris: list[str]
    grant_types: list[str]
    scope: str
    disabled_at: Any = None


class ClientCreated(ClientRead):
    client_secret: str | None = Field(description="shown once; none for a public client")


class SecretRotated(BaseModel):
    client_secret: str


@router.post("/api/v1/oauth-clients", status_code=status.HTTP_201_CREATED)
def register_client(body: ClientCreate, staff: CurrentStaff, session: SessionDep) -> ClientCreated:
    client, secret = clients.register(
        session,
        actor=staff,
        org_id=body.org_id,
        name=body.name,
        kind=body.kind,
        redirect_uris=body.redirect_uris,
        scope=body.scope,
    )
    return ClientCreated(**ClientRead.model_validate(client).model_dump(), client_secret=secret)


@router.get("/api/v1/oauth-clients")
def list_clients(staff: CurrentStaff, session: SessionDep) -> list[ClientRead]:
    return [ClientRead.model_validate(c) for c in clients.list_clients(session, actor=staff)]


@router.get("/api/v1/oauth-clients/{client_pk}")
def get_client(client_pk: Id, staff: CurrentStaff, session: SessionDep) -> ClientRead:
    return ClientRead.model_validate(clients.get(session, actor=staff, client_pk=client_pk))


@router.patch("/api/v1/oauth-clients/{client_pk}")
def update_client(
    client_pk: Id, body: ClientUpdate, staff: CurrentStaff, session: SessionDep
) -> ClientRead:
    client = clients.update(
        session,
        actor=staff,
        client_pk=client_pk,
        name=body.name,
        redirect_uris=body.redirect_uris,
        scope=body.scope,
        disabled=body.disabled,
    )
    return ClientRead.model_validate(client)


@router.post("/api/v1/oauth-clients/{client_pk}/secret/rotate")
def rotate_secret(client_pk: Id, staff: CurrentStaff, session: SessionDep) -> SecretRotated:
    return SecretRotated(
        client_secret=clients.rotate_secret(session, actor=staff, client_pk=client_pk)
    )


class DayUsageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    calls: int


class AccessRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    method: str
    path: str
    status: int
    ms: int


@router.get("/api/v1/oauth-clients/{client_pk}/usage")
def client_usage(
    client_pk: Id,
    staff: CurrentStaff,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> list[DayUsageRead]:
    """The client's calls to the open APIs per day (written within a second of each)."""
    found = usage.daily(session, actor=staff, client_pk=client_pk, days=days)
    return [DayUsageRead.model_validate(d) for d in found]


@router.get("/api/v1/oauth-clients/{client_pk}/access-log")
def client_access_log(
    client_pk: Id,
    staff: CurrentStaff,
    session: SessionDep,
    before: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AccessRead]:
    """The client's calls, newest first (kept 30 days)."""
    found = usage.access_log(session, actor=staff, client_pk=client_pk, before=before, limit=limit)
    return [AccessRead.model_validate(a) for a in found]


# -- webhooks ---------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    url: str = Field(max_length=500)
    events: list[Annotated[str, Field(max_length=40)]] = Field(max_length=10)
    description: str = Field(default="", max_length=200)
    enabled: bool = True
    max_attempts: int = Field(default=8, ge=1, le=20, description="tries before a dead letter")


class WebhookUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=500)
    events: list[Annotated[str, Field(max_length=40)]] | None = Field(default=None, max_length=10)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    max_attempts: int
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="whsec_ and base64: shown once; rotate to replace it")


class WebhookSecret(BaseModel):
    secret: str


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_id: str = Field(
        validation_alias=AliasChoices("event_id", "webhook_id"), description="the webhook-id header"
    )
    event: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryDetail(WebhookDeliveryRead):
    attempt_log: list[AttemptRead]


_HOOKS = "/api/v1/oauth-clients/{client_pk}/webhooks"


@router.post(_HOOKS, status_code=status.HTTP_201_CREATED)
def create_webhook(
    client_pk: Id, body: WebhookCreate, staff: CurrentStaff, session: SessionDep
) -> WebhookCreated:
    endpoint, secret = webhooks.create_endpoint(
        session, actor=staff, client_pk=client_pk, **body.model_dump()
    )
    return WebhookCreated(**WebhookRead.model_validate(endpoint).model_dump(), secret=secret)


@router.get(_HOOKS)
def list_webhooks(client_pk: Id, staff: CurrentStaff, session: SessionDep) -> list[WebhookRead]:
    found = webhooks.list_endpoints(session, actor=staff, client_pk=client_pk)
    return [WebhookRead.model_validate(e) for e in found]


@router.get(_HOOKS + "/{webhook_id}")
def get_webhook(
    client_pk: Id, webhook_id: Id, staff: CurrentStaff, session: SessionDep
) -> WebhookRead:
    _, endpoint = webhooks.get_endpoint(
        session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id
    )
    return WebhookRead.model_validate(endpoint)


@router.patch(_HOOKS + "/{webhook_id}")
def update_webhook(
    client_pk: Id, webhook_id: Id, body: WebhookUpdate, staff: CurrentStaff, session: SessionDep
) -> WebhookRead:
    endpoint = webhooks.update_endpoint(
        session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id, **body.model_dump()
    )
    return WebhookRead.model_validate(endpoint)


@router.delete(_HOOKS + "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(client_pk: Id, webhook_id: Id, staff: CurrentStaff, session: SessionDep) -> None:
    webhooks.delete_endpoint(session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id)


@router.post(_HOOKS + "/{webhook_id}/secret/rotate")
def rotate_webhook_secret(
    client_pk: Id, webhook_id: Id, staff: CurrentStaff, session: SessionDep
) -> WebhookSecret:
    secret = webhooks.rotate_secret(
        session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id
    )
    return WebhookSecret(secret=secret)


@router.get(_HOOKS + "/{webhook_id}/deliveries")
def list_webhook_deliveries(
    client_pk: Id,
    webhook_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    before: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[WebhookDeliveryRead]:
    """The endpoint's deliveries, newest first."""
    found = webhooks.list_deliveries(
        session,
        actor=staff,
        client_pk=client_pk,
        endpoint_id=webhook_id,
        status=status,
        before_id=before,
        limit=limit,
    )
    return [WebhookDeliveryRead.model_validate(d) for d in found]


@router.get(_HOOKS + "/{webhook_id}/deliveries/{delivery_id}")
def get_webhook_delivery(
    client_pk: Id, webhook_id: Id, delivery_id: Id, staff: CurrentStaff, session: SessionDep
) -> WebhookDeliveryDetail:
    delivery, attempts = webhooks.get_delivery(
        session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id, delivery_id=delivery_id
    )
    return WebhookDeliveryDetail(
        **WebhookDeliveryRead.model_validate(delivery).model_dump(),
        attempt_log=[AttemptRead.model_validate(a) for a in attempts],
    )


@router.post(_HOOKS + "/{webhook_id}/deliveries/{delivery_id}/redeliver")
def redeliver_webhook(
    client_pk: Id, webhook_id: Id, delivery_id: Id, staff: CurrentStaff, session: SessionDep
) -> WebhookDeliveryRead:
    delivery = webhooks.redeliver(
        session, actor=staff, client_pk=client_pk, endpoint_id=webhook_id, delivery_id=delivery_id
    )
    return WebhookDeliveryRead.model_validate(delivery)


class ApprovalRequest(BaseModel):
    scope: str = Field(min_length=1, max_length=64, examples=["org:members:read"])


class ScopeApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scope: str
    state: str = Field(description="approved, lapsed (its approver lost the right) or awaiting")
    approved_by: str | None
    approved_at: datetime | None
    may_approve: bool
    may_withdraw: bool


class ClientApprovalsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_pk: int
    name: str
    client_id: str
    org_name: str
    kind: str
    disabled: bool
    scopes: list[ScopeApprovalRead]


@router.get("/api/v1/oauth-approvals")
def list_approvals(staff: CurrentStaff, session: SessionDep) -> list[ClientApprovalsRead]:
    """The apps of the caller's subtrees asking for scopes that act for their org, and
    where each stands (staff consent)."""
    return [ClientApprovalsRead.model_validate(c) for c in approvals.overview(session, actor=staff)]


@router.post("/api/v1/oauth-clients/{client_pk}/approvals", status_code=status.HTTP_204_NO_CONTENT)
def approve_scope(
    client_pk: Id, body: ApprovalRequest, staff: CurrentStaff, session: SessionDep
) -> None:
    """Approve a scope the app asks for (``org:members:read``, ``org:members:unmask``,
    ``activities:write``): the caller must hold its right over the app's org. Audited."""
    approvals.approve(session, actor=staff, client_pk=client_pk, scope=body.scope)


@router.delete(
    "/api/v1/oauth-clients/{client_pk}/approvals/{scope}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def withdraw_scope(client_pk: Id, scope: str, staff: CurrentStaff, session: SessionDep) -> None:
    """Withdraw an approved scope: the app's tokens lose it at once. Audited."""
    approvals.withdraw(session, actor=staff, client_pk=client_pk, scope=scope)


# -- discovery --------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration")
def discovery() -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 (and RFC 8414's fields)."""
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/h5/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "scopes_supported": list(scopes.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "nickname",
            "phone_number_masked",
            "membership",
        ],
    }


_OPEN_PATHS = ("/open/v1/", "/oauth/", "/.well-known/")
_document: dict[str, Any] | None = None


OPEN_API_DOCUMENT_PATH = "/open/v1/openapi.json"


def open_api(app: FastAPI) -> dict[str, Any]:
    """The open APIs' own OpenAPI document (what integrators, the SDKs and the console's
    API reference are built on), apart from the staff and member APIs; built once."""
    global _document
    if _document is None:
        routes = [
            r
            for r in app.routes
            if (path := getattr(r, "path", "")).startswith(_OPEN_PATHS)
            and path != OPEN_API_DOCUMENT_PATH
        ]
        document = get_openapi(
            title="gonghui open APIs",
            version="v1",
            description="The union open platform: OAuth 2.0 / OpenID Connect and /open/v1.",
            routes=routes,
        )
        base = issuer()
        document.setdefault("components", {})["securitySchemes"] = {
            "oidc": {
                "type": "openIdConnect",
                "openIdConnectUrl": f"{base}/.well-known/openid-configuration",
            }
        }
        document["security"] = [{"oidc": []}]
        _document = document
    return _document


@router.get(OPEN_API_DOCUMENT_PATH, include_in_schema=False)
def open_api_document(request: Request) -> dict[str, Any]:
    return open_api(request.app)


@router.get("/oauth/jwks")
def jwks(session: SessionDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return keys.jwks(session)


# -- the back channel -------------------------------------------------------------------


def _limit_back_channel(request: Request) -> None:
    bucket = ratelimit.address_bucket(request.client.host if request.client else None)
    decision = ratelimit.hit(
        f"oauth-back:{bucket or 'unknown'}", limit=TOKEN_REQUESTS_PER_MINUTE, window_s=60
    )
    if not decision.allowed:
        raise RateLimited(
            "oauth.too_many_requests",
            "too many token requests from this network; try again shortly",
            retry_after_s=decision.retry_after_s,
        )


async def _web_request(request: Request) -> WebRequest:
    """The request as Authlib reads it: the form of a POST, bounded."""
    body = await request.body()
    if len(body) > FORM_BYTES_MAX:
        body = b""  # Authlib answers invalid_request for the missing parameters
    form = await request.form() if body else None
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)] if form else []
    return WebRequest(request.method, request.url.path, items, request.headers)


def _answer(answer: HttpAnswer) -> Response:
    body = answer.body if isinstance(answer.body, str | bytes) else json.dumps(answer.body)
    headers = dict(answer.headers)
    headers.setdefault("Cache-Control", "no-store")
    return Response(body, status_code=answer.status, headers=headers)


def _serve(web: WebRequest, endpoint: str | None) -> HttpAnswer:
    """One back-channel call in its own unit of work. Its refusals are answers, not
    exceptions, and are committed: a replayed code or refresh token revokes what it
    issued, and that revocation must stand."""
    with unit_of_work() as session:
        provider = Provider(session)
        if endpoint is None:
            return provider.create_token_response(web)
        answer: HttpAnswer = provider.create_endpoint_response(endpoint, web)
        return answer


@router.post("/oauth/token", dependencies=[Depends(_limit_back_channel)])
async def token(request: Request) -> Response:
    web = await _web_request(request)
    return _answer(await run_in_threadpool(_serve, web, None))


@router.post("/oauth/revoke", dependencies=[Depends(_limit_back_channel)])
async def revoke(request: Request) -> Response:
    web = await _web_request(request)
    return _answer(await run_in_threadpool(_serve, web, "revocation"))


@router.post("/oauth/introspect", dependencies=[Depends(_limit_back_channel)])
async def introspect(request: Request) -> Response:
    web = await _web_request(request)
    return _answer(await run_in_threadpool(_serve, web, "introspection"))


# -- what a member's token reads --------------------------------------------------------

# Tokens refused a minute per network before it is refused outright: each unknown token
# costs a database read, and a guess is hopeless anyway (256 random bits).
REFUSED_TOKENS_PER_MINUTE = 300


def _refusals_checked(request: Request) -> str:
    """The caller's network, refused (429) while it is over its refused tokens a minute."""
    network = ratelimit.address_bucket(request.client.host if request.client else None)
    key = f"open-refused:{network or 'unknown'}"
    (refused,) = ratelimit.tally([ratelimit.Window(key, 60, add=0)])
    if refused >= REFUSED_TOKENS_PER_MINUTE:
        raise RateLimited(
            "openplatform.too_many_bad_tokens",
            "too many invalid tokens from this network; try again shortly",
            retry_after_s=60,
        )
    return key


def _refused_once(key: str) -> None:
    ratelimit.tally([ratelimit.Window(key, 60)])


def _bearer(request: Request, session: Session) -> resource.Grant:
    """The grant of the request's bearer token (a sync handler's)."""
    key = _refusals_checked(request)
    try:
        return resource.authenticate(session, request.headers.get("authorization"))
    except BearerRefused:
        _refused_once(key)
        raise


async def _member_claims(request: Request) -> Response:
    """The claims of the member who granted the bearer token, under its scope: from what
    this process holds of the token, else read (on the thread pool)."""
    authorization = request.headers.get("authorization")
    grant = resource.held(authorization)
    if grant is None:
        network = _refusals_checked(request)
        try:
            grant = await db.read(
                lambda connection: resource.authenticate(connection, authorization)
            )
        except BearerRefused:
            _refused_once(network)
            raise
    with _metered(request, grant) as quota:
        claims = grant.member_claims("openid")
    return Response(
        json.dumps(claims, ensure_ascii=False),
        media_type="application/json",
        headers=quota.headers(),
    )


class OpenActivityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    org_code: str
    org_name: str
    status: str
    starts_at: datetime
    ends_at: datetime


class OpenActivityPage(BaseModel):
    items: list[OpenActivityRead]
    next_before: int | None = Field(description="pass as ``before`` for the next page")


@contextmanager
def _metered(request: Request, grant: resource.Grant) -> Iterator[resource.Quota]:
    """Charge a call to the grant's client and note it in its access log and daily usage
    (refused calls too, with their status)."""
    started = time.perf_counter()
    status_code = 200
    try:
        yield resource.charge(grant)
    except DomainError as exc:
        status_code = exc.status_code
        raise
    finally:
        usage.record(
            client_pk=grant.client_pk,
            method=request.method,
            path=request.url.path,
            status=status_code,
            started=started,
        )


@router.get("/open/v1/activities")
def open_activities(
    request: Request,
    response: Response,
    session: SessionDep,
    before: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=openactivities.PAGE_MAX)] = 20,
) -> OpenActivityPage:
    """``activities:read``: the published activities of the client's org and the unions
    below it, newest first."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require("activities:read")
        found = openactivities.published(
            session, client_pk=grant.client_pk, before=before, limit=limit
        )
    return OpenActivityPage(
        items=[OpenActivityRead.model_validate(a) for a in found],
        next_before=found[-1].id if len(found) == limit else None,
    )


class OpenNewsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="news (新闻) or notice (通知公告)")
    title: str
    org_id: int
    org_name: str
    pinned: bool
    publish_at: datetime
    body_html: str = Field(description="sanitised HTML; images are this platform's URLs")


class OpenNewsPage(BaseModel):
    items: list[OpenNewsRead]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


@router.get("/open/v1/news")
def open_news(
    request: Request,
    response: Response,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=opennews.PAGE_MAX)] = 20,
) -> OpenNewsPage:
    """``news:read``: the published news and notices of the client's org and the unions
    below it, newest first."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(opennews.SCOPE)
        page = opennews.published(session, client_pk=grant.client_pk, cursor=cursor, limit=limit)
    return OpenNewsPage(
        items=[OpenNewsRead.model_validate(n) for n in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/open/v1/news/{news_id}")
def open_news_item(
    news_id: Id, request: Request, response: Response, session: SessionDep
) -> OpenNewsRead:
    """``news:read``: one published item of the client's subtree."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(opennews.SCOPE)
        found = opennews.one(session, client_pk=grant.client_pk, item_id=news_id)
    return OpenNewsRead.model_validate(found)


class OpenMemberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="the roster entry")
    org_code: str
    org_name: str
    name: str = Field(description="masked unless unmasked=true")
    id_number: str = Field(description="masked unless unmasked=true")
    phone: str | None = Field(description="masked unless unmasked=true")
    member_no: str | None
    join_date: date | None
    tags: list[str]
    sub: str | None = Field(description="their pairwise subject for this app, once verified")


class OpenMemberPage(BaseModel):
    items: list[OpenMemberRead]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


@router.get("/open/v1/orgs/{org_id}/members")
def open_org_members(
    org_id: Id,
    request: Request,
    response: Response,
    session: WriteSessionDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=org_members.PAGE_MAX)] = 50,
    unmasked: bool = False,
) -> OpenMemberPage:
    """``org:members:read`` (staff-approved): the roster of an org of the client's subtree,
    masked; ``unmasked=true`` needs ``org:members:unmask`` too, and each value read is
    written to the audit log."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require("org:members:read")
        if unmasked:
            grant.require("org:members:unmask")
        page = org_members.members_page(
            session,
            client_pk=grant.client_pk,
            org_id=org_id,
            cursor=cursor,
            limit=limit,
            unmasked=unmasked,
        )
    return OpenMemberPage(
        items=[OpenMemberRead.model_validate(m) for m in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/open/v1/activities", status_code=status.HTTP_201_CREATED)
def open_create_activity(
    body: ActivityCreate, request: Request, response: Response, session: SessionDep
) -> OpenActivityRead:
    """``activities:write`` (staff-approved): a draft activity in an org of the client's
    subtree, under the same rules as the console's."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openactivities.WRITE)
        created = openactivities.create(session, client_pk=grant.client_pk, data=body)
    return OpenActivityRead.model_validate(created)


@router.post("/open/v1/activities/{activity_id}/{transition}")
def open_activity_transition(
    activity_id: Id,
    transition: openactivities.Transition,
    request: Request,
    response: Response,
    session: SessionDep,
) -> OpenActivityRead:
    """``activities:write``: publish a draft, pause a live activity, resume a paused one."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openactivities.WRITE)
        changed = openactivities.transition(
            session, client_pk=grant.client_pk, activity_id=activity_id, to=transition
        )
    return OpenActivityRead.model_validate(changed)


class OpenParticipationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    activity_id: int
    kind: str
    status: str
    draws: int | None = Field(description="lotteries")
    members_drawing: int | None = Field(description="lotteries")
    quiz_attempts: int | None = Field(description="quizzes")
    quiz_passed: int | None = Field(description="quizzes")
    votes: int | None = Field(description="votes; none while the vote hides its counts")


class OpenPrizeResult(BaseModel):
    position: int
    name: str
    kind: str
    initial_stock: int | None
    won: int


class OpenStanding(BaseModel):
    candidate_id: int
    name: str
    org_name: str
    category: str
    votes: int | None


class OpenScoreCount(BaseModel):
    score: int
    attempts: int


class OpenResultsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    activity_id: int
    kind: str
    status: str
    prizes: list[OpenPrizeResult] = Field(description="lotteries: prizes won per prize")
    ranking: list[OpenStanding] = Field(description="votes: the ranking, as members see it")
    counts_hidden: bool
    scores: list[OpenScoreCount] = Field(
        description="quizzes: how many submitted attempts scored each score, lowest first"
    )


@router.get("/open/v1/activities/{activity_id}/participation")
def open_activity_participation(
    activity_id: Id, request: Request, response: Response, session: SessionDep
) -> OpenParticipationRead:
    """``activities:read``: how many took part in a published activity of the subtree."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require("activities:read")
        found = openactivities.participation(
            session, client_pk=grant.client_pk, activity_id=activity_id
        )
    return OpenParticipationRead.model_validate(found)


@router.get("/open/v1/activities/{activity_id}/results")
def open_activity_results(
    activity_id: Id, request: Request, response: Response, session: SessionDep
) -> OpenResultsRead:
    """``activities:read``: prizes won, a vote's ranking."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require("activities:read")
        found = openactivities.results(session, client_pk=grant.client_pk, activity_id=activity_id)
    return OpenResultsRead.model_validate(found)


def _comma_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@router.get("/open/v1/baas/{app_id}/data/{table}/records")
def open_baas_records(
    app_id: Id,
    table: Annotated[str, Path(max_length=64)],
    request: Request,
    response: Response,
    session: SessionDep,
    where: Annotated[str | None, Query(max_length=8000)] = None,
    sort: Annotated[str | None, Query(max_length=500)] = None,
    fields: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=openbaas.PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> RecordPage:
    """``baas:<app id>`` (approved by a developer of the client's org): the records of a
    table of that app, as the app's server reads them; ``where`` is the BaaS's JSON filter,
    ``sort`` and ``fields`` comma-separated."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openbaas.scope(app_id))
        page = openbaas.records(
            session,
            client_pk=grant.client_pk,
            app_id=app_id,
            table=table,
            where=parse_where(where),
            sort=_comma_list(sort),
            fields=_comma_list(fields),
            limit=limit,
            cursor=cursor,
        )
    return RecordPage(items=page.items, next_cursor=page.next_cursor, count=page.count)


@router.get("/open/v1/baas/{app_id}/data/{table}/records/{record_id}")
def open_baas_record(
    app_id: Id,
    table: Annotated[str, Path(max_length=64)],
    record_id: Id,
    request: Request,
    response: Response,
    session: SessionDep,
) -> dict[str, Any]:
    """``baas:<app id>``: one record of a table of that app."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openbaas.scope(app_id))
        return openbaas.record(
            session, client_pk=grant.client_pk, app_id=app_id, table=table, record_id=record_id
        )


@router.post("/open/v1/baas/{app_id}/data/{table}/records", status_code=status.HTTP_201_CREATED)
def open_baas_create(
    app_id: Id,
    table: Annotated[str, Path(max_length=64)],
    body: Annotated[dict[str, Any], Body()],
    request: Request,
    response: Response,
    session: SessionDep,
) -> dict[str, Any]:
    """``baas:<app id>``: a new record of a table of that app, under the table's field
    rules (its triggers fire as for the app's server)."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openbaas.scope(app_id))
        return openbaas.create(
            session, client_pk=grant.client_pk, app_id=app_id, table=table, item=body
        )


@router.patch("/open/v1/baas/{app_id}/data/{table}/records/{record_id}")
def open_baas_update(
    app_id: Id,
    table: Annotated[str, Path(max_length=64)],
    record_id: Id,
    body: Annotated[dict[str, Any], Body()],
    request: Request,
    response: Response,
    session: SessionDep,
) -> dict[str, Any]:
    """``baas:<app id>``: change one record with the BaaS's update operators (``set``,
    ``unset``, ``increment``, ``append``, ``add_unique``, ``remove``), atomically."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.require(openbaas.scope(app_id))
        return openbaas.update(
            session,
            client_pk=grant.client_pk,
            app_id=app_id,
            table=table,
            record_id=record_id,
            ops=body,
        )


@router.delete(
    "/open/v1/baas/{app_id}/data/{table}/records/{record_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def open_baas_delete(
    app_id: Id,
    table: Annotated[str, Path(max_length=64)],
    record_id: Id,
    request: Request,
    session: SessionDep,
) -> Response:
    """``baas:<app id>``: delete one record (audited, as every record delete is)."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        grant.require(openbaas.scope(app_id))
        openbaas.delete(
            session, client_pk=grant.client_pk, app_id=app_id, table=table, record_id=record_id
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=quota.headers())


class OpenVoucher(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    value_cents: int
    threshold_cents: int
    valid_from: datetime
    valid_until: datetime
    status: str


class OpenPrize(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    won_at: datetime


class OpenWallet(BaseModel):
    points: int
    vouchers: list[OpenVoucher] = Field(description="without their codes")
    prizes: list[OpenPrize] = Field(description="without the delivery address")


@router.get("/open/v1/me/benefits")
def my_benefits(request: Request, response: Response, session: SessionDep) -> OpenWallet:
    """``benefits:read``: the points, vouchers and prizes of the member who granted the
    token."""
    grant = _bearer(request, session)
    with _metered(request, grant) as quota:
        response.headers.update(quota.headers())
        grant.member_claims("benefits:read")
        assert grant.user_id is not None
        wallet = openbenefits.member_wallet(session, user_id=grant.user_id)
    return OpenWallet(
        points=wallet.points,
        vouchers=[OpenVoucher.model_validate(v) for v in wallet.vouchers],
        prizes=[OpenPrize.model_validate(p) for p in wallet.prizes],
    )


class OpenUnion(BaseModel):
    code: str
    name: str


class OpenMembership(BaseModel):
    verified: bool
    verified_at: datetime | None = Field(default=None, description="when verified")
    union: OpenUnion | None = Field(default=None, description="when verified")
    org_chain: list[str] | None = Field(
        default=None, description="when verified: the orgs' names from the province down"
    )


class OpenMember(BaseModel):
    """The member's claims: ``sub`` always, the others only under their scope. Documents
    the answer of ``/oauth/userinfo`` and ``/open/v1/me`` (which render the claims as
    they are)."""

    sub: str = Field(description="pairwise: this client's own subject for the member")
    nickname: str | None = Field(default=None, description="scope profile")
    phone_number_masked: str | None = Field(default=None, description="scope profile")
    membership: OpenMembership | None = Field(default=None, description="scope membership")


_MEMBER_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"model": OpenMember, "description": "the member's claims under the token's scope"}
}


@router.get("/oauth/userinfo", response_model=None, responses=_MEMBER_ANSWER)
async def userinfo(request: Request) -> Response:
    """OpenID Connect Core §5.3: the member's claims of the scope they granted."""
    return await _member_claims(request)


@router.get("/open/v1/me", response_model=None, responses=_MEMBER_ANSWER)
async def me(request: Request) -> Response:
    """The member who granted the token, as its scope lets the client see them."""
    return await _member_claims(request)


# -- the service catalogue (staff; the member's side is the H5's /h5/services) --------------


class ServiceWrite(BaseModel):
    category: Category
    title: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=300)
    launch_uri: str = Field(
        max_length=1000,
        description="the provider's third-party-initiated login URI (OpenID Connect Core §4), "
        "on the origin of one of the client's redirect URIs",
    )
    shown_to: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="orgs within the client's subtree whose members see it; empty: all of it",
    )
    listed: bool = False


class ServiceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_pk: int
    org_id: int
    category: str
    title: str
    description: str
    launch_uri: str
    shown_to: list[int]
    listed: bool
    has_icon: bool
    updated_at: datetime


class ServiceUsageRead(BaseModel):
    category: str
    org_id: int
    org_name: str
    opens: int


def _read(card: ServiceCard) -> ServiceRead:
    return ServiceRead.model_validate(
        {**{k: getattr(card, k) for k in ServiceRead.model_fields if k != "has_icon"},
         "has_icon": card.icon_key is not None}
    )  # fmt: skip


@router.put("/api/v1/oauth-clients/{client_pk}/service")
def set_service(
    client_pk: Id, body: ServiceWrite, staff: CurrentStaff, session: SessionDep
) -> ServiceRead:
    """The client's card in the members' service catalogue (listed: members see it)."""
    card = catalogue.set_card(session, actor=staff, client_pk=client_pk, **body.model_dump())
    return _read(card)


@router.get("/api/v1/oauth-clients/{client_pk}/service")
def get_service(client_pk: Id, staff: CurrentStaff, session: SessionDep) -> ServiceRead:
    card = catalogue.card_of(session, actor=staff, client_pk=client_pk)
    if card is None:
        raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, "the client has no card")
    return _read(card)


@router.put("/api/v1/oauth-clients/{client_pk}/service/icon")
@max_body(catalogue.ICON_MAX_BYTES + MULTIPART_FRAMING)
def set_service_icon(
    client_pk: Id, file: Annotated[UploadFile, File()], staff: CurrentStaff, session: SessionDep
) -> ServiceRead:
    """The card's icon: JPEG, PNG or WebP, at most 256 KiB."""
    data = file.file.read(catalogue.ICON_MAX_BYTES + 1)
    return _read(catalogue.set_icon(session, actor=staff, client_pk=client_pk, data=data))


@router.get("/api/v1/open-platform/services/usage")
def service_usage(
    staff: CurrentStaff, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[ServiceUsageRead]:
    """Opens of the caller's services over the last ``days``, by category and the union of
    the members who opened them."""
    return [
        ServiceUsageRead(**vars(row)) for row in catalogue.usage(session, actor=staff, days=days)
    ]
