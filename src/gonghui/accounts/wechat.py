"""Signing in through WeChat: mini program, official account (web-page OAuth), mobile app.

The app a sign-in came through is looked up first (``wechat_apps.resolve``: the deployment's,
or a union's own, by ``appid``); then WeChat is called, before anything is written, so no
database write lock is held while WeChat answers. Video-channel entries arrive through the
mini program or the official account carrying a channel tag (``channels``), kept on the
identity and the session.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gonghui.accounts import wechat_apps
from gonghui.accounts.identities import WeChatIdentity, user_for_wechat
from gonghui.accounts.models import Provider, WeChatAppKind
from gonghui.accounts.otp import normalize_phone
from gonghui.accounts.tokens import TokenPair, start_session
from gonghui.integrations import wechat
from gonghui.integrations.wechat import WeChatClient


def sign_in_with_mini_program(
    session: Session,
    *,
    code: str,
    phone_code: str | None = None,
    channel: str | None = None,
    appid: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    client: WeChatClient | None = None,
) -> TokenPair:
    client = client or WeChatClient()
    app = wechat_apps.resolve(session, WeChatAppKind.MINI, appid)
    login = client.code_to_session(app, code)
    phone = None
    if phone_code:
        info = client.phone_number(app, phone_code)
        # Only mainland numbers are phone identities here; others are not linked.
        if info.country_code == "86":
            phone = normalize_phone(info.pure_phone_number)
    who = WeChatIdentity(
        provider=Provider.WECHAT_MINI,
        app_id=app.appid,
        openid=login.openid,
        unionid=login.unionid,
        channel=channel,
        phone=phone,
    )
    user = user_for_wechat(session, who=who)
    return start_session(
        session, user=user, channel=channel or "mini", ip=ip, user_agent=user_agent
    )


def _oauth_sign_in(
    session: Session,
    *,
    provider: Provider,
    app: wechat.WeChatApp,
    code: str,
    channel: str | None,
    default_channel: str,
    ip: str | None,
    user_agent: str | None,
    client: WeChatClient | None,
) -> TokenPair:
    oauth = (client or WeChatClient()).oauth_user(app, code)
    who = WeChatIdentity(
        provider=provider,
        app_id=app.appid,
        openid=oauth.openid,
        unionid=oauth.unionid,
        channel=channel,
        nickname=oauth.nickname,
    )
    user = user_for_wechat(session, who=who)
    return start_session(
        session, user=user, channel=channel or default_channel, ip=ip, user_agent=user_agent
    )


def sign_in_with_official_account(
    session: Session,
    *,
    code: str,
    channel: str | None = None,
    appid: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    client: WeChatClient | None = None,
) -> TokenPair:
    return _oauth_sign_in(
        session,
        provider=Provider.WECHAT_OFFICIAL,
        app=wechat_apps.resolve(session, WeChatAppKind.OFFICIAL, appid),
        code=code,
        channel=channel,
        default_channel="official",
        ip=ip,
        user_agent=user_agent,
        client=client,
    )


def sign_in_with_mobile_app(
    session: Session,
    *,
    code: str,
    appid: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    client: WeChatClient | None = None,
) -> TokenPair:
    return _oauth_sign_in(
        session,
        provider=Provider.WECHAT_APP,
        app=wechat_apps.resolve(session, WeChatAppKind.MOBILE, appid),
        code=code,
        channel=None,
        default_channel="app",
        ip=ip,
        user_agent=user_agent,
        client=client,
    )
