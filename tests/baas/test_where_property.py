"""The query language against a plain-Python reference, and fuzzed `where` input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from gonghui.baas import apps
from gonghui.baas.permissions import Caller
from gonghui.baas.records import query, write
from gonghui.baas.schemas import FieldSpec
from gonghui.baas.tables import info as infos
from gonghui.baas.tables import schema
from gonghui.baas.tables.types import FieldType
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput
from gonghui.tenancy import SYSTEM
from tests.baas import reference
from tests.fixtures import Tree

TEXT = st.text(alphabet="aAbB%_\\é中 '*?[", max_size=5)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": TEXT,
    "n": st.integers(min_value=-5, max_value=5) | st.sampled_from([-(2**63), 2**63 - 1]),
    "x": st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64).map(lambda f: f + 0.0),
    "b": st.booleans(),
    "d": st.dates().map(lambda d: d.isoformat()),
    "owner": st.sampled_from([1, 2, 3]),
}
PATHS: dict[str, str] = {
    "s": "s",
    "n": "n",
    "x": "x",
    "b": "b",
    "d": "d",
    "owner.name": "s",
    "owner.rank": "n",
}
OWNERS = {
    1: {"name": "Li", "rank": 1},
    2: {"name": "li%", "rank": None},
    3: {"name": None, "rank": 3},
}

records_strategy = st.lists(
    st.fixed_dictionaries({}, optional={k: v | st.none() for k, v in FIELD_VALUES.items()}),
    max_size=12,
)


@st.composite
def leaf(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(PATHS)))
    kind = PATHS[path]
    values = FIELD_VALUES[kind]
    ops = ["eq", "ne", "in", "nin", "exists", "isnull"]
    if kind != "b":
        ops += ["lt", "lte", "gt", "gte"]
    if kind == "s":
        ops += ["contains", "startswith", "like"]
    op = draw(st.sampled_from(ops))
    if op in ("exists", "isnull"):
        arg: Any = draw(st.booleans())
    elif op in ("in", "nin"):
        arg = draw(st.lists(values | st.none(), max_size=3))
    elif op in ("eq", "ne"):
        arg = draw(values | st.none())
    else:
        arg = draw(values)
    if op == "eq" and draw(st.booleans()):
        return {path: arg}
    return {path: {op: arg}}


where_strategy = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"and": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"or": c}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=6,
)


@pytest.fixture
def things(tree: Tree) -> Caller:
    """Tables ``owners`` (3 rows) and ``things`` referencing them; a server-key caller."""
    with unit_of_work() as session:
        app, _ = apps.create_app(session, actor=SYSTEM, org_id=tree.city_a, name="p", settings={})
        schema.create_table(
            session,
            actor=SYSTEM,
            app_id=app.id,
            name="owners",
            fields=[
                FieldSpec(name="name", type=FieldType.STRING),
                FieldSpec(name="rank", type=FieldType.INTEGER),
            ],
            permissions={},
        )
        schema.create_table(
            session,
            actor=SYSTEM,
            app_id=app.id,
            name="things",
            fields=[
                FieldSpec(name="s", type=FieldType.STRING, indexed=True),
                FieldSpec(name="n", type=FieldType.INTEGER),
                FieldSpec(name="x", type=FieldType.NUMBER),
                FieldSpec(name="b", type=FieldType.BOOLEAN),
                FieldSpec(name="d", type=FieldType.DATE),
                FieldSpec(name="owner", type=FieldType.REFERENCE, ref="owners"),
            ],
            permissions={},
        )
        caller = Caller(app_id=app.id, org_id=tree.city_a, org_path="", server=True)
        write.create_records(
            session, caller=caller, table="owners", items=[OWNERS[i] for i in (1, 2, 3)]
        )
    return caller


def _load(caller: Caller, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with unit_of_work() as session:
        table = infos.load(session, app_id=caller.app_id, name="things")
        session.execute(delete(table.sql))
        if not records:
            return []
        return write.create_records(session, caller=caller, table="things", items=records)


def _query_all(caller: Caller, **kwargs: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    with unit_of_work(read_only=True) as session:
        while True:
            page = query.list_records(
                session, caller=caller, table="things", cursor=cursor, **kwargs
            )
            ids += [r["id"] for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return ids


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(records=records_strategy, where=where_strategy)
def test_where_equals_the_python_reference(
    things: Caller, records: list[dict[str, Any]], where: dict[str, Any]
) -> None:
    stored = _load(things, records)
    refs = {"owner": OWNERS}
    expected = [r["id"] for r in stored if reference.matches(r, where, refs)]
    with unit_of_work(read_only=True) as session:
        page = query.list_records(
            session, caller=things, table="things", where=where, limit=1000, count=True
        )
    assert [r["id"] for r in page.items] == expected
    assert page.count == len(expected)


@SETTINGS
@given(
    records=records_strategy,
    key=st.sampled_from(["s", "n", "x", "d", "b", "id"]),
    descending=st.booleans(),
    limit=st.integers(min_value=1, max_value=4),
)
def test_sort_and_cursor_paging_equal_python_sorting(
    things: Caller, records: list[dict[str, Any]], key: str, descending: bool, limit: int
) -> None:
    stored = sorted(_load(things, records), key=lambda r: r["id"])
    # Missing values first ascending, last descending; ties by id ascending (Python's
    # sort keeps the id order of ties even with reverse=True).
    expected = sorted(
        stored,
        key=lambda r: (r[key] is not None, r[key] if r[key] is not None else 0),
        reverse=descending,
    )
    sort = [f"-{key}" if descending else key]
    assert _query_all(things, sort=sort, limit=limit) == [r["id"] for r in expected]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["s", "n", "and", "or", "not", "owner.name", "eq", "like", "in", "x.y"])
            | st.text(max_size=6),
            children,
            max_size=3,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(where=json_values)
def test_arbitrary_where_json_is_answered_or_refused_cleanly(things: Caller, where: Any) -> None:
    refused: InvalidInput | None = None
    try:
        with unit_of_work(read_only=True) as session:
            query.list_records(session, caller=things, table="things", where=where, limit=5)
    except InvalidInput as exc:
        refused = exc
    if refused is not None:
        assert refused.code == "baas.invalid_query"
        assert refused.details[0]["field"].startswith("where")


NASTY = [
    {"s": "'; DROP TABLE things; --"},
    {"s; DROP TABLE things": 1},
    {"s": {"like": "%' OR 1=1 --"}},
    {"owner.name": {"in": ["x') OR ('1'='1"]}},
    {"n": {"gt": "1 OR 1=1"}},
    {"s": {"$where": "1"}},
    {"or": []},
    {"not": [1]},
    {"n": {"in": list(range(600))}},
    {"owner.owner.owner.owner.s": 1},
    {"s": "\x00"},
    {"n": 2**70},
    "SELECT 1",
    [1, 2],
]


def test_injection_attempts_are_refused_or_harmless(api: httpx.Client, things: Caller) -> None:
    with unit_of_work() as session:
        key = apps.rotate_key(session, actor=SYSTEM, app_id=things.app_id, kind=apps.KeyKind.SERVER)
    _load(things, [{"s": "a"}, {"s": "b"}])
    headers = {"X-Gonghui-App-Key": key}
    for where in NASTY:
        resp = api.get(
            "/api/v1/baas/data/things/records",
            params={"where": json.dumps(where)},
            headers=headers,
        )
        assert resp.status_code in (200, 422), (where, resp.text)
        text = resp.text.lower()
        for leak in ("select ", "sqlite", "psycopg", "syntax", "traceback"):
            assert leak not in text, (where, resp.text)
        if resp.status_code == 200:
            assert resp.json()["items"] == []
    resp = api.get("/api/v1/baas/data/things/records", headers=headers)
    assert [r["s"] for r in resp.json()["items"]] == ["a", "b"]
