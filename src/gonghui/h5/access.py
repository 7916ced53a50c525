"""Who may open an H5 page: a signed-in user, or a signed-in member (verified)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gonghui.accounts.principal import MemberInfo
from gonghui.web.session import LoginRequired, PageUser, current_page_user


def h5_user(request: Request) -> PageUser:
    user = current_page_user(request)
    if user is None:
        raise LoginRequired("/h5/login")
    return user


def h5_member(request: Request) -> PageUser:
    user = h5_user(request)
    if user.principal.member is None:
        raise LoginRequired("/h5/verify")
    return user


H5User = Annotated[PageUser, Depends(h5_user)]
H5Member = Annotated[PageUser, Depends(h5_member)]


def member_of(user: PageUser) -> MemberInfo:
    assert user.principal.member is not None
    return user.principal.member
