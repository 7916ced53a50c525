"""Each union's own WeChat apps: an org registers its official account, mini program and
mobile app (``appid`` and app secret, the secret sealed), and a sign-in names the app it
came through. The deployment's own apps (settings) need no registration; every other appid
must be registered and enabled, or the sign-in is refused before WeChat is asked.

One person stays one account across every union's apps because WeChat gives all apps bound
to one open-platform account the same unionid (``identities.user_for_wechat`` links by it).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import OrgWeChatApp, WeChatAppKind
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound
from gonghui.integrations import wechat
from gonghui.integrations.wechat import WeChatApp
from gonghui.pii import seal_bytes, unseal_bytes
from gonghui.tenancy import Actor, Permission, get_scoped, require_org, scoped

# WeChat's documented forms: an appid is "wx" and 16 hex digits, an AppSecret 32 of them.
APPID = re.compile(r"wx[0-9a-f]{16}")
SECRET = re.compile(r"[0-9a-zA-Z]{32}")
_SEAL_PURPOSE = "wechat-app-secret"

_DEPLOYMENT = {
    WeChatAppKind.MINI: wechat.mini_program,
    WeChatAppKind.OFFICIAL: wechat.official_account,
    WeChatAppKind.MOBILE: wechat.mobile_app,
}


def _purpose(appid: str) -> str:
    # Bound to its appid: a sealed secret copied onto another row does not open.
    return f"{_SEAL_PURPOSE}:{appid}"


def register(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    kind: WeChatAppKind,
    appid: str,
    secret: str,
    name: str,
) -> OrgWeChatApp:
    """Register ``org_id``'s own WeChat app (developers and admins of the org or above)."""
    org = require_org(session, actor, Permission.APPS_MANAGE, org_id)
    if not APPID.fullmatch(appid):
        raise InvalidInput(
            AccountsError.WECHAT_APP_INVALID,
            "appid must be wx followed by 16 hex digits",
            {"field": "appid"},
        )
    if not SECRET.fullmatch(secret):
        raise InvalidInput(
            AccountsError.WECHAT_APP_INVALID,
            "secret must be the app's 32-character AppSecret",
            {"field": "secret"},
        )
    if any(appid == app().appid for app in _DEPLOYMENT.values()):
        raise Conflict(AccountsError.WECHAT_APP_TAKEN, "this appid is the deployment's own")
    row = OrgWeChatApp(
        org_id=org.id,
        kind=kind,
        appid=appid,
        name=name,
        secret_enc=seal_bytes(_purpose(appid), secret.encode()),
        created_by=actor.user_id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(AccountsError.WECHAT_APP_TAKEN, "this appid is registered") from None
    audit.record(
        session,
        actor=actor,
        action="accounts.wechat_app.register",
        org_id=org.id,
        subject_type="wechat_app",
        subject_id=row.id,
        details={"kind": kind.value, "appid": appid, "name": name},
    )
    return row


def list_apps(session: Session, *, actor: Actor) -> list[OrgWeChatApp]:
    stmt = scoped(select(OrgWeChatApp), actor, Permission.APPS_MANAGE)
    return list(session.scalars(stmt.order_by(OrgWeChatApp.id)))


def set_enabled(session: Session, *, actor: Actor, app_pk: int, enabled: bool) -> OrgWeChatApp:
    """Disable (sign-ins through it are refused at once) or enable an org's app; audited."""
    row = get_scoped(session, OrgWeChatApp, app_pk, actor, Permission.APPS_MANAGE)
    row.disabled_at = None if enabled else (row.disabled_at or now())
    audit.record(
        session,
        actor=actor,
        action="accounts.wechat_app." + ("enable" if enabled else "disable"),
        org_id=row.org_id,
        subject_type="wechat_app",
        subject_id=row.id,
        details={"appid": row.appid},
    )
    return row


def resolve(session: Session, kind: WeChatAppKind, appid: str | None) -> WeChatApp:
    """The app a sign-in came through: the deployment's when ``appid`` is empty or its own,
    else an enabled app of that kind some union registered."""
    default = _DEPLOYMENT[kind]()
    if not appid or appid == default.appid:
        return default
    row = session.scalar(
        select(OrgWeChatApp).where(
            OrgWeChatApp.appid == appid,
            OrgWeChatApp.kind == kind,
            OrgWeChatApp.disabled_at.is_(None),
        )
    )
    if row is None:
        raise NotFound(AccountsError.WECHAT_APP_UNKNOWN, f"no {kind.value} app {appid}")
    return WeChatApp(row.appid, unseal_bytes(_purpose(row.appid), row.secret_enc).decode())
