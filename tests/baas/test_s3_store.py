"""The S3-compatible blob store: AWS's published SigV4 example, and files kept in a bucket."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
import pytest

from gonghui import storage
from gonghui.baas import files as baas_files
from gonghui.baas.router import files as file_routes
from gonghui.storage import S3Store, sigv4_headers
from tests.baas.conftest import AppHandle

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_signature_matches_the_aws_documentation_example() -> None:
    # "Example: GET Object" of the S3 SigV4 header-based authentication documentation.
    headers = sigv4_headers(
        method="GET",
        url=httpx.URL("https://examplebucket.s3.amazonaws.com/test.txt"),
        headers={"Range": "bytes=0-9"},
        payload_sha256=EMPTY_SHA256,
        access_key=ACCESS,
        secret_key=SECRET,
        region="us-east-1",
        at=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


class FakeBucket:
    """Just enough of S3: signed PUT, GET, HEAD, DELETE of objects in one bucket."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS}/"):
            return httpx.Response(403)
        body = request.read()
        if request.headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
            return httpx.Response(400)
        bucket, _, key = request.url.path.lstrip("/").partition("/")
        assert bucket == "gonghui"
        if request.method == "PUT":
            self.objects[key] = body
            return httpx.Response(200)
        if key not in self.objects:
            return httpx.Response(404)
        if request.method == "DELETE":
            del self.objects[key]
            return httpx.Response(204)
        return httpx.Response(200, content=b"" if request.method == "HEAD" else self.objects[key])


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> FakeBucket:
    fake = FakeBucket()

    def store() -> S3Store:
        return S3Store(
            endpoint_url="http://s3.test",
            bucket="gonghui",
            region="cn-south-1",
            access_key=ACCESS,
            secret_key=SECRET,
            transport=httpx.MockTransport(fake),
        )

    for module in (storage, baas_files, file_routes):
        monkeypatch.setattr(module, "get_store", store)
    return fake


def test_store_round_trip(bucket: FakeBucket) -> None:
    store = storage.get_store()
    assert store.put("baas/1/abc", [b"hello ", b"world"]) == 11
    assert store.exists("baas/1/abc")
    assert b"".join(store.iter_bytes("baas/1/abc")) == b"hello world"
    assert store.open("baas/1/abc").read() == b"hello world"
    store.delete("baas/1/abc")
    assert not store.exists("baas/1/abc")
    with pytest.raises(ValueError, match="bad storage key"):
        store.put("../escape", [b"x"])


def test_uploaded_files_live_in_the_bucket(
    api: httpx.Client, app: AppHandle, bucket: FakeBucket
) -> None:
    resp = api.post(
        "/api/v1/baas/files",
        files={"file": ("a.txt", b"in the bucket", "text/plain")},
        headers=app.server,
    )
    assert resp.status_code == 201, resp.text
    assert list(bucket.objects.values()) == [b"in the bucket"]
    fid = resp.json()["id"]
    url = api.get(f"/api/v1/baas/files/{fid}/url", headers=app.server).json()["url"]
    assert api.get(url).content == b"in the bucket"
    assert api.delete(f"/api/v1/baas/files/{fid}", headers=app.server).status_code == 204
    assert bucket.objects == {}
