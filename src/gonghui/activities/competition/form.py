"""The competition's bridge to the BaaS: the registration form is a table of an app of
the organiser (its org or an org below it), each registration's answers one record of it,
and submitted files are that app's stored files.

This is the one module of activities that reads the BaaS (an exception to the layers in
pyproject.toml): the form belongs to the operator's app, and entries must be records of
it so the operator's own tools (exports, triggers, functions) see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.competition.errors import CompetitionError
from gonghui.baas import files
from gonghui.baas.models import App, DataTable, Field, StoredFile
from gonghui.baas.permissions import Caller
from gonghui.baas.records import write as records
from gonghui.errors import InvalidInput, field_error
from gonghui.orgs.models import Org
from gonghui.tenancy import path_within

FORM_FIELD = "config.competition.form"


def _form_app(session: Session, *, organiser: Org, app_id: int) -> tuple[App, Org] | None:
    row = session.execute(
        select(App, Org).join(Org, Org.id == App.org_id).where(App.id == app_id)
    ).first()
    if row is None or not path_within(row.Org.path, organiser.path):
        return None
    return row.App, row.Org


def check_form(session: Session, *, organiser: Org, form: dict[str, Any]) -> None:
    """The form names a table that exists in an app of ``organiser``'s subtree (one answer
    whether the app is elsewhere or missing, so nothing leaks across unions)."""
    found = _form_app(session, organiser=organiser, app_id=int(form["app_id"]))
    table = None
    if found is not None:
        table = session.scalar(
            select(DataTable.id).where(
                DataTable.app_id == found[0].id, DataTable.name == form["table"]
            )
        )
    if table is None:
        raise InvalidInput(
            CompetitionError.BAD_FORM,
            "the registration form must be a table of an app your union manages",
            [field_error(FORM_FIELD, CompetitionError.BAD_FORM, "no such table in your apps")],
        )


def _server_caller(session: Session, *, organiser: Org, app_id: int, user_id: int) -> Caller:
    found = _form_app(session, organiser=organiser, app_id=app_id)
    if found is None:  # the app moved or went since the competition was defined
        raise InvalidInput(CompetitionError.BAD_FORM, "the registration form is gone")
    app, org = found
    # The competition writes on the member's behalf with the app's own authority (the form
    # table's rules are for the app's clients); the record names the member as creator.
    return Caller(app_id=app.id, org_id=org.id, org_path=org.path, server=True, user_id=user_id)


@dataclass(frozen=True)
class FormField:
    """A field of the registration form as a member fills it in."""

    name: str
    type: str
    required: bool
    rules: dict[str, Any]


def form_fields(session: Session, *, organiser: Org, form: dict[str, Any]) -> list[FormField]:
    """The form table's fields in their order (none when the form is gone)."""
    found = _form_app(session, organiser=organiser, app_id=int(form["app_id"]))
    if found is None:
        return []
    rows = session.scalars(
        select(Field)
        .join(DataTable, DataTable.id == Field.table_id)
        .where(DataTable.app_id == found[0].id, DataTable.name == form["table"])
        .order_by(Field.position, Field.id)
    )
    return [FormField(f.name, f.type, f.required, dict(f.rules or {})) for f in rows]


def store_file(
    session: Session,
    *,
    organiser: Org,
    form: dict[str, Any],
    user_id: int,
    stream: BinaryIO,
    name: str,
    claimed_type: str | None,
) -> int:
    """A member's upload as a file of the form's app (they are its uploader, within the
    app's size limit); its id."""
    caller = _server_caller(session, organiser=organiser, app_id=form["app_id"], user_id=user_id)
    row = files.upload(session, caller=caller, stream=stream, name=name, claimed_type=claimed_type)
    return row.id


def upload_limit(session: Session, *, organiser: Org, form: dict[str, Any]) -> int:
    caller = _server_caller(session, organiser=organiser, app_id=form["app_id"], user_id=0)
    return files.upload_limit(session, caller=caller)


def file_names(session: Session, file_ids: Sequence[int]) -> dict[int, str]:
    """The names the files were uploaded under (an entrant's own view of their files)."""
    if not file_ids:
        return {}
    return dict(
        session.execute(
            select(StoredFile.id, StoredFile.name).where(StoredFile.id.in_(file_ids))
        ).all()
    )


def store_answers(
    session: Session, *, organiser: Org, form: dict[str, Any], user_id: int, answers: dict[str, Any]
) -> int:
    """The answers as a new record of the form table (every field checked by the table's
    own rules; errors name the field as ``answers.<field>``); its id."""
    caller = _server_caller(session, organiser=organiser, app_id=form["app_id"], user_id=user_id)
    try:
        (record,) = records.create_records(
            session, caller=caller, table=form["table"], items=[answers]
        )
    except InvalidInput as exc:
        if isinstance(exc.details, list):
            for d in exc.details:
                d["field"] = f"answers.{d['field']}"
        raise
    return int(record["id"])


def files_of(
    session: Session, *, app_id: int, file_ids: Sequence[int], uploaders: Sequence[int]
) -> list[int]:
    """The ids among ``file_ids`` that are files of the form's app uploaded by one of
    ``uploaders`` (user ids): an entry submits only its own team's uploads."""
    if not file_ids:
        return []
    return list(
        session.scalars(
            select(StoredFile.id).where(
                StoredFile.app_id == app_id,
                StoredFile.id.in_(file_ids),
                StoredFile.created_by.in_(uploaders),
            )
        )
    )


def download_urls(
    session: Session, *, organiser: Org, form: dict[str, Any], file_ids: Sequence[int]
) -> list[tuple[int, str, str]]:
    """(id, content type, a signed download URL valid ten minutes) of each file, for a
    judge: neither the URL nor the download names the entrant (saved as
    ``submission-<id>.<extension>``, not under the name it was uploaded with)."""
    caller = _server_caller(session, organiser=organiser, app_id=form["app_id"], user_id=0)
    out = []
    for file_id in file_ids:
        row = session.get(StoredFile, file_id)
        if row is None:  # deleted by its uploader since: nothing to judge
            continue
        url = files.signed_url(
            session,
            caller=caller,
            file_id=file_id,
            download_name=files.neutral_name(row, f"submission-{file_id}"),
        )
        out.append((file_id, row.content_type, url.url))
    return out
