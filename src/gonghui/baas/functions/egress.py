"""HTTP calls a function makes to the hosts it declared, made by the platform on its behalf.

A function's sandbox has no network at all; ``context.http.request(...)`` asks the server,
which checks the URL's host against the function's ``allowed_hosts`` ("api.example.com",
or "*.example.com" for its subdomains), refuses hosts that resolve to loopback, private or
link-local addresses (unless ``functions_allow_private_hosts``), does not follow
redirects (a redirect could leave the allowed hosts) and caps time and sizes.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.settings import get_settings

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
MAX_BODY = 1024 * 1024
TIMEOUT_S = 10.0


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def _resolves_publicly(host: str, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_global for info in infos)


def request(args: dict[str, Any], *, allowed_hosts: tuple[str, ...]) -> dict[str, Any]:
    method = str(args.get("method") or "GET").upper()
    url = str(args.get("url") or "")
    parts = urlsplit(url)
    if method not in METHODS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SdkRefusal(FunctionsError.BAD_CALL, "an http(s) URL and a standard method")
    host = parts.hostname
    if not host_allowed(host, allowed_hosts):
        raise SdkRefusal(
            FunctionsError.HOST_NOT_ALLOWED, f"{host} is not in this function's allowed_hosts"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not get_settings().functions_allow_private_hosts and not _resolves_publicly(host, port):
        raise SdkRefusal(
            FunctionsError.HOST_NOT_ALLOWED, f"{host} does not resolve to a public address"
        )
    headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
    body = args.get("body")
    content = None if body is None else str(body).encode()
    if content is not None and len(content) > MAX_BODY:
        raise SdkRefusal(FunctionsError.BAD_CALL, "the request body is over 1 MiB")
    try:
        response = httpx.request(
            method, url, headers=headers, content=content, timeout=TIMEOUT_S, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        raise SdkRefusal(FunctionsError.HTTP_FAILED, f"{type(exc).__name__}: {exc}") from exc
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": response.text[:MAX_BODY],
    }
