"""Blob storage for uploaded files (roster files, proof images, app files).

Keys are relative, slash-separated names chosen by the server (never by the client). The
local backend writes under ``data_dir/files`` atomically (temporary file, fsync, rename),
so a crash never leaves a half-written blob under its final name.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

import httpx

from gonghui.settings import get_settings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_CHUNK = 1 << 16
# A readiness ping's deadline (below readiness.TIMEOUT_S).
PING_TIMEOUT_S = 1.5


class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> int: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_bytes(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def ping(self) -> None:
        """Return if the store can take a file now (readiness), else raise; cheap."""
        ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"bad storage key {key!r}")
    return key


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        with self.open(key) as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def ping(self) -> None:
        """The directory exists and takes a file (a full or read-only disk does not)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".ping-")
        os.close(fd)
        os.unlink(tmp)


def sigv4_headers(
    *,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    at: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """``headers`` plus the AWS Signature Version 4 ones (x-amz-date, x-amz-content-sha256,
    Authorization), per https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html"""
    amz_date = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed.update({"host": url.netloc.decode(), "x-amz-date": amz_date})
    signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    query = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in url.params.multi_items()
    )
    canonical = "\n".join(
        [
            method.upper(),
            quote(url.path, safe="/-_.~"),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return {
        **headers,
        **{n: signed[n] for n in ("x-amz-date", "x-amz-content-sha256")},
        "Authorization": authorization,
    }


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Aliyun OSS, Tencent COS), path-style URLs."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = endpoint_url.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.client = httpx.Client(timeout=60, transport=transport)

    def _request(
        self, method: str, key: str, body: bytes = b"", *, timeout_s: float | None = None
    ) -> httpx.Response:
        path = f"/{quote(check_key(key), safe='/')}" if key else ""
        url = httpx.URL(f"{self.base}/{self.bucket}{path}")
        headers = sigv4_headers(
            method=method,
            url=url,
            headers={},
            payload_sha256=hashlib.sha256(body).hexdigest(),
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            at=datetime.now(UTC),
        )
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s
        return self.client.request(
            method, url, content=body or None, headers=headers, timeout=timeout
        )

    def _check(self, response: httpx.Response, *ok: int) -> httpx.Response:
        if response.status_code not in ok:
            raise OSError(f"object store answered {response.status_code}: {response.text[:200]}")
        return response

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        # Objects here are bounded by the upload limit: one signed PUT of the whole body.
        body = b"".join(chunks)
        self._check(self._request("PUT", key, body), 200)
        return len(body)

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._check(self._request("GET", key), 200).content)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        content = self._check(self._request("GET", key), 200).content
        for start in range(0, len(content), _CHUNK):
            yield content[start : start + _CHUNK]

    def delete(self, key: str) -> None:
        self._check(self._request("DELETE", key), 200, 204, 404)

    def exists(self, key: str) -> bool:
        return self._check(self._request("HEAD", key), 200, 404).status_code == 200

    def ping(self) -> None:
        """HeadBucket: the bucket is there and these keys may use it."""
        self._check(self._request("HEAD", "", timeout_s=PING_TIMEOUT_S), 200)


@lru_cache
def _s3_store() -> S3Store:
    settings = get_settings()
    return S3Store(
        endpoint_url=settings.s3_endpoint_url,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        access_key=settings.s3_access_key_id,
        secret_key=settings.s3_secret_access_key,
    )


def get_store() -> BlobStore:
    """The configured store: local disk, or an S3-compatible bucket (one shared client)."""
    settings = get_settings()
    if settings.storage_backend == "s3":
        return _s3_store()
    return LocalStore(settings.data_dir / "files")
