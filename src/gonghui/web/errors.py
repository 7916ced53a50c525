"""Domain errors shown on a page: the catalogue's text for the error code when it has one,
else the text for its kind of refusal (its HTTP status), in the reader's language."""

from __future__ import annotations

from collections.abc import Callable

from gonghui.errors import DomainError
from gonghui.web.i18n import catalogue


def error_key(exc: DomainError) -> str:
    """``error.<code>`` when the catalogue translates it, else ``error.status.<status>``
    (refused input, not allowed, not found, a conflict, ...), else ``error.generic``."""
    for key in (f"error.{exc.code}", f"error.status.{exc.status_code}"):
        if key in catalogue("zh"):
            return key
    return "error.generic"


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
