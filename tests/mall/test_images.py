"""Product images: kept whole or refused, never cut short."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from gonghui.mall.catalog import IMAGE_MAX_BYTES


def _png(padding: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "#3a7d44").save(buffer, "PNG")
    return buffer.getvalue() + b"\0" * padding


def test_an_image_past_the_size_cap_is_refused_not_kept_cut_short(
    api: httpx.Client, operator: dict[str, str]
) -> None:
    too_big = _png(IMAGE_MAX_BYTES)
    refused = api.post(
        "/api/v1/mall/images", files={"file": ("big.png", too_big, "image/png")}, headers=operator
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "mall.bad_image")
    kept = api.post(
        "/api/v1/mall/images", files={"file": ("small.png", _png(0), "image/png")}, headers=operator
    )
    assert kept.status_code == 201, kept.text
    # Served by the file store (with S3, a redirect to a presigned URL).
    fetched = api.get(kept.json()["url"], follow_redirects=True)
    assert fetched.content == _png(0)
