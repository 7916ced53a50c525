from __future__ import annotations

from fastapi import APIRouter, Request, status

from gonghui.accounts import identities, otp, phone, service, tokens, totp, wechat, wechat_apps
from gonghui.accounts.models import OrgWeChatApp
from gonghui.accounts.otp import OtpPurpose
from gonghui.accounts.schemas import (
    GrantRead,
    IdentityRead,
    MembershipBrief,
    MeRead,
    PasswordLogin,
    PhoneLink,
    PhoneRead,
    RefreshRequest,
    SmsLogin,
    SmsSend,
    SmsSent,
    TokenRead,
    TotpChallengeRead,
    TotpCode,
    TotpEnrolmentRead,
    TotpLogin,
    TotpStatusRead,
    WeChatAppLogin,
    WeChatAppRead,
    WeChatAppRegistration,
    WeChatAppState,
    WeChatMiniLogin,
    WeChatOAuthLogin,
)
from gonghui.accounts.tokens import TokenPair
from gonghui.accounts.totp import TotpChallenge
from gonghui.deps import ClientIp, CurrentPrincipal, CurrentStaff, SessionDep
from gonghui.types import Id

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
# A union's own WeChat apps (staff): what its members sign in through.
apps_router = APIRouter(prefix="/api/v1/wechat-apps", tags=["auth"])


def token_read(pair: TokenPair) -> TokenRead:
    return TokenRead(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user_id=pair.user_id,
    )


