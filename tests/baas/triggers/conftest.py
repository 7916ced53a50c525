"""What the trigger tests read back as a developer would: an app's deliveries."""

from __future__ import annotations

import httpx

from tests.baas.conftest import AppHandle


def deliveries(api: httpx.Client, app: AppHandle) -> list[dict[str, object]]:
    resp = api.get(f"/api/v1/baas/apps/{app.id}/deliveries", headers=app.dev.headers)
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, object]] = resp.json()
    return rows
