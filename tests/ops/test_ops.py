from __future__ import annotations

import httpx

from tests.ops.helpers import checks


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": checks()}


def test_request_id_is_echoed_or_generated(api: httpx.Client) -> None:
    given = api.get("/healthz", headers={"X-Request-ID": "client-req-12345"})
    assert given.headers["x-request-id"] == "client-req-12345"
    generated = api.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


def test_unknown_route_and_wrong_method_use_the_envelope(api: httpx.Client) -> None:
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "request.not_found", "message": "Not Found", "details": None}
    }
    wrong = api.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "request.method_not_allowed"


def test_malformed_json_body_is_a_validation_error(api: httpx.Client) -> None:
    resp = api.post(
        "/api/v1/auth/password", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "request.invalid"


def test_openapi_document_lists_the_api(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["info"]["title"] == "gonghui"
    assert "/api/v1/orgs" in spec["paths"]
    assert "/api/v1/audit" in spec["paths"]


def test_openapi_document_declares_the_app_key_as_the_app_calls_sign_in(
    api: httpx.Client,
) -> None:
    """Every app call names the ``appKey`` scheme (``X-Gonghui-App-Key``) as its sign-in,
    declared once, rather than repeating the key as a header parameter of each call."""
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["appKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Gonghui-App-Key",
        "description": "An app's client key (members' apps) or server key (its servers).",
    }
    app_calls = [
        operation
        for path, item in spec["paths"].items()
        if path.startswith("/api/v1/baas/data/")
        for operation in item.values()
    ]
    assert len(app_calls) >= 8
    for operation in app_calls:
        assert operation["security"] == [{"appKey": []}]
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        assert "x-gonghui-app-key" not in names
