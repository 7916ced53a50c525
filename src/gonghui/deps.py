"""Typed dependency aliases shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from gonghui.accounts import principal as principals
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.principal import MemberInfo, Principal
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput, PermissionDenied, Unauthenticated
from gonghui.tenancy import Actor

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    # scope="function" below: the commit happens before the response is sent, and a
    # failed commit becomes an error response instead of a lost success.
    with unit_of_work(read_only=request.method in _SAFE_METHODS) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "sign in first (Bearer token)")
    return token.strip()


def get_principal(request: Request, session: SessionDep) -> Principal:
    return principals.resolve(session, _bearer(request))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_actor(principal: CurrentPrincipal, ip: ClientIp) -> Actor:
    return principal.actor(ip)


CurrentUser = Annotated[Actor, Depends(get_actor)]


def get_staff(actor: CurrentUser) -> Actor:
    if not actor.is_staff:
        raise PermissionDenied(AccountsError.NOT_STAFF, "staff only")
    return actor


CurrentStaff = Annotated[Actor, Depends(get_staff)]


def get_member(principal: CurrentPrincipal) -> MemberInfo:
    if principal.member is None:
        raise PermissionDenied(AccountsError.NOT_MEMBER, "verify your union membership first")
    return principal.member


CurrentMember = Annotated[MemberInfo, Depends(get_member)]


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    if key is not None and not (1 <= len(key) <= 128 and key.isprintable()):
        raise InvalidInput("request.bad_idempotency_key", "Idempotency-Key: 1-128 printable chars")
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def get_member_standalone(request: Request) -> MemberInfo:
    """The member, resolved in a short read-only transaction of its own.

    For hot write endpoints that open their own ``unit_of_work`` inside the handler: the
    write transaction (SQLite's write lock, a PostgreSQL connection) is then held within one
    worker-thread call. With ``SessionDep`` it is held across the dependency and handler
    thread hops, and under a burst the threads waiting for the lock can take every
    thread-pool slot that the lock holder needs to finish.
    """
    with unit_of_work(read_only=True) as session:
        principal = principals.resolve(session, _bearer(request))
    if principal.member is None:
        raise PermissionDenied(AccountsError.NOT_MEMBER, "verify your union membership first")
    return principal.member


StandaloneMember = Annotated[MemberInfo, Depends(get_member_standalone)]
