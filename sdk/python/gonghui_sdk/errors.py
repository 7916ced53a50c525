"""What a refusal becomes: the open APIs' one envelope as :class:`ApiError` (429 as
:class:`RateLimitedError` with its ``Retry-After``), OAuth's back channel's own format
(RFC 6749 §5.2) and a refused sign-in as :class:`OAuthError`."""

from __future__ import annotations

from typing import Any

import httpx


class GonghuiError(Exception):
    """Every error this SDK raises."""


class ApiError(GonghuiError):
    """``{"error": {"code", "message", "details"}}`` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class InvalidTokenError(ApiError):
    """401: the access token is missing, unknown, expired or revoked."""


class RateLimitedError(ApiError):
    """429: too many calls; ``retry_after`` seconds (``Retry-After``) until the next."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, *, retry_after: int | None
    ) -> None:
        super().__init__(status, code, message, details)
        self.retry_after = retry_after


class OAuthError(GonghuiError):
    """The provider refused (``invalid_grant``, ``access_denied``...) or its answer does
    not hold (a state or nonce that does not match)."""

    def __init__(self, error: str, description: str | None = None, status: int | None = None):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def raise_for_answer(response: httpx.Response) -> None:
    """Raise the error an unsuccessful answer carries; return on 2xx."""
    if response.is_success:
        return
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):  # OAuth's format: {"error": "invalid_grant", ...}
        raise OAuthError(error, body.get("error_description"), response.status_code)
    if isinstance(error, dict):
        code, message = str(error.get("code")), str(error.get("message"))
        details = error.get("details")
    else:
        code, message, details = f"http.{response.status_code}", response.text[:200], None
    status = response.status_code
    if status == 429:
        after = response.headers.get("retry-after", "")
        retry = int(after) if after.isdigit() else None
        raise RateLimitedError(status, code, message, details, retry_after=retry)
    if status == 401:
        raise InvalidTokenError(status, code, message, details)
    raise ApiError(status, code, message, details)
