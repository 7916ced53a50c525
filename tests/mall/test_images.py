"""Product images: kept whole or refused, never cut short."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from gonghui.mall.catalog import IMAGE_MAX_BYTES
from tests.activities.conftest import MemberFactory
from tests.fixtures import Tree


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


def test_a_product_tells_members_where_to_fetch_its_images(
    api: httpx.Client, operator: dict[str, str], tree: Tree, make_member: MemberFactory
) -> None:
    kept = api.post(
        "/api/v1/mall/images", files={"file": ("tea.png", _png(0), "image/png")}, headers=operator
    )
    assert kept.status_code == 201, kept.text
    body = {
        "org_id": tree.province,
        "name": "高山茶叶",
        "origin_region": "贵州省黔东南州",
        "images": [kept.json()["key"]],
        "skus": [{"name": "500克", "price_cents": 5000, "stock": 10}],
        "on_shelf": True,
    }
    created = api.post("/api/v1/mall/products", json=body, headers=operator)
    assert created.status_code == 201, created.text
    member = make_member(tree.district_a1)
    (shown,) = api.get("/api/v1/mall/shelf", headers=member.headers).json()
    assert (shown["images"], shown["image_urls"]) == ([kept.json()["key"]], [kept.json()["url"]])
    fetched = api.get(shown["image_urls"][0], follow_redirects=True)
    assert fetched.content == _png(0)
