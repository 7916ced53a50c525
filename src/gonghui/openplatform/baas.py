"""The open API's ``baas:<app id>``: a client granted one BaaS app of its subtree (by a
developer of the client's org, :mod:`.approvals`, who holds that app's server key anyway)
reads and writes that app's tables as the app's own server would (its server key passes
every table rule), through the BaaS's own queries and writes: field rules, triggers and the
audit of deletes hold as for any server call."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gonghui.baas.permissions import Caller
from gonghui.baas.records import query, write
from gonghui.baas.records.query import Page
from gonghui.openplatform import approvals, scopes

PAGE_MAX = 100


def scope(app_id: int) -> str:
    return f"{scopes.BAAS_PREFIX}{app_id}"


def _server_of(session: Session, *, client_pk: int, app_id: int) -> Caller:
    """The app's server, if the grant of it stands and the app lies in the client's subtree."""
    acting = approvals.acting_for(session, client_pk=client_pk, scope=scope(app_id))
    app, org_path = approvals.subtree_app(session, org_path=acting.client.org_path, app_id=app_id)
    return Caller(app_id=app.id, org_id=app.org_id, org_path=org_path, server=True)


def records(
    session: Session,
    *,
    client_pk: int,
    app_id: int,
    table: str,
    where: Any = None,
    sort: list[str] | None = None,
    fields: list[str] | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    caller = _server_of(session, client_pk=client_pk, app_id=app_id)
    return query.list_records(
        session,
        caller=caller,
        table=table,
        where=where,
        sort=sort,
        fields=fields,
        limit=min(max(limit, 1), PAGE_MAX),
        cursor=cursor,
    )


def record(
    session: Session, *, client_pk: int, app_id: int, table: str, record_id: int
) -> dict[str, Any]:
    caller = _server_of(session, client_pk=client_pk, app_id=app_id)
    return query.get_record(session, caller=caller, table=table, record_id=record_id)


def create(
    session: Session, *, client_pk: int, app_id: int, table: str, item: dict[str, Any]
) -> dict[str, Any]:
    caller = _server_of(session, client_pk=client_pk, app_id=app_id)
    (created,) = write.create_records(session, caller=caller, table=table, items=[item])
    return created


def update(
    session: Session,
    *,
    client_pk: int,
    app_id: int,
    table: str,
    record_id: int,
    ops: dict[str, Any],
) -> dict[str, Any]:
    caller = _server_of(session, client_pk=client_pk, app_id=app_id)
    return write.update_record(session, caller=caller, table=table, record_id=record_id, ops=ops)


def delete(session: Session, *, client_pk: int, app_id: int, table: str, record_id: int) -> None:
    caller = _server_of(session, client_pk=client_pk, app_id=app_id)
    write.delete_record(session, caller=caller, table=table, record_id=record_id)
