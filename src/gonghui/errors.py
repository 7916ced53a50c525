"""The base domain error and the one error envelope.

Every API error renders as ``{"error": {"code", "message", "details"}}``. Services raise a
subclass of :class:`DomainError` with a stable dotted code (``"members.not_in_roster"``); the
handlers in :mod:`gonghui.app` render it with the class's HTTP status.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status_code: ClassVar[int] = 400

    def __init__(
        self, code: str, message: str, details: Any = None, *, keep_changes: bool = False
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.details = details
        # True when the refusal is itself a decision that must be stored (a failed OTP
        # attempt counted, a token family revoked): the unit of work commits, then the
        # error is still returned to the caller.
        self.keep_changes = keep_changes

    def envelope(self) -> dict[str, Any]:
        return envelope(self.code, self.message, self.details)

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the envelope."""
        return {}


class InvalidInput(DomainError):
    status_code = 422


class Unauthenticated(DomainError):
    status_code = 401


class PermissionDenied(DomainError):
    status_code = 403


class BearerRefused(Unauthenticated):
    """A bearer token the resource refuses: missing, unknown, expired or revoked (RFC 6750
    §3, ``invalid_token``)."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class ScopeMissing(PermissionDenied):
    """A valid bearer token without the scope the resource needs (RFC 6750 §3.1)."""

    def __init__(self, code: str, message: str, *, scope: str) -> None:
        super().__init__(code, message, {"scope": scope})
        self.scope = scope

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


class NotFound(DomainError):
    """Also what a caller outside the owner's subtree sees: existence is not leaked."""

    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Gone(DomainError):
    status_code = 410


class PayloadTooLarge(DomainError):
    status_code = 413


class RateLimited(DomainError):
    status_code = 429

    def __init__(
        self,
        code: str,
        message: str,
        details: Any = None,
        *,
        retry_after_s: int | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(code, message, details, keep_changes=keep_changes)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailable(DomainError):
    """A service this one depends on (Redis) is unreachable: the request is refused rather
    than served without it (rate limits fail closed). Worth retrying after a moment."""

    status_code = 503

    def __init__(
        self, code: str, message: str, details: Any = None, *, retry_after_s: int | None = None
    ) -> None:
        super().__init__(code, message, details)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class UpstreamError(DomainError):
    """An outside service (SMS, WeChat) refused or failed."""

    status_code = 502


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def field_error(field: str, code: str, message: str) -> dict[str, str]:
    """One entry of a validation error's ``details`` list."""
    return {"field": field, "code": code, "message": message}
