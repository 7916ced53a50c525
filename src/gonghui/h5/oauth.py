"""The authorization endpoint: a member signs in on the H5 and grants an app access.

``GET /h5/oauth/authorize`` checks the request (client, redirect URI, scope, PKCE) before
anything is shown: a request that fails there is answered here and never sent to an
unchecked address. A member not signed in goes to the sign-in page and comes back; one
whose union the app does not serve is told so. The screen names the app, its union and
what each scope reveals; consent once given is remembered and asked again only for more
(or when the app asks with ``prompt=consent``). An app that asks with ``prompt=none`` (OpenID
Connect Core §3.1.2.6) is never shown a page: it hears ``login_required``,
``consent_required`` or ``interaction_required`` (verify first, or a union it does not serve)
at its redirect URI instead.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from gonghui.accounts.models import AuthSession
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5User
from gonghui.openplatform import consents, identity, scopes
from gonghui.openplatform.provider import HttpAnswer, Provider, WebRequest
from gonghui.orgs.models import Org
from gonghui.types import Id
from gonghui.web.session import PageUser, check_csrf, current_page_user
from gonghui.web.templating import render

router = APIRouter()

PATH = "/h5/oauth/authorize"
_OURS = ("csrf", "decision")


def _redirect(answer: HttpAnswer) -> Response:
    headers = dict(answer.headers)
    if "Location" in headers:
        return RedirectResponse(headers["Location"], status_code=303)
    # An error Authlib could not send back to the app (no checked redirect URI).
    return Response(str(answer.body), status_code=answer.status, media_type="application/json")


def _refused(request: Request, error: OAuth2Error) -> Response:
    return render(
        request,
        "h5/oauth_error.html",
        {"error": error.error, "description": error.description or ""},
        status=400,
    )


def _sign_in_first(request: Request) -> Response:
    back = f"{PATH}?{request.url.query}"
    return RedirectResponse(f"/h5/login?next={quote(back, safe='')}", status_code=303)


def _authorize(
    request: Request, user: PageUser | None, web: WebRequest, decision: str | None
) -> Response:
    """Answer an authorization request; ``user`` is None only for a member not signed in."""
    silent = "none" in str(web.payload.data.get("prompt") or "").split()
    with unit_of_work() as session:
        provider = Provider(session)
        member = identity.member_view(session, user.principal.user_id) if user else None
        try:
            # With prompt=none and no member, Authlib's OpenID extension raises login_required.
            grant = provider.get_consent_grant(web, end_user=member)
        except OAuth2Error as error:
            if error.redirect_uri:  # checked against the client's: the app hears of it
                return _redirect(provider.handle_response(*error()))
            return _refused(request, error)

        def tell_app(error: OAuth2Error) -> Response:
            error.redirect_uri = grant.redirect_uri
            error.state = web.payload.state
            return _redirect(provider.handle_response(*error()))

        if user is None:
            return _sign_in_first(request)
        client = grant.client.row
        org = session.get(Org, client.org_id)
        if member is None or not member.verified:
            if silent:
                return tell_app(InteractionRequiredError("the member must verify first"))
            return render(request, "h5/oauth_verify_first.html", {"client": client, "org": org})
        if org is None or not identity.serves(org.path, member):
            if silent:
                return tell_app(InteractionRequiredError("the app does not serve this member"))
            return render(
                request, "h5/oauth_not_served.html", {"client": client, "org": org}, status=403
            )
        scope = " ".join(
            scopes.member_scopes(scopes.parse(grant.client.get_allowed_scope(web.payload.scope)))
        )
        prompt = web.payload.data.get("prompt", "")
        if decision is None:
            known = consents.remembered(session, user_id=member.user_id, client=client, scope=scope)
            if silent and not known:
                return tell_app(ConsentRequiredError())
            if not known or "consent" in prompt.split():
                return render(
                    request,
                    "h5/oauth_consent.html",
                    {
                        "client": client,
                        "org": org,
                        "scopes": [scopes.SCOPES[s] for s in scopes.parse(scope)],
                        "params": [(k, v) for k, vs in web.payload.datalist.items() for v in vs],
                        "csrf_token": user.csrf_token,
                    },
                )
            decision = "allow"
        if decision == "allow":
            consents.remember(session, user_id=member.user_id, client=client, scope=scope)
            signed_in = session.get(AuthSession, user.principal.session_id)
            provider.auth_time = signed_in.created_at if signed_in else None
            answer = provider.create_authorization_response(web, grant_user=member, grant=grant)
        else:
            answer = provider.create_authorization_response(web, grant_user=None, grant=grant)
        return _redirect(answer)


@router.get("/oauth/authorize", response_class=HTMLResponse)
def authorize(request: Request) -> Response:
    user = current_page_user(request)
    if user is None and "none" not in request.query_params.get("prompt", "").split():
        return _sign_in_first(request)
    web = WebRequest("GET", PATH, list(request.query_params.multi_items()), request.headers)
    return _authorize(request, user, web, None)


@router.post("/oauth/authorize", response_class=HTMLResponse)
async def decide(request: Request, user: H5User) -> Response:
    form = await request.form()
    fields: dict[str, Any] = {k: v for k, v in form.multi_items() if k in _OURS}
    check_csrf(request, user, str(fields.get("csrf", "")))
    items = [(k, v) for k, v in form.multi_items() if k not in _OURS and isinstance(v, str)]
    web = WebRequest("POST", PATH, items, request.headers)
    decision = "allow" if fields.get("decision") == "allow" else "deny"
    return await run_in_threadpool(_authorize, request, user, web, decision)


@router.get("/apps", response_class=HTMLResponse)
def granted_apps(request: Request, user: H5User, done: str = "") -> Response:
    """The apps the member signed in to with their union account, and what each may read."""
    with unit_of_work(read_only=True) as session:
        apps = consents.granted_apps(session, user_id=user.principal.user_id)
    return render(
        request,
        "h5/oauth_apps.html",
        {"apps": apps, "csrf_token": user.csrf_token, "done": done == "withdrawn", "tab": "wallet"},
    )


@router.post("/apps/{client_pk}/withdraw")
def withdraw(
    request: Request, user: H5User, client_pk: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    actor = user.principal.actor(request.client.host if request.client else None)
    try:
        with unit_of_work() as session:
            consents.withdraw(session, actor=actor, client_pk=client_pk)
    except DomainError:
        return RedirectResponse("/h5/apps", status_code=303)
    return RedirectResponse("/h5/apps?done=withdrawn", status_code=303)