@router.post("/password")
def login_with_password(
    body: PasswordLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead | TotpChallengeRead:
    result = service.sign_in_with_password(
        session,
        username=body.username,
        password=body.password,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
    )
    if isinstance(result, TotpChallenge):
        return TotpChallengeRead(challenge=result.challenge, expires_in=result.expires_in)
    return token_read(result)


@router.post("/totp/login")
def login_with_totp(
    body: TotpLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead:
    pair = totp.complete_sign_in(
        session,
        challenge=body.challenge,
        code=body.code,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
    )
    return token_read(pair)


@router.get("/totp")
def totp_status(staff: CurrentStaff, session: SessionDep) -> TotpStatusRead:
    assert staff.user_id is not None
    return TotpStatusRead(enabled=totp.is_enabled(session, user_id=staff.user_id))


@router.post("/totp/enrol", status_code=status.HTTP_201_CREATED)
def enrol_totp(staff: CurrentStaff, session: SessionDep) -> TotpEnrolmentRead:
    enrolment = totp.start_enrolment(session, actor=staff)
    return TotpEnrolmentRead(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post("/totp/confirm")
def confirm_totp(body: TotpCode, staff: CurrentStaff, session: SessionDep) -> TotpStatusRead:
    totp.confirm_enrolment(session, actor=staff, code=body.code)
    return TotpStatusRead(enabled=True)


@router.post("/totp/disable")
def disable_totp(body: TotpCode, staff: CurrentStaff, session: SessionDep) -> TotpStatusRead:
    totp.disable(session, actor=staff, code=body.code)
    return TotpStatusRead(enabled=False)


@router.post("/refresh")
def refresh(body: RefreshRequest, session: SessionDep) -> TokenRead:
    return token_read(tokens.rotate(session, refresh_token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: CurrentPrincipal, session: SessionDep) -> None:
    tokens.revoke_session(session, session_id=principal.session_id, reason="logout")


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
def logout_everywhere(principal: CurrentPrincipal, session: SessionDep) -> None:
    tokens.revoke_all(session, user_id=principal.user_id)


@router.get("/me")
def me(principal: CurrentPrincipal, session: SessionDep) -> MeRead:
    user = service.get_user(session, user_id=principal.user_id)
    assert user is not None
    member = principal.member
    return MeRead(
        user_id=user.id,
        display_name=user.display_name,
        phone=service.user_phone_masked(user),
        sign_in=principal.kind,
        is_platform_admin=principal.is_platform_admin,
        roles=[
            GrantRead(org_id=g.org_id, org_path=g.org_path, role=g.role) for g in principal.grants
        ],
        membership=MembershipBrief(membership_id=member.membership_id, org_id=member.org_id)
        if member
        else None,
    )


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


@router.post("/sms/send")
def send_sms_code(body: SmsSend, ip: ClientIp, session: SessionDep) -> SmsSent:
    sent = otp.send_code(session, phone=body.phone, purpose=OtpPurpose(body.purpose), ip=ip)
    return SmsSent(
        phone=sent.phone_masked, expires_in=sent.expires_in, resend_after=sent.resend_after
    )


@router.post("/sms/login")
def login_with_sms(
    body: SmsLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead:
    pair = phone.sign_in_with_sms(
        session,
        phone=body.phone,
        code=body.code,
        channel=body.channel,
        ip=ip,
        user_agent=_user_agent(request),
    )
    return token_read(pair)


@router.post("/phone/link")
def link_phone(body: PhoneLink, principal: CurrentPrincipal, session: SessionDep) -> PhoneRead:
    user = phone.link_phone(session, user_id=principal.user_id, phone=body.phone, code=body.code)
    return PhoneRead(user_id=user.id, phone=service.user_phone_masked(user))


@router.get("/identities")
def list_identities(principal: CurrentPrincipal, session: SessionDep) -> list[IdentityRead]:
    return [
        IdentityRead(
            provider=i.provider, app_id=i.app_id, channel=i.channel, created_at=i.created_at
        )
        for i in identities.identities_of(session, user_id=principal.user_id)
    ]


@router.post("/wechat/mini")
def login_with_mini_program(
    body: WeChatMiniLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead:
    pair = wechat.sign_in_with_mini_program(
        session,
        code=body.code,
        phone_code=body.phone_code,
        channel=body.channel,
        appid=body.appid,
        ip=ip,
        user_agent=_user_agent(request),
    )
    return token_read(pair)


@router.post("/wechat/official")
def login_with_official_account(
    body: WeChatOAuthLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead:
    pair = wechat.sign_in_with_official_account(
        session,
        code=body.code,
        channel=body.channel,
        appid=body.appid,
        ip=ip,
        user_agent=_user_agent(request),
    )
    return token_read(pair)


@router.post("/wechat/app")
def login_with_mobile_app(
    body: WeChatAppLogin, request: Request, ip: ClientIp, session: SessionDep
) -> TokenRead:
    pair = wechat.sign_in_with_mobile_app(
        session, code=body.code, appid=body.appid, ip=ip, user_agent=_user_agent(request)
    )
    return token_read(pair)


def _app_read(row: OrgWeChatApp) -> WeChatAppRead:
    return WeChatAppRead(
        id=row.id,
        org_id=row.org_id,
        kind=row.kind,
        appid=row.appid,
        name=row.name,
        enabled=row.disabled_at is None,
        created_at=row.created_at,
    )


@apps_router.post("", status_code=status.HTTP_201_CREATED)
def register_wechat_app(
    body: WeChatAppRegistration, staff: CurrentStaff, session: SessionDep
) -> WeChatAppRead:
    row = wechat_apps.register(
        session,
        actor=staff,
        org_id=body.org_id,
        kind=body.kind,
        appid=body.appid,
        secret=body.secret,
        name=body.name,
    )
    return _app_read(row)


@apps_router.get("")
def list_wechat_apps(staff: CurrentStaff, session: SessionDep) -> list[WeChatAppRead]:
    return [_app_read(r) for r in wechat_apps.list_apps(session, actor=staff)]


@apps_router.put("/{app_pk}/state")
def set_wechat_app_state(
    app_pk: Id, body: WeChatAppState, staff: CurrentStaff, session: SessionDep
) -> WeChatAppRead:
    row = wechat_apps.set_enabled(session, actor=staff, app_pk=app_pk, enabled=body.enabled)
    return _app_read(row)
