"""HTTP calls a function makes to the hosts it declared, made by the platform on its behalf.

A function's sandbox has no network at all; ``context.http.request(...)`` asks the server,
which checks the URL's host against the function's ``allowed_hosts`` ("api.example.com",
or "*.example.com" for its subdomains) and makes the call through :mod:`gonghui.outbound`:
public addresses only (unless the operator allows a network), connected at the address that
was checked, no redirects followed (a redirect could leave the allowed hosts), one deadline
for the whole call and sizes capped.
"""

from __future__ import annotations

from typing import Any

from gonghui import outbound
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.outbound import OutboundError, OutboundRefusal
from gonghui.settings import get_settings

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
MAX_BODY = 1024 * 1024


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def request(args: dict[str, Any], *, allowed_hosts: tuple[str, ...]) -> dict[str, Any]:
    method = str(args.get("method") or "GET").upper()
    url = str(args.get("url") or "")
    if method not in METHODS:
        raise SdkRefusal(FunctionsError.BAD_CALL, "an http(s) URL and a standard method")
    try:
        target = outbound.parse_url(url)
    except OutboundError as exc:
        raise SdkRefusal(FunctionsError.BAD_CALL, exc.message) from exc
    if not host_allowed(target.host, allowed_hosts):
        raise SdkRefusal(
            FunctionsError.HOST_NOT_ALLOWED,
            f"{target.host} is not in this function's allowed_hosts",
        )
    headers = [(str(k), str(v)) for k, v in (args.get("headers") or {}).items()]
    body = args.get("body")
    content = None if body is None else str(body).encode()
    if content is not None and len(content) > MAX_BODY:
        raise SdkRefusal(FunctionsError.BAD_CALL, "the request body is over 1 MiB")
    try:
        response = outbound.fetch(
            method,
            target.url,
            headers=headers,
            content=content,
            timeout_s=get_settings().outbound_timeout_s,
            max_response_bytes=MAX_BODY,
        )
    except OutboundError as exc:
        code = (
            FunctionsError.HOST_NOT_ALLOWED
            if exc.code in (OutboundRefusal.ADDRESS_REFUSED, OutboundRefusal.UNRESOLVABLE)
            else FunctionsError.HTTP_FAILED
        )
        raise SdkRefusal(code, f"{exc.code}: {exc.message}") from exc
    return {
        "status": response.status,
        "headers": dict(response.headers),
        "body": response.body.decode("utf-8", errors="replace"),
    }
