"""Authentication of app calls: ``X-Gonghui-App-Key`` (client or server key) plus an
optional ``Authorization: Bearer`` user token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from gonghui.accounts import principal as principals
from gonghui.accounts.errors import AccountsError
from gonghui.baas.apps import KeyKind, resolve_key
from gonghui.baas.errors import BaasError
from gonghui.baas.permissions import Caller
from gonghui.db import unit_of_work
from gonghui.deps import SessionDep
from gonghui.errors import Unauthenticated


def resolve_caller(session: Session, *, app_key: str | None, authorization: str | None) -> Caller:
    if not app_key:
        raise Unauthenticated(BaasError.KEY_REQUIRED, "send the app key in X-Gonghui-App-Key")
    holder = resolve_key(session, app_key)
    if authorization is None:
        return Caller(
            app_id=holder.app_id,
            org_id=holder.org_id,
            org_path=holder.org_path,
            server=holder.kind is KeyKind.SERVER,
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "Authorization: Bearer <token>")
    principal = principals.resolve(session, token.strip())
    return Caller(
        app_id=holder.app_id,
        org_id=holder.org_id,
        org_path=holder.org_path,
        server=holder.kind is KeyKind.SERVER,
        user_id=principal.user_id,
        member_org_path=principal.member.org_path if principal.member else None,
        grants=principal.grants,
        is_platform_admin=principal.is_platform_admin,
    )


def get_caller(
    request: Request,
    session: SessionDep,
    app_key: Annotated[str | None, Header(alias="X-Gonghui-App-Key")] = None,
) -> Caller:
    return resolve_caller(
        session, app_key=app_key, authorization=request.headers.get("authorization")
    )


def get_detached_caller(
    request: Request,
    app_key: Annotated[str | None, Header(alias="X-Gonghui-App-Key")] = None,
) -> Caller:
    """The caller, resolved in a short read-only transaction of its own: for long calls
    (function invocations) that must not hold the request's transaction open."""
    with unit_of_work(read_only=True) as session:
        return resolve_caller(
            session, app_key=app_key, authorization=request.headers.get("authorization")
        )


AppCaller = Annotated[Caller, Depends(get_caller)]
DetachedAppCaller = Annotated[Caller, Depends(get_detached_caller)]
