from __future__ import annotations

from fastapi import APIRouter, Request, status

from gonghui.accounts import service, tokens
from gonghui.accounts.schemas import (
    GrantRead,
    MembershipBrief,
    MeRead,
    PasswordLogin,
    RefreshRequest,
    TokenRead,
)
from gonghui.accounts.tokens import TokenPair
from gonghui.deps import ClientIp, CurrentPrincipal, SessionDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


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
) -> TokenRead:
    pair = service.sign_in_with_password(
        session,
        username=body.username,
        password=body.password,
        ip=ip,
        user_agent=request.headers.get("user-agent"),
    )
    return token_read(pair)


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
        is_platform_admin=user.is_platform_admin,
        roles=[
            GrantRead(org_id=g.org_id, org_path=g.org_path, role=g.role) for g in principal.grants
        ],
        membership=MembershipBrief(membership_id=member.membership_id, org_id=member.org_id)
        if member
        else None,
    )
