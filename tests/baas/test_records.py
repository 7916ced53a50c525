"""The records API over HTTP: create, get, update operators, delete, lists, aggregation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui import db
from gonghui.baas.permissions import Caller
from gonghui.baas.records import write
from gonghui.baas.tables import info as infos
from gonghui.errors import Conflict
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
from tests.baas.conftest import AppHandle, audit_rows, make_table, signed_in_user
from tests.writer_hold import queued_together

DATA = "/api/v1/baas/data"


@pytest.fixture
def shop(api: httpx.Client, app: AppHandle) -> AppHandle:
    make_table(
        api,
        app,
        "authors",
        [{"name": "name", "type": "string", "required": True}, {"name": "city", "type": "string"}],
    )
    make_table(
        api,
        app,
        "books",
        [
            {"name": "title", "type": "string", "required": True, "unique": True},
            {"name": "stock", "type": "integer", "default": 0, "rules": {"min": 0, "max": 100}},
            {"name": "price", "type": "number"},
            {"name": "genre", "type": "string", "indexed": True},
            {"name": "tags", "type": "array", "default": []},
            {"name": "author", "type": "reference", "ref": "authors"},
        ],
    )
    authors = [{"name": "Lu Xun", "city": "Shaoxing"}, {"name": "Lao She", "city": "Beijing"}]
    resp = api.post(f"{DATA}/authors/records/bulk", json={"records": authors}, headers=app.server)
    assert resp.status_code == 201
    books = [
        {
            "title": f"book {i}",
            "stock": i,
            "price": 10.0 + i,
            "genre": "novel" if i % 2 else "essay",
            "author": 1 + i % 2,
        }
        for i in range(10)
    ]
    resp = api.post(f"{DATA}/books/records/bulk", json={"records": books}, headers=app.server)
    assert resp.status_code == 201
    assert [r["id"] for r in resp.json()] == list(range(1, 11))
    return app


def _get(api: httpx.Client, app: AppHandle, rid: int) -> dict[str, Any]:
    resp = api.get(f"{DATA}/books/records/{rid}", headers=app.server)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _list(api: httpx.Client, app: AppHandle, **params: Any) -> dict[str, Any]:
    if "where" in params:
        params["where"] = json.dumps(params["where"])
    resp = api.get(f"{DATA}/books/records", params=params, headers=app.server)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_create_applies_defaults_and_get_returns_the_record(
    api: httpx.Client, shop: AppHandle
) -> None:
    resp = api.post(f"{DATA}/books/records", json={"title": "new"}, headers=shop.server)
    assert resp.status_code == 201
    created = resp.json()
    assert created["stock"] == 0
    assert created["tags"] == []
    assert created["author"] is None
    assert _get(api, shop, created["id"]) == created


def test_update_operators(api: httpx.Client, shop: AppHandle) -> None:
    url = f"{DATA}/books/records/3"
    ops = {
        "increment": {"stock": 5},
        "append": {"tags": ["a", "b", "a"]},
        "set": {"price": 1.5},
        "unset": ["genre"],
    }
    resp = api.patch(url, json=ops, headers=shop.server)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["stock"], body["tags"], body["price"], body["genre"]) == (
        7,
        ["a", "b", "a"],
        1.5,
        None,
    )
    resp = api.patch(url, json={"add_unique": {"tags": ["b", "c", "c"]}}, headers=shop.server)
    assert resp.json()["tags"] == ["a", "b", "a", "c"]
    resp = api.patch(url, json={"remove": {"tags": ["a"]}}, headers=shop.server)
    assert resp.json()["tags"] == ["b", "c"]
    assert _get(api, shop, 3)["tags"] == ["b", "c"]


@pytest.mark.parametrize(
    ("ops", "status", "field"),
    [
        ({"increment": {"stock": 200}}, 422, "stock"),
        ({"increment": {"title": 1}}, 422, "title"),
        ({"append": {"stock": [1]}}, 422, "stock"),
        ({"set": {"stock": -1}}, 422, "stock"),
        ({"unset": ["title"]}, 422, "title"),
        ({"set": {"title": "book 4"}}, 409, "title"),
        ({"set": {"nope": 1}}, 422, "set.nope"),
        ({"set": {"stock": 1}, "increment": {"stock": 1}}, 422, "stock"),
        ({"set": {"author": 99}}, 422, "author"),
    ],
)
def test_refused_updates_change_nothing(
    api: httpx.Client, shop: AppHandle, ops: dict[str, Any], status: int, field: str
) -> None:
    before = _get(api, shop, 3)
    resp = api.patch(f"{DATA}/books/records/3", json=ops, headers=shop.server)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["details"][0]["field"] == field
    assert _get(api, shop, 3) == before


def test_concurrent_increments_are_not_lost(api: httpx.Client, shop: AppHandle) -> None:
    def bump(_: int) -> int:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            resp = client.patch(
                f"{DATA}/books/records/1", json={"increment": {"stock": 1}}, headers=shop.server
            )
            return resp.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(bump, range(40)))
    assert statuses == [200] * 40
    assert _get(api, shop, 1)["stock"] == 40


def test_delete(api: httpx.Client, shop: AppHandle) -> None:
    assert api.delete(f"{DATA}/books/records/2", headers=shop.server).status_code == 204
    resp = api.get(f"{DATA}/books/records/2", headers=shop.server)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "baas.record_not_found"
    assert api.delete(f"{DATA}/books/records/2", headers=shop.server).status_code == 404
    assert _list(api, shop, count="true")["count"] == 9


def test_a_deleted_record_leaves_an_audit_row(api: httpx.Client, shop: AppHandle) -> None:
    user = signed_in_user()
    refused = api.delete(f"{DATA}/books/records/2", headers=shop.as_user(user))
    assert refused.status_code == 404
    assert audit_rows("baas.record.delete") == []
    assert api.delete(f"{DATA}/books/records/2", headers=shop.server).status_code == 204
    assert audit_rows("baas.record.delete") == [
        (None, shop.org_id, "books/2", {"app_id": shop.id, "key": "server"})
    ]


def test_filter_sort_select_and_page(api: httpx.Client, shop: AppHandle) -> None:
    page = _list(
        api,
        shop,
        where={"genre": "novel", "stock": {"gte": 3}},
        sort="-price",
        fields="title,stock",
        limit=2,
        count="true",
    )
    assert page["count"] == 4
    assert [(r["title"], r["stock"]) for r in page["items"]] == [("book 9", 9), ("book 7", 7)]
    assert set(page["items"][0]) == {
        "id",
        "created_by",
        "created_at",
        "updated_at",
        "title",
        "stock",
    }
    rest = _list(
        api,
        shop,
        where={"genre": "novel", "stock": {"gte": 3}},
        sort="-price",
        cursor=page["next_cursor"],
    )
    assert [r["title"] for r in rest["items"]] == ["book 5", "book 3"]
    assert rest["next_cursor"] is None
    offset = _list(api, shop, sort="stock", limit=3, offset=4)
    assert [r["stock"] for r in offset["items"]] == [4, 5, 6]


def test_dotted_paths_and_expansion_follow_references(api: httpx.Client, shop: AppHandle) -> None:
    page = _list(api, shop, where={"author.city": "Beijing"}, expand="author", sort="id")
    assert [r["id"] for r in page["items"]] == [2, 4, 6, 8, 10]
    assert page["items"][0]["author"]["name"] == "Lao She"
    resp = api.post(
        f"{DATA}/books/query",
        json={
            "where": {"or": [{"author.name": {"startswith": "Lu"}}, {"stock": 2}]},
            "sort": ["id"],
            "limit": 3,
        },
        headers=shop.server,
    )
    assert [r["id"] for r in resp.json()["items"]] == [1, 3, 5]
    got = api.get(
        f"{DATA}/books/records/1", params={"expand": "author"}, headers=shop.server
    ).json()
    assert got["author"]["city"] == "Shaoxing"


def test_aggregation_grouped_by_fields(api: httpx.Client, shop: AppHandle) -> None:
    resp = api.post(
        f"{DATA}/books/aggregate",
        json={
            "group_by": ["genre"],
            "aggregates": [
                {"op": "count"},
                {"op": "sum", "field": "stock"},
                {"op": "avg", "field": "price"},
                {"op": "min", "field": "title"},
                {"op": "max", "field": "stock"},
            ],
        },
        headers=shop.server,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == [
        {
            "genre": "essay",
            "count": 5,
            "sum_stock": 20.0,
            "avg_price": 14.0,
            "min_title": "book 0",
            "max_stock": 8,
        },
        {
            "genre": "novel",
            "count": 5,
            "sum_stock": 25.0,
            "avg_price": 15.0,
            "min_title": "book 1",
            "max_stock": 9,
        },
    ]
    resp = api.post(
        f"{DATA}/books/aggregate",
        json={"where": {"stock": {"lt": 3}}, "aggregates": [{"op": "sum", "field": "title"}]},
        headers=shop.server,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "aggregates.0"


@pytest.mark.parametrize(
    "body",
    [
        {"aggregates": [{"op": "max", "field": "tags"}]},
        {"aggregates": [{"op": "min", "field": "flag"}]},
        {"aggregates": [{"op": "median", "field": "stock"}]},
        {"aggregates": [{"op": "avg", "field": "genre"}]},
        {"group_by": ["tags"]},
        {"group_by": ["nope"]},
    ],
)
def test_bad_aggregations_are_refused(
    api: httpx.Client, shop: AppHandle, body: dict[str, Any]
) -> None:
    api.post(
        f"/api/v1/baas/apps/{shop.id}/tables/books/fields",
        json={"name": "flag", "type": "boolean"},
        headers=shop.dev.headers,
    )
    resp = api.post(f"{DATA}/books/aggregate", json=body, headers=shop.server)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "baas.invalid_query"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"where": "{not json"}, "where"),
        ({"where": json.dumps({"nope": 1})}, "where.nope"),
        ({"where": json.dumps({"stock": {"gt": "x"}})}, "where.stock.gt"),
        ({"where": json.dumps({"tags": {"eq": 1}})}, "where.tags.eq"),
        ({"sort": "tags"}, "sort"),
        ({"sort": "missing"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"fields": "nope"}, "fields"),
        ({"expand": "title"}, "expand"),
    ],
)
def test_bad_queries_name_the_problem(
    api: httpx.Client, shop: AppHandle, params: dict[str, Any], field: str
) -> None:
    resp = api.get(f"{DATA}/books/records", params=params, headers=shop.server)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "baas.invalid_query"
    assert resp.json()["error"]["details"][0]["field"] == field


# A list's statement is built once per query shape and reused with each request's values
# (gonghui.baas.records.plans): each request must still get its own values' answer, a
# changed table its new columns and rules, and a bad value its error.


@pytest.mark.parametrize(
    ("first", "second", "first_titles", "second_titles"),
    [
        ({"stock": 3}, {"stock": 8}, ["book 3"], ["book 8"]),
        ({"stock": {"gte": 8}}, {"stock": {"gte": 9}}, ["book 8", "book 9"], ["book 9"]),
        ({"stock": {"in": [1, 2]}}, {"stock": {"in": [7, None, 0]}}, ["book 1", "book 2"],
         ["book 0", "book 7"]),
        ({"title": {"startswith": "book 1"}}, {"title": {"startswith": "book 9"}}, ["book 1"],
         ["book 9"]),
        ({"title": {"like": "%k 2"}}, {"title": {"like": "book _"}}, ["book 2"],
         [f"book {i}" for i in range(10)]),
        ({"title": {"contains": "k 4"}}, {"title": {"contains": "ok 5"}}, ["book 4"], ["book 5"]),
        ({"or": [{"stock": 1}, {"genre": "none"}]}, {"or": [{"stock": 6}, {"genre": "essay"}]},
         ["book 1"], ["book 0", "book 2", "book 4", "book 6", "book 8"]),
    ],
)  # fmt: skip
def test_the_same_filter_with_other_values_answers_for_those_values(
    api: httpx.Client,
    shop: AppHandle,
    first: dict[str, Any],
    second: dict[str, Any],
    first_titles: list[str],
    second_titles: list[str],
) -> None:
    for where, titles in ((first, first_titles), (second, second_titles), (first, first_titles)):
        page = _list(api, shop, where=where, sort="stock", count="true")
        assert [r["title"] for r in page["items"]] == titles
        assert page["count"] == len(titles)


def test_a_repeated_filter_with_a_bad_value_names_the_field(
    api: httpx.Client, shop: AppHandle
) -> None:
    assert [r["title"] for r in _list(api, shop, where={"stock": {"lt": 1}})["items"]] == ["book 0"]
    resp = api.get(
        f"{DATA}/books/records",
        params={"where": json.dumps({"stock": {"lt": 2**70}})},
        headers=shop.server,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "baas.invalid_query"
    assert resp.json()["error"]["details"][0]["field"] == "where.stock.lt"


def test_a_list_after_a_field_is_added_returns_and_filters_the_new_field(
    api: httpx.Client, shop: AppHandle
) -> None:
    before = _list(api, shop, where={"genre": "essay"}, limit=1)
    assert "isbn" not in before["items"][0]
    resp = api.post(
        f"/api/v1/baas/apps/{shop.id}/tables/books/fields",
        json={"name": "isbn", "type": "string", "default": "none yet"},
        headers=shop.dev.headers,
    )
    assert resp.status_code == 201, resp.text

    after = _list(api, shop, where={"genre": "essay"}, limit=1)
    assert after["items"][0]["isbn"] == "none yet"
    assert _list(api, shop, where={"isbn": "none yet"}, count="true")["count"] == 10


def test_a_list_after_the_read_rule_changes_follows_the_new_rule(
    api: httpx.Client, tree: Any, app: AppHandle
) -> None:
    make_table(
        api,
        app,
        "notes",
        [{"name": "text", "type": "string"}],
        {"create": ["users"], "read": ["creator"], "update": [], "delete": []},
    )
    writer, reader = signed_in_user(), signed_in_user()
    for who in (writer, reader):
        resp = api.post(
            f"{DATA}/notes/records", json={"text": who.username}, headers=app.as_user(who)
        )
        assert resp.status_code == 201, resp.text

    def texts() -> list[str]:
        resp = api.get(
            f"{DATA}/notes/records",
            params={"where": json.dumps({"text": {"ne": "x"}}), "sort": "id"},
            headers=app.as_user(reader),
        )
        assert resp.status_code == 200, resp.text
        return [r["text"] for r in resp.json()["items"]]

    assert texts() == [reader.username]
    resp = api.put(
        f"/api/v1/baas/apps/{app.id}/tables/notes/permissions",
        json={"permissions": {"create": ["users"], "read": ["users"], "update": [], "delete": []}},
        headers=app.dev.headers,
    )
    assert resp.status_code == 200, resp.text
    assert texts() == [writer.username, reader.username]


@pytest.mark.skipif(not get_settings().is_sqlite, reason="reads in the event loop on SQLite only")
def test_a_list_too_long_for_the_event_loop_is_answered_from_the_thread_pool(
    api: httpx.Client, app: AppHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_table(
        api,
        app,
        "events",
        [{"name": "kind", "type": "string", "indexed": True}, {"name": "n", "type": "integer"}],
    )
    for start in (0, 1000):  # a bulk create takes up to 1,000
        rows = [{"kind": f"k{i % 50}", "n": i} for i in range(start, start + 1000)]
        resp = api.post(f"{DATA}/events/records/bulk", json={"records": rows}, headers=app.server)
        assert resp.status_code == 201, resp.text
    stopped: list[int] = []
    read_within = db.read_within

    def watched(fn: Any, *, steps: int) -> Any:
        try:
            return read_within(fn, steps=steps)
        except db.ReadTooLong:
            stopped.append(steps)
            raise

    monkeypatch.setattr(db, "read_within", watched)
    monkeypatch.setattr(db, "SHORT_READ_STEPS", 5_000)

    def listed(where: dict[str, Any]) -> list[int]:
        resp = api.get(
            f"{DATA}/events/records",
            params={"where": json.dumps(where), "limit": 100, "count": "true"},
            headers=app.server,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["count"] == len(resp.json()["items"])
        return [r["n"] for r in resp.json()["items"]]

    # By the index: a few rows read, in the event loop.
    assert listed({"kind": "k7"}) == list(range(7, 2000, 50))
    assert stopped == []
    # Every row read for one: stopped at the budget, then read whole on the thread pool.
    assert listed({"n": 1999}) == [1999]
    assert stopped == [5_000]


def _server_caller(app: AppHandle) -> Caller:
    with db.unit_of_work(read_only=True) as session:
        org_path = session.scalar(select(Org.path).where(Org.id == app.org_id))
    assert org_path is not None
    return Caller(app_id=app.id, org_id=app.org_id, org_path=org_path, server=True)


def _books(app: AppHandle) -> infos.TableInfo:
    with db.unit_of_work(read_only=True) as session:
        return infos.load(session, app_id=app.id, name="books")


def test_creates_written_in_one_batch_are_each_answered_and_a_taken_value_refused_alone(
    api: httpx.Client, shop: AppHandle
) -> None:
    caller = _server_caller(shop)
    info = _books(shop)
    titles = ["batch 1", "book 3", "batch 2", "batch 2", "batch 3"]  # book 3 exists
    rows = [
        write.prepare_rows(info, [{"title": t}], caller=caller, numbered=False)[0] for t in titles
    ]
    done = queued_together(
        write.insert_one,
        *({"caller": caller, "table": "books", "version": info.version, "row": r} for r in rows),
    )
    refused = [i for i, d in enumerate(done) if isinstance(d, Conflict)]
    assert refused == [1, 3]
    assert {done[i].code for i in refused} == {"baas.unique_violation"}
    created = [d for d in done if isinstance(d, dict)]
    assert [r["title"] for r in created] == ["batch 1", "batch 2", "batch 3"]
    for record in created:  # each answer is its own record, as stored
        assert _get(api, shop, record["id"]) == record
    assert _list(api, shop, count="true", limit=1)["count"] == 13


def test_concurrent_creates_each_get_their_own_record(api: httpx.Client, shop: AppHandle) -> None:
    def create(n: int) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            resp = client.post(
                f"{DATA}/books/records", json={"title": f"c{n}", "stock": n}, headers=shop.server
            )
            return resp.status_code, resp.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(60)))
    assert [status for status, _ in answers] == [201] * 60
    assert [(r["title"], r["stock"]) for _, r in answers] == [(f"c{n}", n) for n in range(60)]
    assert len({r["id"] for _, r in answers}) == 60
    for _, record in answers[::7]:
        assert _get(api, shop, record["id"]) == record


def test_a_row_made_from_an_older_description_of_its_table_is_refused(
    api: httpx.Client, shop: AppHandle
) -> None:
    caller = _server_caller(shop)
    old = _books(shop)
    row = write.prepare_rows(old, [{"title": "late"}], caller=caller, numbered=False)[0]
    resp = api.post(
        f"/api/v1/baas/apps/{shop.id}/tables/books/fields",
        json={"name": "isbn", "type": "string"},
        headers=shop.dev.headers,
    )
    assert resp.status_code == 201, resp.text
    (refused,) = queued_together(
        write.insert_one, {"caller": caller, "table": "books", "version": old.version, "row": row}
    )
    assert isinstance(refused, Conflict)
    assert refused.code == "baas.table_changed"
    assert _list(api, shop, where={"title": "late"})["items"] == []
    # Sent again, it is made from the new description.
    resp = api.post(
        f"{DATA}/books/records", json={"title": "late", "isbn": "978-7"}, headers=shop.server
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["isbn"] == "978-7"
