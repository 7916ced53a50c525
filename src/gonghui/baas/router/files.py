"""Files for app callers: upload, list, read, signed download URLs, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gonghui import bodylimit
from gonghui.baas import files
from gonghui.baas.caller import AppCaller
from gonghui.baas.errors import BaasError
from gonghui.baas.schemas import FileRead, FileUrl
from gonghui.bodylimit import max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput, field_error
from gonghui.storage import download_response
from gonghui.types import Count, Id

router = APIRouter()


def _file_read(row: Any) -> FileRead:
    read = FileRead.model_validate(row)
    return read.model_copy(update={"has_thumbnail": row.thumbnail_key is not None})


@router.post("/files", status_code=status.HTTP_201_CREATED)
@max_body(upload_limit)
async def upload_file(request: Request, caller: AppCaller) -> FileRead:
    """Multipart form: ``file`` and an optional ``folder``."""

    def limit() -> int:
        with unit_of_work(read_only=True) as session:
            return files.upload_limit(session, caller=caller)

    # The app's own file limit, known before the body is read: a larger declared body is
    # refused at once, a streamed one where it passes the limit.
    bodylimit.lower(request.scope, await run_in_threadpool(limit) + bodylimit.MULTIPART_FRAMING)
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        folder = form.get("folder") or ""
        if not isinstance(upload, UploadFile) or not isinstance(folder, str):
            raise InvalidInput(
                BaasError.INVALID_RECORD,
                "send the file as multipart field 'file'",
                [field_error("file", BaasError.INVALID_RECORD, "missing")],
            )

        def store() -> FileRead:
            with unit_of_work() as session:
                row = files.upload(
                    session,
                    caller=caller,
                    stream=upload.file,
                    name=upload.filename or "",
                    folder=folder,
                    claimed_type=upload.content_type,
                )
                return _file_read(row)

        return await run_in_threadpool(store)


@router.get("/files")
def list_files(caller: AppCaller, folder: str | None = None) -> list[FileRead]:
    with unit_of_work(read_only=True) as session:
        return [_file_read(r) for r in files.list_files(session, caller=caller, folder=folder)]


@router.get("/files/{file_id}")
def get_file(file_id: Id, caller: AppCaller) -> FileRead:
    with unit_of_work(read_only=True) as session:
        return _file_read(files.get_file(session, caller=caller, file_id=file_id))


@router.get("/files/{file_id}/url")
def file_url(
    file_id: Id,
    caller: AppCaller,
    thumbnail: bool = False,
    ttl_s: Count = files.DEFAULT_URL_TTL_S,
) -> FileUrl:
    with unit_of_work(read_only=True) as session:
        signed = files.signed_url(
            session, caller=caller, file_id=file_id, thumbnail=thumbnail, ttl_s=ttl_s
        )
        return FileUrl(url=signed.url, expires_at=signed.expires_at)


@router.get("/files/{file_id}/content")
def file_content(
    file_id: Id,
    variant: str,
    exp: Count,
    sig: str,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The bytes behind a signed URL; no key needed, the signature is the permission. Once
    it is checked, a store that offers presigned URLs gets the browser for a minute;
    otherwise the bytes stream from here."""
    with unit_of_work(read_only=True) as session:
        download = files.open_signed(
            session, file_id=file_id, variant=variant, expires=exp, sig=sig, name=name
        )
    return download_response(
        download.key,
        filename=download.name,
        content_type=download.content_type,
        cache_control="private, max-age=60",
    )


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(file_id: Id, caller: AppCaller) -> Response:
    with unit_of_work() as session:
        files.delete_file(session, caller=caller, file_id=file_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
