"""The one way the server calls a URL that someone else chose (webhook targets, the hosts a
cloud function declares).

Each call resolves the host once, refuses the whole host if any of its addresses is not a
public unicast address (loopback, private, link-local, CGNAT, multicast, unspecified,
reserved, and IPv6 forms that embed such an IPv4: mapped, 6to4, Teredo, NAT64) unless the
operator allows its network (``GONGHUI_OUTBOUND_ALLOW_NETWORKS``), and then connects to
exactly that checked address: the TCP connect is pinned in an httpcore network backend, while
the Host header, TLS SNI and certificate verification keep the original hostname, so a
resolver that answers differently the second time (DNS rebinding) is never asked again.

The whole exchange (resolution, connect, TLS, sending, every read) runs under one deadline
(``anyio.fail_after``), not httpx's per-read timeout that a server trickling one byte at a
time never trips. Request bodies are capped before sending and response bodies while
streaming. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

import anyio
import anyio.to_thread
import httpcore
import httpx

from gonghui.errors import UpstreamError
from gonghui.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REQUEST_BYTES = 1024 * 1024
# Headers the exchange itself owns: a caller's value could split or smuggle the request.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Not all covered by ``is_global``/``is_private`` in every Python version: spelled out.
_REFUSED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundRefusal(StrEnum):
    BAD_URL = "outbound.bad_url"
    ADDRESS_REFUSED = "outbound.address_refused"
    UNRESOLVABLE = "outbound.unresolvable"
    DEADLINE = "outbound.deadline"
    TOO_LARGE = "outbound.too_large"
    FAILED = "outbound.failed"


class OutboundError(UpstreamError):
    """An outgoing call was refused before it left, or failed on the way."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and how the Host header names it."""

    scheme: str
    host: str  # lower-case; an IP literal without brackets
    port: int
    host_header: str
    url: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool
    address: str  # the address connected to


def parse_url(url: str) -> Target:
    """``url`` as a target: http(s), a syntactically valid host, no user info. Raises
    :class:`OutboundError` with ``outbound.bad_url`` and a message fit for a field error."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad_url("not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise _bad_url("an http:// or https:// URL")
    if "@" in parts.netloc:
        raise _bad_url("a URL without user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _bad_url("a URL with a host")
    if _literal(host) is None:
        try:
            ascii_host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise _bad_url("a valid host name") from exc
        if len(ascii_host) > 253 or not all(_LABEL.match(x) for x in ascii_host.split(".")):
            raise _bad_url("a valid host name")
        host = ascii_host
    default = 443 if parts.scheme == "https" else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    rebuilt = SplitResult(parts.scheme, host_header, parts.path or "/", parts.query, "")
    return Target(parts.scheme, host, port, host_header, rebuilt.geturl())


def check_url(url: str) -> Target:
    """What can be known about ``url`` without resolving it: :func:`parse_url`, and an IP
    literal's address allowed. For refusing a bad webhook target when it is configured."""
    target = parse_url(url)
    literal = _literal(target.host)
    if literal is not None and not address_allowed(literal):
        raise OutboundError(
            OutboundRefusal.ADDRESS_REFUSED,
            f"{target.host} is not a public address",
        )
    return target


def address_allowed(address: IPAddress) -> bool:
    """A public unicast address, or one in a network the operator allows."""
    allowed = _allowed_networks(tuple(get_settings().outbound_allow_networks))
    candidates = [address, *_embedded_v4(address)]
    if any(a in net for a in candidates for net in allowed if a.version == net.version):
        return True
    return all(_public(a) for a in candidates)


