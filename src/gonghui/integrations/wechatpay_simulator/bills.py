"""Bill files as WeChat Pay hands them out: an API answers where to download a file and
its SHA1 (a stock's coupons used, a day's trades), and the file itself comes from
``GET /v3/billdownload/file?token=...``, signed like any request and answered unsigned."""

from __future__ import annotations

import hashlib
import secrets
import threading

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gonghui.integrations.wechatpay_simulator.protocol import (
    PREFIX,
    Refusal,
    SignedCall,
    SimulatorRoute,
)

router = APIRouter(route_class=SimulatorRoute)

_lock = threading.Lock()
_files: dict[str, bytes] = {}


def reset() -> None:
    with _lock:
        _files.clear()


def yuan(cents: int) -> str:
    """Cents as WeChat Pay's bills write money: yuan with two decimals."""
    return f"{cents // 100}.{cents % 100:02d}"


def bill(header: str, rows: list[list[str]], summary: tuple[str, list[str]]) -> bytes:
    """A bill file: the header, each record's values led by a backtick, then the summary's
    names and values."""
    lines = [header]
    lines += [",".join(f"`{value}" for value in row) for row in rows]
    lines += [summary[0], ",".join(f"`{value}" for value in summary[1])]
    return ("\r\n".join(lines) + "\r\n").encode()


def offer(request: Request, content: bytes, url_field: str) -> dict[str, str]:
    """Keep ``content`` for download; the answer that points to it (``url_field`` is
    ``url`` or ``download_url``, as the API names it)."""
    token = secrets.token_urlsafe(24)
    with _lock:
        _files[token] = content
    base = str(request.base_url).rstrip("/") + PREFIX
    return {
        url_field: f"{base}/v3/billdownload/file?token={token}",
        "hash_type": "SHA1",
        "hash_value": hashlib.sha1(content).hexdigest(),
    }


@router.get("/v3/billdownload/file")
async def download(call: SignedCall, token: str = "") -> Response:
    with _lock:
        content = _files.get(token)
    if content is None:
        raise Refusal(404, "RESOURCE_NOT_EXISTS", "文件不存在或已过期")
    return Response(content, media_type="application/octet-stream")
