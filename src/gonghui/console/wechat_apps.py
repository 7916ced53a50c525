"""The console's page for a union's own WeChat apps (official account, mini program, mobile
app): the apps of the developer's subtree, registering one, disabling and enabling (the
same services as ``/api/v1/wechat-apps``). The AppSecret goes in and never comes back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.accounts import wechat_apps
from gonghui.accounts.models import WeChatAppKind
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/wechat-apps", include_in_schema=False)


def _page(
    request: Request,
    user: PageUser,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        apps = wechat_apps.list_apps(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
    context = {
        "active": "nav.oauth",
        "csrf_token": user.csrf_token,
        "apps": apps,
        "org_names": {o.id: o.name for o in visible},
        "orgs": [o for o in visible if actor.can(Permission.APPS_MANAGE, o.path)],
        "kinds": [k.value for k in WeChatAppKind],
        "form": form or {"kind": WeChatAppKind.OFFICIAL.value},
        "error": error,
        "done": done,
    }
    return render(request, "console/wechat_apps.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def apps_page(request: Request, user: ConsoleStaff, done: str = "", error: str = "") -> Response:
    return _page(
        request,
        user,
        done=done if done in ("disabled", "enabled", "registered") else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("", response_class=HTMLResponse)
def register(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    kind: Annotated[WeChatAppKind, Form()],
    appid: Annotated[str, Form(max_length=32)],
    secret: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    # The secret is never put back into the form.
    form = {"org_id": org_id, "kind": kind.value, "appid": appid, "name": name}
    try:
        with unit_of_work() as session:
            wechat_apps.register(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                kind=kind,
                appid=appid.strip(),
                secret=secret.strip(),
                name=name.strip(),
            )
    except DomainError as exc:
        return _page(request, user, form=form, error=error_key(exc), status=422)
    return RedirectResponse("/console/wechat-apps?done=registered", status_code=303)


@router.post("/{app_pk}/state")
def set_state(
    request: Request,
    user: ConsoleStaff,
    app_pk: Id,
    state: Annotated[Literal["disabled", "enabled"], Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def change() -> None:
        with unit_of_work() as session:
            wechat_apps.set_enabled(
                session, actor=_actor(request, user), app_pk=app_pk, enabled=state == "enabled"
            )

    return back_to("/console/wechat-apps", change, done=state)
