"""The files of articles in the file store: images shown in a body, and attachments listed
under one.

Images are JPEG, PNG or WebP within the pixel cap, under random names (public, as the
mall's product images are: a name is not guessable, and an article's text is what its
visibility guards). Attachments are documents of a few known kinds; their media type is
taken from the extension, never from the uploader, and they are downloaded as attachments
by whoever may read the item.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gonghui.db import on_commit, on_rollback
from gonghui.errors import InvalidInput, NotFound
from gonghui.images import WEB_MEDIA_TYPES, ImageTooLarge, NotAnImage, web_image_extension
from gonghui.news.errors import NewsError
from gonghui.storage import get_store

IMAGE_PREFIX = "news/images/"
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = WEB_MEDIA_TYPES
_IMAGE_NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|webp)")

ATTACHMENT_PREFIX = "news/files/"
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
ATTACHMENTS_MAX = 10
ATTACHMENT_TYPES = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "txt": "text/plain",
    "zip": "application/zip",
    "jpg": "image/jpeg",
    "png": "image/png",
}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def save_image(*, data: bytes) -> str:
    """Keep an uploaded article image; its key. Callers read one byte more than
    :data:`IMAGE_MAX_BYTES`, so a larger file is refused rather than cut short."""
    if len(data) > IMAGE_MAX_BYTES:
        raise InvalidInput(NewsError.BAD_IMAGE, f"an image is at most {IMAGE_MAX_BYTES} bytes")
    try:
        extension = web_image_extension(data)
    except (NotAnImage, ImageTooLarge) as exc:
        raise InvalidInput(NewsError.BAD_IMAGE, str(exc)[:200]) from None
    if extension is None:
        raise InvalidInput(NewsError.BAD_IMAGE, "article images are JPEG, PNG or WebP")
    key = f"{IMAGE_PREFIX}{secrets.token_hex(16)}.{extension}"
    get_store().put(key, [data])
    return key


def image_url(key: str) -> str:
    """Where an article's ``<img src>`` points (news.markup allows only these)."""
    return f"/api/v1/news/images/{key.removeprefix(IMAGE_PREFIX)}"


def image_key(name: str) -> str:
    """The key of a stored image named ``name``; not found for anything else."""
    key = f"{IMAGE_PREFIX}{name}"
    if not _IMAGE_NAME.fullmatch(name) or not get_store().exists(key):
        raise NotFound(NewsError.IMAGE_NOT_FOUND, "no such image")
    return key


@dataclass(frozen=True)
class StoredFile:
    key: str
    filename: str
    content_type: str
    size: int


def store_attachment(*, filename: str, data: bytes) -> StoredFile:
    """Keep an attachment (one of :data:`ATTACHMENT_TYPES`, at most
    :data:`ATTACHMENT_MAX_BYTES`) under a random key."""
    name = _UNSAFE_NAME.sub("_", filename.strip())[-120:] or "file"
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension not in ATTACHMENT_TYPES:
        raise InvalidInput(
            NewsError.BAD_ATTACHMENT,
            "attachments are " + ", ".join(sorted(ATTACHMENT_TYPES)),
        )
    if len(data) > ATTACHMENT_MAX_BYTES:
        raise InvalidInput(
            NewsError.BAD_ATTACHMENT, f"an attachment is at most {ATTACHMENT_MAX_BYTES} bytes"
        )
    if not data:
        raise InvalidInput(NewsError.BAD_ATTACHMENT, "the file is empty")
    key = f"{ATTACHMENT_PREFIX}{secrets.token_hex(16)}.{extension}"
    get_store().put(key, [data])
    return StoredFile(key, name, ATTACHMENT_TYPES[extension], len(data))


def _delete(keys: Sequence[str]) -> None:
    store = get_store()
    for key in keys:
        store.delete(key)


def forget_after_commit(session: Session, keys: Sequence[str]) -> None:
    """Delete the stored files once the rows that listed them are gone for good."""
    if keys:
        on_commit(session, lambda: _delete(list(keys)))


def forget_after_rollback(session: Session, keys: Sequence[str]) -> None:
    """Delete files just stored if no row will point to them."""
    if keys:
        on_rollback(session, lambda: _delete(list(keys)))
