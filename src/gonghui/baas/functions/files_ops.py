"""Platform calls on the invoking app's files: list, signed URL, read, write, delete.

The same services and rules as the files API (the caller's or the app's server rights,
content types detected from the bytes, the app's size limit). Bytes cross the channel as
base64, at most ``MAX_INLINE`` per read; larger files are handed out as signed URLs.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gonghui.baas import files
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.baas.models import StoredFile
from gonghui.baas.permissions import Caller
from gonghui.storage import get_store

MAX_INLINE = 1024 * 1024


def _describe(row: StoredFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "folder": row.folder,
        "content_type": row.content_type,
        "size": row.size,
        "created_at": row.created_at.isoformat(),
    }


def list_files(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    folder = args.get("folder")
    rows = files.list_files(session, caller=caller, folder=None if folder is None else str(folder))
    return [_describe(r) for r in rows]


def url(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    signed = files.signed_url(
        session,
        caller=caller,
        file_id=int(args["id"]),
        thumbnail=bool(args.get("thumbnail")),
    )
    return {"url": signed.url, "expires_at": signed.expires_at}


def read(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    row = files.get_file(session, caller=caller, file_id=int(args["id"]))
    if row.size > MAX_INLINE:
        raise SdkRefusal(FunctionsError.BAD_CALL, "the file is over 1 MiB: use files.url")
    with get_store().open(row.storage_key) as f:
        data = f.read()
    return {**_describe(row), "base64": base64.b64encode(data).decode()}


def write(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    try:
        data = base64.b64decode(str(args.get("base64") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SdkRefusal(FunctionsError.BAD_CALL, "base64: not valid base64") from exc
    row = files.upload(
        session,
        caller=caller,
        stream=io.BytesIO(data),
        name=str(args.get("name") or ""),
        folder=str(args.get("folder") or ""),
        claimed_type=args.get("content_type"),
    )
    return _describe(row)


def delete(session: Session, caller: Caller, args: dict[str, Any]) -> Any:
    files.delete_file(session, caller=caller, file_id=int(args["id"]))
    return None


OPS: dict[str, Callable[[Session, Caller, dict[str, Any]], Any]] = {
    "files.list": list_files,
    "files.url": url,
    "files.read": read,
    "files.write": write,
    "files.delete": delete,
}
READ_ONLY = frozenset({"files.list", "files.url", "files.read"})
