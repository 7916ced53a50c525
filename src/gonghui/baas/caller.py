"""Authentication of app calls: ``X-Gonghui-App-Key`` (client or server key) plus an
optional ``Authorization: Bearer`` user token.

The key is read by :data:`get_caller`, an ``apiKey`` security scheme of its own: OpenAPI
documents it once as the app calls' sign-in (``components.securitySchemes.appKey``), and
it reads the header itself. A declared ``Header`` parameter cost about 10 µs of every app
call in FastAPI's per-request parameter extraction (``request_params_to_args``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui.accounts import principal as principals
from gonghui.accounts.errors import AccountsError
from gonghui.baas.apps import AppKeyHolder, KeyKind, cached_key, resolve_key
from gonghui.baas.errors import BaasError
from gonghui.baas.permissions import Caller
from gonghui.db import unit_of_work
from gonghui.errors import Unauthenticated

APP_KEY_HEADER = "X-Gonghui-App-Key"


class AppKey(APIKeyHeader):
    """The caller of an app call, from its app key (and user token, if any)."""

    def __init__(self) -> None:
        super().__init__(
            name=APP_KEY_HEADER,
            scheme_name="appKey",
            description="An app's client key (members' apps) or server key (its servers).",
            auto_error=False,
        )

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        app_key = request.headers.get(APP_KEY_HEADER)
        if not app_key:
            raise Unauthenticated(BaasError.KEY_REQUIRED, f"send the app key in {APP_KEY_HEADER}")
        # The hot path (a key resolved moments ago, no user token) needs no database and so
        # no worker thread; anything else reads in its own short unit of work (the handlers
        # own their write unit of work, see router/).
        holder = cached_key(app_key)
        if holder is not None and "authorization" not in request.headers:
            return _key_caller(holder)
        return await run_in_threadpool(_resolve_in_new_session, request, app_key)


get_caller = AppKey()


def _resolve_in_new_session(request: Request, app_key: str) -> Caller:
    with unit_of_work(read_only=True) as session:
        return _resolve(session, request, app_key)


def _key_caller(holder: AppKeyHolder) -> Caller:
    return Caller(
        app_id=holder.app_id,
        org_id=holder.org_id,
        org_path=holder.org_path,
        server=holder.kind is KeyKind.SERVER,
    )


def _resolve(session: Session, request: Request, app_key: str) -> Caller:
    holder = resolve_key(session, app_key)
    header = request.headers.get("authorization")
    if header is None:
        return _key_caller(holder)
    scheme, _, token = header.partition(" ")
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


AppCaller = Annotated[Caller, Depends(get_caller)]