def fetch(
    method: str,
    url: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    content: bytes | None = None,
    timeout_s: float,
    max_response_bytes: int,
    truncate: bool = False,
) -> Response:
    """Send one request to ``url`` and read its answer, all within ``timeout_s``.

    A response body longer than ``max_response_bytes`` is cut there (``truncate``) or
    refused with ``outbound.too_large``; reading stops either way. Every failure raises
    :class:`OutboundError`.
    """
    target = parse_url(url)
    if content is not None and len(content) > MAX_REQUEST_BYTES:
        raise OutboundError(OutboundRefusal.TOO_LARGE, "the request body is over 1 MiB")
    request_headers = [("Host", target.host_header)]
    request_headers += [(k, v) for k, v in headers if k.lower() not in _OWN_HEADERS]
    if content is not None:
        request_headers.append(("Content-Length", str(len(content))))
    try:
        return _run_blocking(
            _exchange,
            method.upper(),
            target,
            request_headers,
            content,
            timeout_s,
            max_response_bytes,
            truncate,
        )
    except TimeoutError as exc:
        raise OutboundError(
            OutboundRefusal.DEADLINE, f"no complete answer within {timeout_s:g} s"
        ) from exc
    except httpcore.UnsupportedProtocol as exc:  # pragma: no cover - parse_url refuses first
        raise _bad_url("an http:// or https:// URL") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
        raise OutboundError(OutboundRefusal.FAILED, f"{type(exc).__name__}: {exc}") from exc


def _run_blocking(fn: Callable[..., Awaitable[Response]], *args: Any) -> Response:
    """Run ``fn(*args)`` to its end from synchronous code: in this thread, or in one of
    its own when an event loop already runs in this one (a synchronous caller inside
    asynchronous code, such as a test driving a browser), where ``anyio.run`` refuses."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fn, *args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, fn, *args).result()


async def _exchange(
    method: str,
    target: Target,
    headers: list[tuple[str, str]],
    content: bytes | None,
    timeout_s: float,
    max_response_bytes: int,
    truncate: bool,
) -> Response:
    with anyio.fail_after(timeout_s):
        address = await _checked_address(target)
        async with httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_PinnedBackend(address),
            max_connections=1,
            retries=0,
        ) as pool:
            async with pool.stream(
                method, target.url, headers=headers, content=content
            ) as response:
                body = bytearray()
                truncated = False
                async for chunk in response.aiter_stream():
                    room = max_response_bytes - len(body)
                    if len(chunk) > room:
                        if not truncate:
                            raise OutboundError(
                                OutboundRefusal.TOO_LARGE,
                                f"the response body is over {max_response_bytes} bytes",
                            )
                        body += chunk[:room]
                        truncated = True
                        break  # leaving the stream closes the connection unread
                    body += chunk
                return Response(
                    status=response.status,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers
                    ],
                    body=bytes(body),
                    truncated=truncated,
                    address=str(address),
                )


async def _checked_address(target: Target) -> IPAddress:
    literal = _literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = await anyio.to_thread.run_sync(
            _resolve, target.host, target.port, abandon_on_cancel=True
        )
    refused = [a for a in addresses if not address_allowed(a)]
    if refused:
        # One bad answer refuses the host: otherwise a name answering public and private
        # addresses together would choose for us which one we reach.
        raise OutboundError(
            OutboundRefusal.ADDRESS_REFUSED,
            f"{target.host} does not resolve to a public address",
            {"host": target.host},
        )
    return addresses[0]


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OutboundError(OutboundRefusal.UNRESOLVABLE, f"{host} does not resolve") from exc
    # Scope ids (fe80::1%eth0) are dropped: such an address is refused anyway.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise OutboundError(OutboundRefusal.UNRESOLVABLE, f"{host} does not resolve")
    return list(dict.fromkeys(addresses))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the checked address whatever host name the request carries."""

    def __init__(self, address: IPAddress) -> None:
        self._address = str(address)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self._address, port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls use TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@lru_cache(maxsize=8)
def _allowed_networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_v4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and reaches) in its transition forms."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def _public(address: IPAddress) -> bool:
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    ):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in net for net in _REFUSED_V4)
    # An IPv4-compatible (::a.b.c.d) or site-local address is not public either.
    return not (int(address) >> 32 == 0 or address.is_site_local)


def _bad_url(message: str) -> OutboundError:
    return OutboundError(OutboundRefusal.BAD_URL, message)
