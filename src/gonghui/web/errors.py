"""Domain errors shown on a page: the catalogue's text for the error code when it has one,
else the text for its kind of refusal (its HTTP status), in the reader's language; and the
error page a browser gets where the API would answer its JSON envelope."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse

from gonghui.errors import DomainError
from gonghui.web.i18n import catalogue, translator
from gonghui.web.templating import render, request_locale

# Where people open pages in a browser: the console, the members' H5 and the till.
PAGE_ROOTS = ("/console", "/h5", "/cashier")


def error_key(exc: DomainError) -> str:
    """``error.<code>`` when the catalogue translates it, else :func:`status_key`."""
    key = f"error.{exc.code}"
    return key if key in catalogue("zh") else status_key(exc.status_code)


def status_key(status: int) -> str:
    """``error.status.<status>`` (refused input, not allowed, not found, a conflict, ...)
    when the catalogue has it, else ``error.generic``."""
    key = f"error.status.{status}"
    return key if key in catalogue("zh") else "error.generic"


def error_text(exc: DomainError, t: Callable[..., str], *, with_detail: bool = False) -> str:
    """The error as one line in ``t``'s language; ``with_detail`` adds the service's own
    words after it (a developer's page: "table scores has no field team")."""
    return _with_detail(t, t(error_key(exc)), exc.message if with_detail else "")


def field_errors(
    exc: DomainError, t: Callable[..., str], *, with_detail: bool = False
) -> dict[str, str]:
    """Field name -> translated message, from the error's ``details``; ``with_detail``
    adds each detail's own words (a developer's page: "must be at least 16")."""
    found: dict[str, str] = {}
    for detail in exc.details if isinstance(exc.details, list) else []:
        if isinstance(detail, dict) and "field" in detail:
            code = str(detail.get("code", exc.code))
            key = f"error.{code}"
            text = t(key) if key in catalogue("zh") else t(error_key(exc))
            own = str(detail.get("message") or "") if with_detail else ""
            found[str(detail["field"])] = _with_detail(t, text, own)
    return found


def _with_detail(t: Callable[..., str], text: str, detail: str) -> str:
    """``text`` followed by the service's own words ``detail``, when there are any."""
    return t("error.with_detail", error=text, detail=detail) if detail else text


def wants_page(request: Request) -> bool:
    """A browser opening one of our pages (a link, a form sent): it reads a refusal as a
    page. The API, and htmx fetching a part of a page, keep the JSON envelope."""
    path = request.url.path
    return (
        any(path == root or path.startswith(root + "/") for root in PAGE_ROOTS)
        and "text/html" in request.headers.get("accept", "")
        and "hx-request" not in request.headers
    )


def error_page(
    request: Request, *, status: int, key: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """The refusal ``key`` (a catalogue key, see :func:`error_key`) as a page: within the
    console's frame for a signed-in staff member (its sidebar still there), else alone."""
    t = translator(request_locale(request))
    context: dict[str, object] = {"message": t(key), "status": status}
    template = "error.html"
    if request.url.path.startswith("/console/") and hasattr(request.state, "sections"):
        template = "console/error.html"
        context["csrf_token"] = request.state.csrf_token
        section = request.state.section  # console/nav.py's, or None
        context["active"] = section.label if section is not None else ""
    response = render(request, template, context, status=status)
    response.headers.update(headers or {})
    return response
