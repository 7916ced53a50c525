"""A member's tap on an activity page that writes (a draw, a voucher claim): risk control
checks it, the hot writer runs it as the member, and the page gets back a partial with
its result, the error, or a challenge to solve (a picture and an answer field that send
the tap again)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, Response

from gonghui import hotwrite, risk
from gonghui.errors import DomainError
from gonghui.h5.access import member_of
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser
from gonghui.web.templating import render

T = TypeVar("T")


# The H5's device id: a cookie of its own, minted on the first tap that has none.
DEVICE_COOKIE = "gh_device"
DEVICE_COOKIE_MAX_AGE_S = 400 * 24 * 3600


def _device(request: Request) -> tuple[str, bool]:
    """The browser's device id, and whether it was minted now."""
    found = request.cookies.get(DEVICE_COOKIE, "")
    if 8 <= len(found) <= risk.DEVICE_ID_MAX and found.isascii() and found.isprintable():
        return found, False
    return "h5-" + secrets.token_urlsafe(16), True


def risk_context(request: Request, challenge: tuple[str, str] | None) -> risk.RequestContext:
    """What risk control reads of an H5 tap; a browser without a device cookie counts under
    a new id (:func:`run_as_member` also gives it the cookie)."""
    return risk.RequestContext(
        ip=request.client.host if request.client else None,
        device_id=_device(request)[0],
        challenge_id=challenge[0] if challenge else None,
        challenge_answer=challenge[1] if challenge else None,
    )


def challenge_page(
    request: Request, exc: risk.ChallengeRequired, resend: dict[str, str]
) -> Response:
    """A whole page asking for the challenge, whose form posts the tap again (for taps
    that answer with a page, not a partial: starting a quiz, placing an order)."""
    return render(
        request,
        "h5/challenge.html",
        {
            "challenge_id": exc.details["challenge_id"],
            "action_path": request.url.path,
            "resend": resend,
            "tab": "hub",
        },
    )


def run_as_member(
    request: Request,
    user: PageUser,
    template: str,
    op: Callable[..., T],
    /,
    *,
    action: risk.Action,
    activity_id: int,
    resend: dict[str, str],
    challenge: tuple[str, str] | None,
    shown: Callable[[T], dict[str, Any]],
    target: str | None = None,
    after: Callable[[], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Response:
    """``op(member=..., activity_id=..., **kwargs)`` checked by risk control, then in the
    hot writer, rendered into ``template``: with ``shown(result)``, or with ``error``, the
    message key of the domain error it raised. Asked for a challenge, the page gets
    ``h5/_challenge.html``: the picture and a form that sends the tap again (``resend``,
    the tap's own form fields) with the challenge answered (``challenge``: id, answer).
    ``target`` names what the tap counted for (a candidate), whose rate risk control
    watches once the write succeeded. ``after()`` adds to the template what the page shows
    once the tap is answered, whether it succeeded or not (its button's state, say)."""
    member = member_of(user)
    device, minted = _device(request)
    context = risk.RequestContext(
        ip=request.client.host if request.client else None,
        device_id=device,
        challenge_id=challenge[0] if challenge else None,
        challenge_answer=challenge[1] if challenge else None,
    )
    try:
        risk.check(action, member, context, activity_id=activity_id)
        result = hotwrite.run(op, member=member, activity_id=activity_id, **kwargs)
    except risk.ChallengeRequired as exc:
        response = render(
            request,
            "h5/_challenge.html",
            {
                "challenge_id": exc.details["challenge_id"],
                "action_path": request.url.path,
                "resend": resend,
            },
        )
    except DomainError as exc:
        response = render(request, template, {"error": error_key(exc), **_after(after)})
    else:
        if target is not None:
            risk.note_activity_target(target, activity_id)
        response = render(request, template, {**shown(result), **_after(after)})
    if minted:
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=DEVICE_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def _after(after: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
    return {} if after is None else after()
