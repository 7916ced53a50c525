"""What a server process holds of apps (keys), tables (definitions) and functions
(definitions) follows a change made by any other process through the change feed within
about a second, not when a cache entry expires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Executable, insert, update

from gonghui import clock, invalidation
from gonghui.baas.apps import KEY_TOPIC, KeyKind, hash_key, new_key
from gonghui.baas.errors import BaasError
from gonghui.baas.functions.models import Function
from gonghui.baas.functions.service import DEFINITION_TOPIC, definition_key
from gonghui.baas.models import App, DataTable
from gonghui.baas.tables import info as infos
from gonghui.db import unit_of_work
from gonghui.invalidation import CacheChange
from tests.baas.conftest import AppHandle, make_table
from tests.baas.devapp import deploy, invoke
from tests.serverproc import ServerProcess, settles

# Other processes are simulated by writing the feed's table alone (with Redis: as if their
# publish was lost), so the table is read as often as without Redis.
pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("polled_feed")]

NOTES = "/api/v1/baas/data/notes/records"
GREET = "def handler(event, context):\n    return context.env['greeting']\n"


def _committed_elsewhere(statement: Executable, *, topic: str | None, key: str) -> None:
    """A change as another server process commits it: in the database only (with its feed
    row, unless ``topic`` is None: a change behind every process's back)."""
    with unit_of_work() as session:
        session.execute(statement)
        if topic is not None:
            session.execute(
                insert(CacheChange).values(topic=topic, key=key, committed_at=clock.now())
            )


def _feed_due() -> None:
    clock.advance(timedelta(seconds=invalidation.FEED_MAX_LAG_S + 0.5))


def _notes(api: httpx.Client, app: AppHandle) -> dict[str, Any]:
    table = make_table(
        api,
        app,
        "notes",
        [{"name": "text", "type": "string"}],
        {"read": ["public"], "create": ["public"]},
    )
    assert _note(api, app) == 201  # key and table now held
    return table


def _note(client: httpx.Client, app: AppHandle) -> int:
    return client.post(NOTES, json={"text": "hi"}, headers=app.client).status_code


def _greeting(api: httpx.Client, app: AppHandle) -> Any:
    resp = invoke(api, app, "greet", {})
    assert resp.status_code == 200, resp.text
    return resp.json()["result"]


def _rotated(app: AppHandle) -> Executable:
    return (
        update(App)
        .where(App.id == app.id)
        .values(client_key_hash=hash_key(new_key(KeyKind.CLIENT)))
    )


def _closed(table: dict[str, Any]) -> Executable:
    return (
        update(DataTable)
        .where(DataTable.id == table["id"])
        .values(permissions={"read": ["public"], "create": []})
    )


def _regreeted(app: AppHandle) -> Executable:
    return (
        update(Function)
        .where(Function.app_id == app.id, Function.name == "greet")
        .values(env={"greeting": "再见"})
    )


def test_a_key_rotated_by_another_process_is_refused_here_once_the_feed_is_read(
    api: httpx.Client, app: AppHandle
) -> None:
    _notes(api, app)
    _committed_elsewhere(_rotated(app), topic=KEY_TOPIC, key=str(app.id))
    _feed_due()
    resp = api.get(NOTES, headers=app.client)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == BaasError.KEY_INVALID


def test_a_table_closed_by_another_process_is_closed_here_once_the_feed_is_read(
    api: httpx.Client, app: AppHandle
) -> None:
    table = _notes(api, app)
    _committed_elsewhere(
        _closed(table), topic=infos.TOPIC, key=infos.topic_key(app.id, table["id"])
    )
    _feed_due()
    resp = api.post(NOTES, json={"text": "hi"}, headers=app.client)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == BaasError.FORBIDDEN


def test_a_function_changed_by_another_process_runs_changed_here_once_the_feed_is_read(
    api: httpx.Client, app: AppHandle
) -> None:
    assert deploy(api, app, "greet", GREET, env={"greeting": "你好"}).status_code == 201
    assert _greeting(api, app) == "你好"
    _committed_elsewhere(
        _regreeted(app), topic=DEFINITION_TOPIC, key=definition_key(app.id, "greet")
    )
    _feed_due()
    assert _greeting(api, app) == "再见"


def test_forget_all_makes_every_cache_read_the_database_again(
    api: httpx.Client, app: AppHandle
) -> None:
    table = _notes(api, app)
    assert deploy(api, app, "greet", GREET, env={"greeting": "你好"}).status_code == 201
    assert _greeting(api, app) == "你好"
    # The database changes behind every process's back (tests replace it this way).
    _committed_elsewhere(_closed(table), topic=None, key="")
    _committed_elsewhere(_regreeted(app), topic=None, key="")
    _committed_elsewhere(_rotated(app), topic=None, key="")
    invalidation.forget_all()
    assert api.get(NOTES, headers=app.client).json()["error"]["code"] == BaasError.KEY_INVALID
    with unit_of_work() as session:  # the app's key back, to reach the table and function
        session.execute(
            update(App).where(App.id == app.id).values(client_key_hash=hash_key(app.client_key))
        )
    assert _note(api, app) == 403
    assert _greeting(api, app) == "再见"


@pytest.mark.slow
def test_a_change_through_one_process_reaches_every_other_within_the_lag(
    api: httpx.Client, app: AppHandle
) -> None:
    _notes(api, app)
    assert deploy(api, app, "greet", GREET, env={"greeting": "你好"}).status_code == 201
    server = ServerProcess(workers=2).start()
    try:

        def seen(times: int) -> set[tuple[int, Any]]:
            """(notes status, greeting) as the workers answer, each on a new connection."""
            answers = set()
            for _ in range(times):
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    notes = _note(client, app)
                    greeted = invoke(client, app, "greet", {})
                    answers.add((notes, greeted.json()["result"]))
            return answers

        assert seen(12) == {(201, "你好")}  # both workers hold the key, table and function
        # Changed through this test process's server: the workers learn it from the feed,
        # long before their entries' safety-net TTL.
        assert deploy(api, app, "greet", GREET, env={"greeting": "再见"}).status_code == 201
        resp = api.put(
            f"/api/v1/baas/apps/{app.id}/tables/notes/permissions",
            json={"permissions": {"read": ["public"], "create": []}},
            headers=app.dev.headers,
        )
        assert resp.status_code == 200, resp.text
        settles(seen, (403, "再见"))
        resp = api.post(f"/api/v1/baas/apps/{app.id}/keys/client/rotate", headers=app.dev.headers)
        assert resp.status_code == 200, resp.text

        def key_statuses(times: int) -> set[int]:
            statuses = set()
            for _ in range(times):
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    statuses.add(client.get(NOTES, headers=app.client).status_code)
            return statuses

        settles(key_statuses, 401)
    finally:
        server.stop()
