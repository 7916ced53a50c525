"""Candidates' photos and videos: files of the file store (the BaaS).

The one module of the vote that reads the BaaS (an import-linter exception, as the
competition's form is): it checks a file when a nomination names it and signs the URLs
that members and staff see it by.

A nomination names a file its own staff uploaded, through an app of an org they manage,
of the right kind: the vote publishes the file to every member who may see the vote, so
being able to manage a union's activities must not be a way to publish (or read) the
other files of that union's apps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import clock
from gonghui.activities.vote.errors import VoteError
from gonghui.activities.vote.models import Candidate
from gonghui.baas import files
from gonghui.baas.models import App, StoredFile
from gonghui.errors import InvalidInput, field_error
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission

# Signed URLs change once a window, not with every read, so that a phone keeps the
# photos it has already loaded; each URL holds between one and two windows.
URL_WINDOW_S = 600


def check_file(session: Session, actor: Actor, field: str, file_id: int, kind: str) -> None:
    """``file_id`` is a file the actor uploaded to an app of an org where they manage
    activities, of ``kind`` (``image/`` or ``video/``); one answer for every mismatch."""
    row = session.execute(
        select(StoredFile.content_type, StoredFile.created_by, App.org_id)
        .join(App, App.id == StoredFile.app_id)
        .where(StoredFile.id == file_id)
    ).first()
    org = session.get(Org, row.org_id) if row is not None else None
    if (
        row is None
        or org is None
        or not actor.can(Permission.ACTIVITIES_MANAGE, org.path)
        or not (actor.is_platform_admin or row.created_by == actor.user_id)
        or not row.content_type.startswith(kind)
    ):
        raise InvalidInput(
            VoteError.BAD_FILE,
            f"file {file_id} is not {'an image' if kind == 'image/' else 'a video'} you may use",
            [field_error(field, VoteError.BAD_FILE, "not a file you uploaded, of that kind")],
        )


@dataclass(frozen=True)
class Media:
    """A candidate's signed URLs (None where it has no such file, or it was deleted)."""

    photo_url: str | None = None
    photo_thumbnail_url: str | None = None
    video_url: str | None = None
    expires_at: int | None = None


def media(session: Session, candidates: Sequence[Candidate]) -> dict[int, Media]:
    """Each candidate's media, by candidate id (its files read in one query). The files
    download as ``candidate-<id>-photo.<ext>`` and ``candidate-<id>-video.<ext>``."""
    ids = {f for c in candidates for f in (c.photo_file_id, c.video_file_id) if f is not None}
    rows = (
        {row.id: row for row in session.scalars(select(StoredFile).where(StoredFile.id.in_(ids)))}
        if ids
        else {}
    )
    expires = (int(clock.now().timestamp()) // URL_WINDOW_S + 2) * URL_WINDOW_S
    found: dict[int, Media] = {}
    for c in candidates:
        photo = rows.get(c.photo_file_id) if c.photo_file_id is not None else None
        video = rows.get(c.video_file_id) if c.video_file_id is not None else None
        if photo is None and video is None:
            found[c.id] = Media()
            continue
        found[c.id] = Media(
            photo_url=_url(photo, expires, f"candidate-{c.id}-photo"),
            photo_thumbnail_url=(
                _url(photo, expires, f"candidate-{c.id}-photo", thumbnail=True)
                if photo is not None and photo.thumbnail_key is not None
                else None
            ),
            video_url=_url(video, expires, f"candidate-{c.id}-video"),
            expires_at=expires,
        )
    return found


def _url(row: StoredFile | None, expires: int, stem: str, *, thumbnail: bool = False) -> str | None:
    if row is None:
        return None
    name = files.neutral_name(row, stem)
    return files.sign(row, expires=expires, thumbnail=thumbnail, download_name=name).url
