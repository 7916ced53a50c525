"""Jinja2 environment shared by the console and the member H5 app."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gonghui.clock import display_zone
from gonghui.web.i18n import LOCALES, pick_locale, translator

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(display_zone()).strftime(fmt)


def _yuan(cents: int) -> str:
    """Cents as yuan with two decimals ("58.00")."""
    return f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else "-" + _yuan(-cents)


templates.env.filters["local_time"] = _local_time
templates.env.filters["yuan"] = _yuan
# ``tojson`` writes Chinese as it is, not as \u escapes: audit details, trigger filters and
# app templates are read by people (it still escapes <, >, & and ' for the page).
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}


def request_locale(request: Request) -> str:
    return pick_locale(
        request.query_params.get("lang"),
        request.cookies.get("gh_lang"),
        request.headers.get("accept-language"),
    )


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    locale = request_locale(request)
    t = translator(locale)

    page = {"request": request, "t": t, "locale": locale, "locales": LOCALES}
    page.update(context or {})
    response = templates.TemplateResponse(request, template, page, status_code=status)
    # No page of ours is meant to be framed: another site framing the consent screen or a
    # console form could trick a click (RFC 6749 §10.13).
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    if request.query_params.get("lang") in LOCALES:
        response.set_cookie("gh_lang", locale, max_age=365 * 24 * 3600, samesite="lax")
    return response
