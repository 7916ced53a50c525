"""Every operation of the OpenAPI document, fuzzed: no input answers a server error.

Schemathesis generates requests from the app's own OpenAPI document (values that fit the
schema and values that do not) and sends them to the real test server with each of three
credentials: a province admin (staff), a verified member and an app's server key. Each
operation starts from a fresh database holding an org tree, those three callers, an app with
a table and an activity, and path ids are often drawn from 1 and 2 so that they name real rows.

Examples are bounded and derandomized so that a run is reproducible and fits the CI budget.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from gonghui.app import create_app
from tests.activities.conftest import create_activity, create_member
from tests.fixtures import StaffFactory, Tree

_CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 14,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": 12, "deterministic": True, "database": "none"},
        "phases": {
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=_CONFIG)

Path = tuple[str | int, ...]

# Path parameter values that name a seeded row (see ``credentials``).
_SEEDED: dict[Any, list[Any]] = {int: [1, 2], "name": ["notes"], "table": ["notes"]}


def _string_paths(value: Any, path: Path = ()) -> list[Path]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _string_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _string_paths(item, (*path, i))]
    return []


def _with_lone_surrogate(body: Any, path: Path) -> Any:
    if not path:
        return f"{body}\ud800"
    copy = dict(body) if isinstance(body, dict) else list(body)
    copy[path[0]] = _with_lone_surrogate(body[path[0]], path[1:])  # type: ignore[index]
    return copy


def _takes_json(context: Any) -> bool:
    raw = context.operation.definition.raw if context.operation else {}
    return "application/json" in raw.get("requestBody", {}).get("content", {})


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Also send a JSON body with one of its strings ending in a lone surrogate.

    Hypothesis never generates surrogates, yet JSON's ``"\\ud800"`` escape carries one and
    no database driver can encode it.
    """
    paths = _string_paths(body) if _takes_json(context) else []
    if not paths:
        return st.just(body)
    tainted = st.sampled_from(paths).map(lambda path: _with_lone_surrogate(body, path))
    return st.one_of(st.just(body), tainted)


@schema.hook
def flatmap_path_parameters(
    _context: Any, parameters: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    """Often aim at the seeded rows (ids restart at 1 with every fresh database)."""
    if not parameters:
        return st.just(parameters)
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), st.sampled_from(_SEEDED[int]))
            if isinstance(value, int)
            else st.one_of(st.just(value), st.sampled_from(_SEEDED.get(name, [value])))
            for name, value in parameters.items()
        }
    )


@pytest.fixture
def credentials(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> list[dict[str, str]]:
    """A province admin, a verified member and an app key, with something to work on."""
    staff = make_staff(tree.province)
    member = create_member(tree.grassroots_a1x)
    create_activity(api, staff.headers, tree.province)
    resp = api.post(
        "/api/v1/baas/apps",
        json={"org_id": tree.province, "name": "fuzz", "settings": {}},
        headers=staff.headers,
    )
    assert resp.status_code == 201, resp.text
    app_key = {"X-Gonghui-App-Key": resp.json()["server_key"]}
    resp = api.post(
        f"/api/v1/baas/apps/{resp.json()['id']}/tables",
        json={"name": "notes", "fields": [{"name": "title", "type": "text"}], "permissions": {}},
        headers=staff.headers,
    )
    assert resp.status_code == 201, resp.text
    return [staff.headers, member.headers, app_key]


@schema.parametrize()
def test_no_input_answers_a_server_error(
    case: Any, server: str, credentials: list[dict[str, str]]
) -> None:
    for headers in credentials:
        case.call_and_validate(
            base_url=server, headers=headers, checks=[not_a_server_error], timeout=30
        )


def _unbounded(spec: dict[str, Any], node: Any, where: str, seen: frozenset[str]) -> list[str]:
    """The places under ``node`` (a JSON schema of the document) where an integer has no
    upper bound."""
    if not isinstance(node, dict):
        return []
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(spec, spec["components"]["schemas"][name], where, seen | {name})
    found = []
    if node.get("type") == "integer" and "maximum" not in node and "exclusiveMaximum" not in node:
        found.append(where)
    for key, child in node.get("properties", {}).items():
        found += _unbounded(spec, child, f"{where}.{key}", seen)
    for key in ("items", "additionalProperties"):
        found += _unbounded(spec, node.get(key), f"{where}[]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for child in node.get(key, []):
            found += _unbounded(spec, child, where, seen)
    return found


def test_every_integer_a_request_carries_is_bounded() -> None:
    """A number past a 64-bit column reaches the driver as an overflow, a 500 (the fuzzer
    found one in the broadcasts' ``org_id``): every integer parameter and body field is
    bounded, as ``gonghui.types``' aliases bound them, and refused at the edge as a 422."""
    spec = create_app().openapi()
    unbounded = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                unbounded += _unbounded(
                    spec, parameter.get("schema"), f"{where} {parameter['name']}", frozenset()
                )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(spec, content.get("schema"), f"{where} body", frozenset())
    assert unbounded == []


def test_an_org_id_past_a_database_column_is_refused_as_input(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.province)
    body = {"title": "通知", "body": "内容", "org_id": 2**128, "channels": ["inbox"]}
    resp = api.post("/api/v1/notifications/broadcasts", json=body, headers=staff.headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "request.invalid")
