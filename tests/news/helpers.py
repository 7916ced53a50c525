"""Steps the news tests share: an editor writes an item; a second staff member approves it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures import Staff

BODY = "<p>全市职工运动会将于下月举行。</p>"


def write(
    api: httpx.Client, staff: Staff | dict[str, str], org_id: int, **fields: Any
) -> dict[str, Any]:
    headers = staff if isinstance(staff, dict) else staff.headers
    body = {"org_id": org_id, "kind": "news", "title": "运动会通知", "body_html": BODY, **fields}
    resp = api.post("/api/v1/news", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def publish(api: httpx.Client, editor: Staff, reviewer: Staff, org_id: int, **fields: Any) -> int:
    item = write(api, editor, org_id, **fields)
    submitted = api.post(f"/api/v1/news/{item['id']}/submit", headers=editor.headers)
    assert submitted.status_code == 200, submitted.text
    approved = api.post(
        f"/api/v1/news/{item['id']}/review", json={"approve": True}, headers=reviewer.headers
    )
    assert approved.status_code == 200, approved.text
    return int(item["id"])
