"""A member's tap on an activity page that writes (a draw, a voucher claim): the hot writer
runs it as the member, and the page gets back a partial with its result or the error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, Response

from gonghui import hotwrite
from gonghui.errors import DomainError
from gonghui.h5.access import member_of
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser
from gonghui.web.templating import render

T = TypeVar("T")


def run_as_member(
    request: Request,
    user: PageUser,
    template: str,
    op: Callable[..., T],
    /,
    *,
    shown: Callable[[T], dict[str, Any]],
    **kwargs: Any,
) -> Response:
    """``op(member=..., **kwargs)`` in the hot writer, rendered into ``template``: with
    ``shown(result)``, or with ``error``, the message key of the domain error it raised."""
    try:
        result = hotwrite.run(op, member=member_of(user), **kwargs)
    except DomainError as exc:
        return render(request, template, {"error": error_key(exc)})
    return render(request, template, shown(result))
