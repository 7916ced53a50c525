"""Files: sniffed content types, size limits, safe names, signed URLs, thumbnails."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from gonghui import clock
from gonghui.baas import files
from gonghui.baas.models import StoredFile
from gonghui.baas.permissions import Caller
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput
from gonghui.settings import get_settings
from gonghui.storage import get_store
from tests.baas.conftest import AppHandle, audit_rows, make_table, signed_in_user
from tests.fixtures import png_declaring

FILES = "/api/v1/baas/files"


def _png(size: tuple[int, int] = (800, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZIP = b"PK\x05\x06" + b"\x00" * 18
TEXT = "工会 welfare list\n".encode()
BINARY = bytes(range(256)) * 4
# An ISO base media file's first box: what MP4 video starts with.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)


def _upload(
    api: httpx.Client,
    headers: dict[str, str],
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    folder: str | None = None,
) -> httpx.Response:
    return api.post(
        FILES,
        files={"file": (name, data, content_type)},
        data={"folder": folder} if folder is not None else None,
        headers=headers,
    )


def _stored() -> tuple[int, int]:
    """(file rows, stored blobs: files on disk, temporary ones too, or keys in the bucket
    when the tests run with S3)."""
    root = get_settings().data_dir / "files"
    blobs = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    if get_settings().storage_backend == "s3":
        blobs += sum(1 for _ in get_store().keys())
    with unit_of_work(read_only=True) as session:
        rows = int(session.scalar(select(func.count()).select_from(StoredFile)) or 0)
    return rows, blobs


@pytest.mark.parametrize(
    ("name", "data", "claimed", "detected"),
    [
        ("photo.png", _png(), "image/png", "image/png"),
        ("scan.pdf", PDF, "application/pdf", "application/pdf"),
        ("clip.mp4", MP4, "video/mp4", "video/mp4"),
        ("bundle.zip", ZIP, "application/octet-stream", "application/zip"),
        ("名单.txt", TEXT, "text/csv", "text/plain"),
    ],
)
def test_upload_detects_the_type_from_the_bytes(
    api: httpx.Client, app: AppHandle, name: str, data: bytes, claimed: str, detected: str
) -> None:
    resp = _upload(api, app.server, name, data, claimed, folder="activities/2026")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["name"], body["content_type"], body["size"]) == (name, detected, len(data))
    assert body["folder"] == "activities/2026"
    url = api.get(f"{FILES}/{body['id']}/url", headers=app.server).json()["url"]
    # With files in a bucket the app redirects to a presigned URL (tests/baas/test_s3_store.py).
    got = api.get(url, follow_redirects=True)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"].startswith(detected)
    assert got.headers["content-disposition"].startswith("attachment; ")
    if not got.history:  # served by the app itself
        assert got.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "data", "claimed", "status", "code"),
    [
        ("../../etc/passwd", TEXT, "text/plain", 422, "baas.bad_file_name"),
        ("..", TEXT, "text/plain", 422, "baas.bad_file_name"),
        ("a\\..\\b.txt", TEXT, "text/plain", 422, "baas.bad_file_name"),
        ("/etc/passwd", TEXT, "text/plain", 422, "baas.bad_file_name"),
        ("photo.png", TEXT, "image/png", 415, "baas.content_type_mismatch"),
        ("doc.pdf", _png(), "application/pdf", 415, "baas.content_type_mismatch"),
        ("notes.txt", PDF, "text/plain", 415, "baas.content_type_mismatch"),
        ("program.exe", BINARY, "application/octet-stream", 415, "baas.unsupported_content"),
        (
            "fake.png",
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            "image/png",
            415,
            "baas.unsupported_content",
        ),
    ],
)
def test_unsafe_uploads_are_refused_and_nothing_is_stored(
    api: httpx.Client, app: AppHandle, name: str, data: bytes, claimed: str, status: int, code: str
) -> None:
    resp = _upload(api, app.server, name, data, claimed)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert _stored() == (0, 0)


@pytest.mark.parametrize("folder", ["../x", "a/../../b", "/..", "a\\b", "x/\x01"])
def test_folder_traversal_is_refused(api: httpx.Client, app: AppHandle, folder: str) -> None:
    resp = _upload(api, app.server, "a.txt", TEXT, "text/plain", folder=folder)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "folder"
    assert _stored() == (0, 0)


def test_oversized_bodies_are_refused(api: httpx.Client, app: AppHandle) -> None:
    api.patch(
        f"/api/v1/baas/apps/{app.id}",
        json={"settings": {"files_max_bytes": 1000}},
        headers=app.dev.headers,
    )
    assert _upload(api, app.server, "ok.txt", b"a" * 1000, "text/plain").status_code == 201
    resp = _upload(api, app.server, "big.txt", b"a" * 1001, "text/plain")
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "baas.file_too_large"
    # Declared far beyond the limit: refused before the body is read.
    resp = _upload(api, app.server, "huge.txt", b"a" * 200_000, "text/plain")
    assert resp.status_code == 413
    assert _stored() == (1, 1)


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (20_000, 20_000, "the image has more than 40000000 pixels"),
        (8_000, 8_000, "the image is 8000×8000 pixels; at most 40000000 are accepted"),
    ],
)
def test_an_image_declaring_too_many_pixels_is_refused_before_it_is_decoded(
    api: httpx.Client, app: AppHandle, width: int, height: int, message: str
) -> None:
    bomb = png_declaring(width, height, pixels=width * height < 100_000_000)
    resp = _upload(api, app.server, "bomb.png", bomb, "image/png")
    assert resp.status_code == 422
    assert resp.json()["error"] == {
        "code": "baas.image_too_large",
        "message": message,
        "details": [{"field": "file", "code": "baas.image_too_large", "message": message}],
    }
    assert _stored() == (0, 0)


def test_images_get_a_thumbnail(api: httpx.Client, app: AppHandle) -> None:
    body = _upload(api, app.server, "p.png", _png((800, 400)), "image/png").json()
    assert body["has_thumbnail"] is True
    url = api.get(f"{FILES}/{body['id']}/url", params={"thumbnail": "true"}, headers=app.server)
    got = api.get(url.json()["url"], follow_redirects=True)
    assert got.status_code == 200
    with Image.open(io.BytesIO(got.content)) as thumb:
        assert thumb.size == (256, 128)


def test_signed_urls_expire_and_cannot_be_forged(api: httpx.Client, app: AppHandle) -> None:
    body = _upload(api, app.server, "a.txt", TEXT, "text/plain").json()
    signed = api.get(f"{FILES}/{body['id']}/url", params={"ttl_s": 60}, headers=app.server).json()
    url = signed["url"]
    assert api.get(url, follow_redirects=True).status_code == 200
    forged = api.get(url.replace(f"/files/{body['id']}/", "/files/999/"))
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "baas.bad_signature"
    tampered = api.get(url.replace("exp=", "exp=9"))
    assert tampered.status_code == 403
    clock.advance(timedelta(seconds=61))
    expired = api.get(url)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "baas.url_expired"


def test_who_may_see_and_delete_files(api: httpx.Client, app: AppHandle) -> None:
    alice, bob = signed_in_user(), signed_in_user()
    assert _upload(api, app.client, "a.txt", TEXT, "text/plain").status_code == 403
    body = _upload(api, app.as_user(alice), "a.txt", TEXT, "text/plain").json()
    fid = body["id"]
    assert body["created_by"] == alice.user_id
    assert api.get(f"{FILES}/{fid}", headers=app.as_user(bob)).status_code == 404
    assert api.get(f"{FILES}/{fid}/url", headers=app.client).status_code == 404
    assert api.delete(f"{FILES}/{fid}", headers=app.as_user(bob)).status_code == 404
    assert _stored() == (1, 1)
    api.patch(
        f"/api/v1/baas/apps/{app.id}",
        json={"settings": {"files_read": "users"}},
        headers=app.dev.headers,
    )
    assert api.get(f"{FILES}/{fid}", headers=app.as_user(bob)).status_code == 200
    assert api.delete(f"{FILES}/{fid}", headers=app.as_user(bob)).status_code == 404
    assert audit_rows("baas.file.delete") == []
    assert api.delete(f"{FILES}/{fid}", headers=app.as_user(alice)).status_code == 204
    assert _stored() == (0, 0)
    assert audit_rows("baas.file.delete") == [
        (alice.user_id, app.org_id, str(fid), {"app_id": app.id, "key": "client"})
    ]


def test_file_fields_point_to_files_of_the_app(api: httpx.Client, app: AppHandle) -> None:
    make_table(api, app, "docs", [{"name": "attachment", "type": "file"}])
    fid = _upload(api, app.server, "a.txt", TEXT, "text/plain").json()["id"]
    data: dict[str, Any] = {"attachment": fid}
    resp = api.post("/api/v1/baas/data/docs/records", json=data, headers=app.server)
    assert resp.status_code == 201
    assert resp.json()["attachment"] == fid
    resp = api.post("/api/v1/baas/data/docs/records", json={"attachment": 999}, headers=app.server)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "attachment"


@pytest.mark.parametrize(
    "name", ["evil\x00.png", "a\nb.txt", "x\x7f", "", " ", "a/b", "..\\a", "." * 3]
)
def test_control_characters_and_paths_are_not_file_names(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        files.clean_name(name)
    assert caught.value.code == "baas.bad_file_name"


def test_an_upload_whose_transaction_is_refused_leaves_no_blob(app: AppHandle) -> None:
    """A caller that uploads and then refuses in the same transaction (a competition's
    file past the entry's rules) leaves neither a row nor a blob, thumbnail included."""
    caller = Caller(app_id=app.id, org_id=app.org_id, org_path="", server=True, user_id=1)

    def upload_then_refuse() -> None:
        with unit_of_work() as session:
            files.upload(session, caller=caller, stream=io.BytesIO(_png()), name="a.png")
            assert _stored() == (0, 2)  # the picture and its thumbnail, not yet committed
            raise InvalidInput("test.refused", "a later step refused")

    with pytest.raises(InvalidInput):
        upload_then_refuse()
    assert _stored() == (0, 0)
