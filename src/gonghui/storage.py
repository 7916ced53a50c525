"""Blob storage for uploaded files (roster files, proof images, app files).

Keys are relative, slash-separated names chosen by the server (never by the client). The
local backend writes under ``data_dir/files`` atomically (temporary file, fsync, rename),
so a crash never leaves a half-written blob under its final name. The S3 backend talks to
any S3-compatible bucket through boto3: uploads go up in parts of ``part_size`` bytes (one
part in memory at a time, the upload aborted on any error so nothing half-written is left
under the key), downloads stream, ``open`` reads ranges on demand, and downloads can be
handed to the browser as presigned URLs.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.responses import RedirectResponse, Response, StreamingResponse

from gonghui.settings import get_settings

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_CHUNK = 1 << 16
# S3's smallest part (except the last) is 5 MiB; 8 MiB is the AWS CLI's default.
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
# How long a presigned URL a handler redirects a browser to stays valid: long enough to
# follow the redirect, too short to be worth passing around.
DOWNLOAD_URL_TTL_S = 60
# A readiness ping's deadline (below readiness.TIMEOUT_S).
PING_TIMEOUT_S = 1.5


class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> int: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_bytes(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def keys(self, prefix: str = "") -> Iterator[str]: ...
    def download_url(
        self, key: str, *, filename: str, expires_s: int, content_type: str | None = None
    ) -> str | None:
        """A URL the browser may fetch the blob from for ``expires_s`` seconds, as an
        attachment named ``filename``; None when the store cannot offer one (local disk:
        the app serves the bytes itself)."""
        ...

    def ping(self) -> None:
        """Return if the store can take a file now (readiness), else raise; cheap."""
        ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"bad storage key {key!r}")
    return key


def attachment(filename: str) -> str:
    """A Content-Disposition value for a download named ``filename`` (RFC 6266/5987)."""
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


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

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with ``prefix``, directory by directory (temporary
        files of uploads in progress are not keys)."""
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            base = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                key = (base / name).as_posix()
                if key.startswith(prefix) and _KEY.match(key):
                    yield key

    def download_url(
        self, key: str, *, filename: str, expires_s: int, content_type: str | None = None
    ) -> str | None:
        return None

    def ping(self) -> None:
        """The directory exists and takes a file (a full or read-only disk does not)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".ping-")
        os.close(fd)
        os.unlink(tmp)


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or error.get("Code") in ("404", "NoSuchKey", "NotFound")


class _RangeReader(io.RawIOBase):
    """A seekable read-only view of one object: reads stream from the current position
    (one ranged GET, kept open while reads go forward), a seek drops the stream and the
    next read opens another range. Nothing beyond the caller's buffer is held."""

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._size = size
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._pos:
            self._drop()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        if self._body is None:
            got = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-"
            )
            self._body = got["Body"]
        data = self._body.read(len(view))
        if not data:
            raise OSError(f"object {self._key!r} ended at {self._pos} of {self._size} bytes")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop()
        super().close()


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Aliyun OSS, Tencent COS), path-style URLs.

    ``public_endpoint_url`` is where browsers reach the bucket when that differs from the
    address the servers use (presigned URLs are signed for their host)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        public_endpoint_url: str = "",
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.part_size = part_size
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            # Checksums only where S3 requires them: several S3-compatible stores refuse
            # the flexible-checksum trailers botocore sends by default since 1.36.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        credentials = {
            "aws_access_key_id": access_key or None,
            "aws_secret_access_key": secret_key or None,
        }
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            config=config,
            **credentials,
        )
        if public_endpoint_url and public_endpoint_url != endpoint_url:
            # Presigning is local computation: this client never sends a request.
            self.presigner: Any = session.client(
                "s3",
                endpoint_url=public_endpoint_url,
                region_name=region,
                config=config,
                **credentials,
            )
        else:
            self.presigner = self.client
        # Readiness asks with a deadline of its own and no retries.
        self.pinger: Any = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            config=config.merge(
                Config(
                    connect_timeout=PING_TIMEOUT_S,
                    read_timeout=PING_TIMEOUT_S,
                    retries={"mode": "standard", "total_max_attempts": 1},
                )
            ),
            **credentials,
        )

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` under ``key``: one PUT when it fits in a part, else a multipart
        upload, one part buffered at a time. An exception from ``chunks`` (an upload over
        its limit) or from the store aborts the upload and propagates."""
        check_key(key)
        parts: list[dict[str, Any]] = []
        upload_id: str | None = None
        pending: list[bytes] = []
        pending_size = 0
        size = 0

        def send_part() -> None:
            nonlocal upload_id, pending_size
            if upload_id is None:
                started = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
                upload_id = cast(str, started["UploadId"])
            body = b"".join(pending)
            pending.clear()
            pending_size = 0
            number = len(parts) + 1
            sent = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append({"ETag": sent["ETag"], "PartNumber": number})

        try:
            for chunk in chunks:
                if not chunk:
                    continue
                pending.append(chunk)
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size >= self.part_size:
                    send_part()
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"".join(pending))
                return size
            if pending:
                send_part()
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException:
            if upload_id is not None:
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                except Exception:  # the bucket's lifecycle rule removes it later
                    pass
            raise

    def _size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        return int(head["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        """A seekable, buffered reader of the object (ranged GETs, never the whole object
        in memory)."""
        raw = _RangeReader(self.client, self.bucket, key, self._size(key))
        return io.BufferedReader(raw, buffer_size=_CHUNK)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        body = got["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def exists(self, key: str) -> bool:
        try:
            self._size(key)
        except FileNotFoundError:
            return False
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield cast(str, item["Key"])

    def download_url(
        self, key: str, *, filename: str, expires_s: int, content_type: str | None = None
    ) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "ResponseContentDisposition": attachment(filename),
            "ResponseCacheControl": "private, no-store",
        }
        if content_type:
            params["ResponseContentType"] = content_type
        return cast(
            str,
            self.presigner.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, expires_s)
            ),
        )

    def ping(self) -> None:
        """HeadBucket: the bucket is there and these keys may use it."""
        self.pinger.head_bucket(Bucket=self.bucket)


@lru_cache(maxsize=4)
def _s3_store(
    endpoint_url: str,
    bucket: str,
    region: str,
    access_key: str,
    secret_key: str,
    public_endpoint_url: str,
) -> S3Store:
    return S3Store(
        endpoint_url=endpoint_url,
        bucket=bucket,
        region=region,
        access_key=access_key,
        secret_key=secret_key,
        public_endpoint_url=public_endpoint_url,
    )


def get_store() -> BlobStore:
    """The configured store: local disk, or an S3-compatible bucket (one shared client per
    configuration; boto3 clients are thread-safe)."""
    settings = get_settings()
    if settings.storage_backend == "s3":
        return _s3_store(
            settings.s3_endpoint_url,
            settings.s3_bucket,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
            settings.s3_public_endpoint_url,
        )
    return LocalStore(settings.data_dir / "files")


def download_response(
    key: str,
    *,
    filename: str,
    content_type: str,
    cache_control: str = "private, no-store",
) -> Response:
    """Hand a stored blob to a browser, as an attachment named ``filename``. The caller has
    already decided the request may have it. A store that offers presigned URLs gets a
    redirect to one valid for DOWNLOAD_URL_TTL_S; otherwise the bytes stream from here."""
    store = get_store()
    url = store.download_url(
        key, filename=filename, expires_s=DOWNLOAD_URL_TTL_S, content_type=content_type
    )
    if url is not None:
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        store.iter_bytes(key),
        media_type=content_type,
        headers={
            "Content-Disposition": attachment(filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": cache_control,
        },
    )
