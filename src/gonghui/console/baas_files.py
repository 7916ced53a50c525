"""The developer portal's files: the app's files (images previewed by their thumbnail),
uploading one, and signed download links, as the app's server would (the same services as
``/api/v1/baas/files``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gonghui import bodylimit, clock
from gonghui.baas import apps, files
from gonghui.baas.errors import BaasError
from gonghui.bodylimit import max_body, upload_limit
from gonghui.console.baas_apps import app_context, refusal_of
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, InvalidInput
from gonghui.types import Id
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/apps/{app_id}/files", include_in_schema=False)


def _page(
    request: Request,
    user: PageUser,
    app_id: int,
    *,
    uploaded: str | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "files")
        caller = apps.staff_caller(session, actor=actor, app_id=app_id)
        rows = files.list_files(session, caller=caller)  # those the app's server may read
    # Signed here for every row listed: the list already holds only what the caller may
    # hand out (files.sign), so no row is read again.
    expires = int((clock.now() + timedelta(seconds=files.DEFAULT_URL_TTL_S)).timestamp())
    items: list[dict[str, Any]] = [
        {
            "row": row,
            "url": files.sign(row, expires=expires).url,
            "thumb": files.sign(row, expires=expires, thumbnail=True).url
            if row.thumbnail_key
            else None,
        }
        for row in reversed(rows[-100:])  # the newest hundred
    ]
    context.update(
        csrf_token=user.csrf_token,
        files=items,
        uploaded=uploaded,
        message=message,
        ttl_min=files.DEFAULT_URL_TTL_S // 60,
    )
    return render(request, "console/baas_files.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def files_page(request: Request, user: ConsoleStaff, app_id: Id) -> Response:
    return _page(request, user, app_id)


@router.post("", response_class=HTMLResponse)
@max_body(upload_limit)
async def upload(request: Request, user: ConsoleStaff, app_id: Id) -> Response:
    actor = _actor(request, user)

    def limit() -> int:
        with unit_of_work(read_only=True) as session:
            caller = apps.staff_caller(session, actor=actor, app_id=app_id)
            return files.upload_limit(session, caller=caller)

    bodylimit.lower(request.scope, await run_in_threadpool(limit) + bodylimit.MULTIPART_FRAMING)
    async with request.form(max_files=1, max_fields=4) as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        upload = form.get("file")
        folder = str(form.get("folder") or "")

        def store() -> str:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise InvalidInput(BaasError.INVALID_RECORD, "choose a file")
            with unit_of_work() as session:
                caller = apps.staff_caller(session, actor=actor, app_id=app_id)
                row = files.upload(
                    session,
                    caller=caller,
                    stream=upload.file,
                    name=upload.filename,
                    folder=folder,
                    claimed_type=upload.content_type,
                )
                return row.name

        try:
            name = await run_in_threadpool(store)
        except DomainError as exc:
            return _page(
                request, user, app_id, message=refusal_of(request, exc), status=exc.status_code
            )
    return _page(request, user, app_id, uploaded=name, status=201)
