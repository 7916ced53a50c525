"""The S3 blob store against moto's standalone S3 server: multipart uploads and streamed
downloads in bounded memory, seekable reads, keys, presigned URLs, and the app's download
handlers redirecting to them only after their own checks."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gonghui import clock
from gonghui.storage import MIN_PART_SIZE, LocalStore, S3Store, attachment
from tests.baas.conftest import AppHandle
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY

BLOCK = 1 << 16
PART = MIN_PART_SIZE  # 5 MiB
SIZE = 24 * 1024 * 1024 + 12345  # five parts, the last a short one


def block(i: int) -> bytes:
    return hashlib.shake_256(i.to_bytes(8, "big")).digest(BLOCK)


def blocks(size: int) -> Iterator[bytes]:
    for i in range(-(-size // BLOCK)):
        yield block(i)[: size - i * BLOCK]


def expected(start: int, length: int) -> bytes:
    out = b"".join(block(i) for i in range(start // BLOCK, (start + length) // BLOCK + 1))
    return out[start % BLOCK : start % BLOCK + length]


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def store(s3_endpoint: str, s3_bucket: str) -> S3Store:
    return S3Store(
        endpoint_url=s3_endpoint,
        bucket=s3_bucket,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        part_size=PART,
    )


def test_a_large_object_goes_up_in_parts_and_comes_back_streamed(store: S3Store) -> None:
    whole = hashlib.sha256(b"".join(blocks(SIZE))).hexdigest()
    sizes: list[int] = []
    # One part in memory at a time (plus the join that makes it): well under the object.
    assert peak_bytes(lambda: sizes.append(store.put("big/object", blocks(SIZE)))) < 3 * PART
    assert sizes == [SIZE]
    head = store.client.head_object(Bucket=store.bucket, Key="big/object")
    assert head["ContentLength"] == SIZE
    assert head["ETag"].strip('"').endswith("-5")  # a multipart upload of five parts

    digest = hashlib.sha256()

    def download() -> None:
        for chunk in store.iter_bytes("big/object"):
            digest.update(chunk)

    assert peak_bytes(download) < 2 * 1024 * 1024
    assert digest.hexdigest() == whole


def test_open_reads_ranges_and_seeks_without_loading_the_object(store: S3Store) -> None:
    store.put("big/object", blocks(SIZE))
    whole = hashlib.sha256(b"".join(blocks(SIZE))).hexdigest()

    def read_around() -> None:
        with store.open("big/object") as f:
            assert f.seekable()
            assert f.read(10) == expected(0, 10)
            f.seek(PART - 3)
            assert f.read(10) == expected(PART - 3, 10)
            assert f.seek(-5, 2) == SIZE - 5
            assert f.read() == expected(SIZE - 5, 5)
            assert f.read(1) == b""
            f.seek(0)
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
            assert digest.hexdigest() == whole

    assert peak_bytes(read_around) < 4 * 1024 * 1024


def test_a_failing_source_aborts_the_multipart_upload(store: S3Store) -> None:
    class TooLarge(Exception):
        pass

    def source() -> Iterator[bytes]:
        yield from blocks(2 * PART + 1)  # two parts sent
        raise TooLarge

    with pytest.raises(TooLarge):
        store.put("roster-imports/1/upload", source())
    assert not store.exists("roster-imports/1/upload")
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_small_objects_keys_exists_and_delete(store: S3Store) -> None:
    assert store.put("baas/1/a", [b"hello ", b"world"]) == 11
    assert store.put("baas/1/b", []) == 0
    assert store.put("baas/2/c", [b"x"]) == 1
    assert store.put("roster-imports/3/errors.csv", [b"row\r\n"]) == 5
    assert list(store.keys("baas/1/")) == ["baas/1/a", "baas/1/b"]
    assert sorted(store.keys()) == [
        "baas/1/a",
        "baas/1/b",
        "baas/2/c",
        "roster-imports/3/errors.csv",
    ]
    assert b"".join(store.iter_bytes("baas/1/a")) == b"hello world"
    assert b"".join(store.iter_bytes("baas/1/b")) == b""
    with store.open("baas/1/a") as f:
        assert f.read() == b"hello world"
    assert store.exists("baas/1/a")
    store.delete("baas/1/a")
    store.delete("baas/1/a")  # gone already: no error
    assert not store.exists("baas/1/a")
    with pytest.raises(FileNotFoundError):
        store.open("baas/1/a")
    with pytest.raises(FileNotFoundError):
        list(store.iter_bytes("baas/1/a"))
    for bad in ("../escape", "/abs", "a//b", "a/../b"):
        with pytest.raises(ValueError, match="bad storage key"):
            store.put(bad, [b"x"])


def test_a_presigned_url_serves_the_object_as_a_named_attachment(store: S3Store) -> None:
    store.put("baas/1/report", [b"name,count\r\n", "工会,1\r\n".encode()])
    url = store.download_url(
        "baas/1/report", filename="名单 2026.csv", expires_s=60, content_type="text/csv"
    )
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["60"]
    resp = httpx.get(url)
    assert resp.status_code == 200
    assert resp.content == "name,count\r\n工会,1\r\n".encode()
    assert resp.headers["content-type"] == "text/csv"
    assert resp.headers["content-disposition"] == attachment("名单 2026.csv")
    assert resp.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    # (moto does not check presigned signatures, so tampering is not tested here.)


def test_ping_answers_for_a_reachable_bucket_and_raises_for_a_missing_one(
    store: S3Store, s3_endpoint: str
) -> None:
    store.ping()
    missing = S3Store(
        endpoint_url=s3_endpoint,
        bucket="no-such-bucket-for-ping",
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    with pytest.raises(Exception, match="404|Not Found|NoSuchBucket"):
        missing.ping()


def test_the_local_store_lists_keys_and_offers_no_url(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "files")
    assert list(store.keys()) == []
    store.put("b/2", [b"2"])
    store.put("a/1", [b"1"])
    store.put("a/0/x", [b"0"])
    (tmp_path / "files" / "a" / ".upload-partial").write_bytes(b"half")  # not a key
    assert sorted(store.keys()) == ["a/0/x", "a/1", "b/2"]
    assert sorted(store.keys("a/")) == ["a/0/x", "a/1"]
    assert store.download_url("a/1", filename="x", expires_s=60) is None


def test_app_file_downloads_redirect_to_the_bucket_after_the_signature_check(
    api: httpx.Client, app: AppHandle, s3_backend: S3Store
) -> None:
    resp = api.post(
        "/api/v1/baas/files",
        files={"file": ("说明.txt", "在桶里".encode(), "text/plain")},
        headers=app.server,
    )
    assert resp.status_code == 201, resp.text
    fid = resp.json()["id"]
    [key] = s3_backend.keys("baas/")
    assert b"".join(s3_backend.iter_bytes(key)) == "在桶里".encode()
    url = api.get(f"/api/v1/baas/files/{fid}/url", headers=app.server).json()["url"]

    redirect = api.get(url)
    assert redirect.status_code == 302
    assert redirect.headers["cache-control"] == "no-store"
    target = redirect.headers["location"]
    assert target.startswith(f"{s3_backend.client.meta.endpoint_url}/{s3_backend.bucket}/")
    assert parse_qs(urlsplit(target).query)["X-Amz-Expires"] == ["60"]
    got = httpx.get(target)
    assert got.status_code == 200
    assert got.content == "在桶里".encode()
    assert got.headers["content-disposition"] == attachment("说明.txt")
    assert got.headers["content-type"] == "text/plain"

    # No redirect for a link whose signature or expiry fails: the app's checks come first.
    tampered = api.get(url.replace("variant=original", "variant=thumbnail"))
    assert tampered.status_code == 403
    assert "location" not in tampered.headers
    clock.advance(timedelta(days=1))
    expired = api.get(url)
    assert expired.status_code == 410
    assert "location" not in expired.headers

    assert api.delete(f"/api/v1/baas/files/{fid}", headers=app.server).status_code == 204
    assert list(s3_backend.keys()) == []
