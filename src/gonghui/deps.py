"""Typed dependency aliases shared by every router.

Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency on the
thread pool, one more hand-off per request for nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from gonghui import db, ratelimit, risk
from gonghui.accounts import principal as principals
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.principal import MemberInfo, Principal
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput, PermissionDenied, RateLimited, Unauthenticated
from gonghui.tenancy import Actor

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    # scope="function" below: the commit happens before the response is sent, and a
    # failed commit becomes an error response instead of a lost success.
    with unit_of_work(read_only=request.method in _SAFE_METHODS) as session:
        yield session


# A GET, HEAD or OPTIONS request reads: its session refuses to write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_write_session() -> Iterator[Session]:
    with unit_of_work() as session:
        yield session


# For a GET whose read leaves a trace that must be committed (an audited look at personal
# data, an audited export): a write unit of work whatever the method.
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]


async def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]

# Downloads of a published log a minute, per client network.
PUBLIC_LOGS_PER_MINUTE = 10


def public_log_download(request: Request) -> None:
    """Anyone may download a published log (a vote's, a lottery's draws) to check a result,
    and a log grows with its activity: each network (IPv6 by /64) downloads at most
    ``PUBLIC_LOGS_PER_MINUTE`` a minute. A plain ``def``: it counts in Redis or the
    database."""
    bucket = ratelimit.address_bucket(request.client.host if request.client else None)
    decision = ratelimit.hit(
        f"public-log:{bucket or 'unknown'}", limit=PUBLIC_LOGS_PER_MINUTE, window_s=60
    )
    if not decision.allowed:
        raise RateLimited(
            "public.too_many_downloads",
            "too many downloads of published logs; try again shortly",
            retry_after_s=decision.retry_after_s,
        )


def _risk_context(request: Request) -> risk.RequestContext:
    headers = request.headers
    return risk.RequestContext(
        ip=request.client.host if request.client else None,
        device_id=headers.get("x-device-id"),
        challenge_id=headers.get("x-risk-challenge"),
        challenge_answer=headers.get("x-risk-answer"),
    )


async def risk_context(request: Request) -> risk.RequestContext:
    """What risk control reads of a member action's request: the client's address, the
    H5's ``X-Device-Id``, and a challenge answered (``X-Risk-Challenge``,
    ``X-Risk-Answer``)."""
    return _risk_context(request)


RiskContext = Annotated[risk.RequestContext, Depends(risk_context)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "sign in first (Bearer token)")
    return token.strip()


# Where a request keeps its resolved caller: dependencies that need it (the actor, staff,
# member, a handler's own) resolve the token once per request, whichever asks first.
_PRINCIPAL_KEY = "gonghui.principal"


async def get_principal(request: Request) -> Principal:
    # Normally in memory, from the token's own claims (see accounts.principal); otherwise a
    # short read-only transaction of its own, never the request's session: handlers that
    # own their unit of work (the hot paths) then hold the write transaction within one
    # thread call, not across a wait for another thread-pool slot.
    found: Principal | None = request.scope.get(_PRINCIPAL_KEY)
    if found is None:
        access = principals.claims(_bearer(request))
        found = principals.fresh(access)
        if found is None:
            found = await db.read(functools.partial(principals.reload, access=access))
        request.scope[_PRINCIPAL_KEY] = found
    return found


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_actor(request: Request) -> Actor:
    # One dependency, not one per part (principal, address): FastAPI's solving of each
    # sub-dependency costs more than what it computes.
    principal = await get_principal(request)
    return principal.actor(request.client.host if request.client else None)


CurrentUser = Annotated[Actor, Depends(get_actor)]


async def get_staff(request: Request) -> Actor:
    actor = await get_actor(request)
    if not actor.is_staff:
        raise PermissionDenied(AccountsError.NOT_STAFF, "staff only")
    return actor


CurrentStaff = Annotated[Actor, Depends(get_staff)]


async def get_member(request: Request) -> MemberInfo:
    principal = await get_principal(request)
    if principal.member is None:
        raise PermissionDenied(AccountsError.NOT_MEMBER, "verify your union membership first")
    return principal.member


CurrentMember = Annotated[MemberInfo, Depends(get_member)]


def _idempotency_key(key: str | None) -> str | None:
    if key is not None and not (1 <= len(key) <= 128 and key.isprintable()):
        raise InvalidInput("request.bad_idempotency_key", "Idempotency-Key: 1-128 printable chars")
    return key


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    return _idempotency_key(key)


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


@dataclass(frozen=True, slots=True)
class MemberRequest:
    """A hot member action's caller: the verified member, the request's
    ``Idempotency-Key`` and what risk control reads of the request (as
    :func:`risk_context`)."""

    member: MemberInfo
    idempotency_key: str | None
    risk: risk.RequestContext


async def member_request(
    request: Request,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> MemberRequest:
    # One dependency for what every hot member action (draw, vote, claim, checkout) needs:
    # FastAPI's solving of each dependency costs more than what it computes, and these
    # are the busiest routes. Solving a draw's four (member, its principal, the key, the
    # risk context), its path and body was about 30 % of an API process's busy time; in
    # process, a draw-shaped route costs 88 µs as one against 107 µs as four.
    return MemberRequest(
        member=await get_member(request),
        idempotency_key=_idempotency_key(key),
        risk=_risk_context(request),
    )


MemberAction = Annotated[MemberRequest, Depends(member_request)]
