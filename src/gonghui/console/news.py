"""Console: information release (信息发布). Editors write news and notices (an image
uploaded from the editor goes into the body, attachments are listed under it), submit
them, and a second staff member approves or rejects them in the review queue; the list
shows each item's state and read count (the same services as the news API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.clock import display_zone
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.news import files, service
from gonghui.news.models import NewsItem, NewsKind, NewsStatus, Visibility
from gonghui.news.schemas import BODY_MAX_CHARS
from gonghui.news.service import Draft
from gonghui.orgs import service as orgs
from gonghui.storage import download_response
from gonghui.tenancy import Actor, Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/news", include_in_schema=False)

_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
_DONE = ("saved", "submitted", "approved", "rejected", "withdrawn", "published", "pinned",
         "unpinned", "image", "attached", "detached", "deleted")  # fmt: skip


def _local(value: str) -> datetime | None:
    if not value.strip():
        return None
    return datetime.strptime(value.strip(), _LOCAL_FORMAT).replace(tzinfo=display_zone())


def _local_value(at: datetime | None) -> str:
    return at.astimezone(display_zone()).strftime(_LOCAL_FORMAT) if at else ""


def _context(request: Request, user: PageUser, **extra: Any) -> dict[str, Any]:
    return {
        "active": "nav.news",
        "csrf_token": user.csrf_token,
        "user_id": user.principal.user_id,
        **extra,
    }


def _org_choices(request: Request, user: PageUser) -> tuple[dict[int, str], list[Any]]:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        visible = orgs.list_orgs(session, actor=actor)
    names = {o.id: o.name for o in visible}
    return names, [o for o in visible if actor.can(Permission.NEWS_MANAGE, o.path)]


@router.get("", response_class=HTMLResponse)
def news_page(request: Request, user: ConsoleStaff, status: str = "", done: str = "") -> Response:
    actor = _actor(request, user)
    chosen = NewsStatus(status) if status in set(NewsStatus) else None
    with unit_of_work(read_only=True) as session:
        items = service.list_items(session, actor=actor, status=chosen, limit=100)
        pending = len(service.review_queue(session, actor=actor))
    names, writable = _org_choices(request, user)
    context = _context(
        request,
        user,
        items=items,
        org_names=names,
        may_write=bool(writable),
        status=chosen.value if chosen else "",
        statuses=[s.value for s in NewsStatus],
        pending=pending,
        deleted=done == "deleted",
    )
    return render(request, "console/news.html", context)


def _editor(
    request: Request,
    user: PageUser,
    *,
    item: NewsItem | None = None,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    names, writable = _org_choices(request, user)
    audience: list[int] = []
    attachments: list[Any] = []
    if item is not None:
        with unit_of_work(read_only=True) as session:
            audience = service.audience_of(session, [item.id])[item.id]
            attachments = service.attachments_of(session, [item.id])[item.id]
    if form is None:
        form = (
            {
                "org_id": item.org_id,
                "kind": item.kind,
                "title": item.title,
                "body_html": item.body_html,
                "visibility": item.visibility,
                "audience_org_ids": audience,
                "pinned": item.pinned,
                "publish_at": _local_value(item.publish_at),
            }
            if item
            else {"kind": "news", "visibility": "subtree", "audience_org_ids": []}
        )
    context = _context(
        request,
        user,
        item=item,
        form=form,
        editable=item is None or item.status in service.EDITABLE,
        org_names=names,
        orgs=writable,
        kinds=[k.value for k in NewsKind],
        attachments=attachments,
        error=error,
        done=done,
        image_types=",".join(files.IMAGE_TYPES.values()),
        attachment_types=",".join(f".{e}" for e in files.ATTACHMENT_TYPES),
    )
    return render(request, "console/news_edit.html", context, status=status)


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request, user: ConsoleStaff) -> Response:
    return _editor(request, user)


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, user: ConsoleStaff, done: str = "", error: str = "") -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        items = service.review_queue(session, actor=actor)
        attachments = service.attachments_of(session, [i.id for i in items])
    names, _ = _org_choices(request, user)
    context = _context(
        request,
        user,
        items=items,
        attachments=attachments,
        org_names=names,
        done=done if done in _DONE else None,
        error=error if error.startswith("error.") else None,
    )
    return render(request, "console/news_reviews.html", context)


def _write(
    request: Request,
    user: PageUser,
    item_id: int | None,
    *,
    org_id: int | None,
    kind: NewsKind,
    title: str,
    body_html: str,
    visibility: Visibility,
    audience_org_ids: list[int] | None,
    pinned: bool,
    publish_at: str,
) -> Response:
    form = {"org_id": org_id, "kind": kind.value, "title": title, "body_html": body_html,
            "visibility": visibility.value, "audience_org_ids": audience_org_ids or [],
            "pinned": pinned, "publish_at": publish_at}  # fmt: skip
    actor = _actor(request, user)
    try:
        draft = Draft(
            kind=kind,
            title=title,
            body_html=body_html,
            visibility=visibility,
            audience_org_ids=audience_org_ids or [],
            pinned=pinned,
            publish_at=_local(publish_at),
        )
        with unit_of_work() as session:
            if item_id is None:
                assert org_id is not None
                item = service.create_item(session, actor=actor, org_id=org_id, draft=draft)
            else:
                item = service.update_item(session, actor=actor, item_id=item_id, draft=draft)
            session.flush()
            saved = item.id
    except (DomainError, ValueError) as exc:
        error = error_key(exc) if isinstance(exc, DomainError) else "news.bad_time"
        current = None
        if item_id is not None:
            with unit_of_work(read_only=True) as session:
                current = service.get_item(session, actor=actor, item_id=item_id)
        return _editor(request, user, item=current, form=form, error=error, status=422)
    return RedirectResponse(f"/console/news/{saved}?done=saved", status_code=303)


@router.post("", response_class=HTMLResponse)
def create_item(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    body_html: Annotated[str, Form(min_length=1, max_length=BODY_MAX_CHARS)],
    kind: Annotated[NewsKind, Form()] = NewsKind.NEWS,
    visibility: Annotated[Visibility, Form()] = Visibility.SUBTREE,
    audience_org_ids: Annotated[list[Id] | None, Form()] = None,
    pinned: Annotated[bool, Form()] = False,
    publish_at: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return _write(
        request, user, None, org_id=org_id, kind=kind, title=title, body_html=body_html,
        visibility=visibility, audience_org_ids=audience_org_ids, pinned=pinned,
        publish_at=publish_at,
    )  # fmt: skip


@router.get("/{item_id}", response_class=HTMLResponse)
def item_page(
    request: Request, user: ConsoleStaff, item_id: Id, done: str = "", error: str = ""
) -> Response:
    with unit_of_work(read_only=True) as session:
        item = service.get_item(session, actor=_actor(request, user), item_id=item_id)
    return _editor(
        request,
        user,
        item=item,
        done=done if done in _DONE else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("/{item_id}", response_class=HTMLResponse)
def update_item(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    title: Annotated[str, Form(min_length=1, max_length=200)],
    body_html: Annotated[str, Form(min_length=1, max_length=BODY_MAX_CHARS)],
    kind: Annotated[NewsKind, Form()] = NewsKind.NEWS,
    visibility: Annotated[Visibility, Form()] = Visibility.SUBTREE,
    audience_org_ids: Annotated[list[Id] | None, Form()] = None,
    pinned: Annotated[bool, Form()] = False,
    publish_at: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return _write(
        request, user, item_id, org_id=None, kind=kind, title=title, body_html=body_html,
        visibility=visibility, audience_org_ids=audience_org_ids, pinned=pinned,
        publish_at=publish_at,
    )  # fmt: skip


@router.post("/{item_id}/images")
@max_body(files.IMAGE_MAX_BYTES + MULTIPART_FRAMING)
def insert_image(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    image: Annotated[UploadFile, File()],
    alt: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Upload an image and add it at the end of the body (the editor moves it as it likes)."""
    check_csrf(request, user, csrf)
    actor = _actor(request, user)
    data = image.file.read(files.IMAGE_MAX_BYTES + 1)

    def insert() -> None:
        with unit_of_work() as session:
            item = service.get_item(session, actor=actor, item_id=item_id)
            key = service.save_image(actor=actor, data=data)
            files.forget_after_rollback(session, [key])
            service.append_image(session, actor=actor, item=item, url=files.image_url(key), alt=alt)

    return back_to(f"/console/news/{item_id}", insert, done="image")


@router.post("/{item_id}/attachments")
@max_body(files.ATTACHMENT_MAX_BYTES + MULTIPART_FRAMING)
def add_attachment(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    attachment: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)
    data = attachment.file.read(files.ATTACHMENT_MAX_BYTES + 1)

    def attach() -> None:
        with unit_of_work() as session:
            service.add_attachment(
                session,
                actor=actor,
                item_id=item_id,
                filename=attachment.filename or "file",
                data=data,
            )

    return back_to(f"/console/news/{item_id}", attach, done="attached")


@router.post("/{item_id}/attachments/{attachment_id}/remove")
def remove_attachment(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    attachment_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)

    def remove() -> None:
        with unit_of_work() as session:
            service.remove_attachment(
                session, actor=actor, item_id=item_id, attachment_id=attachment_id
            )

    return back_to(f"/console/news/{item_id}", remove, done="detached")


@router.get("/{item_id}/attachments/{attachment_id}", response_class=Response)
def download_attachment(
    request: Request, user: ConsoleStaff, item_id: Id, attachment_id: Id
) -> Response:
    with unit_of_work(read_only=True) as session:
        found = service.staff_attachment(
            session, actor=_actor(request, user), item_id=item_id, attachment_id=attachment_id
        )
    return download_response(found.key, filename=found.filename, content_type=found.content_type)


@router.post("/{item_id}/review")
def review_item(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)

    def decide() -> None:
        with unit_of_work() as session:
            service.review(
                session, actor=actor, item_id=item_id, approve=decision == "approve", note=note
            )

    done = "approved" if decision == "approve" else "rejected"
    return back_to("/console/news/reviews", decide, done=done)


# A state change of the item's page: what it does, and what the page says after.
_ACTIONS = {"submit": "submitted", "withdraw": "withdrawn", "publish": "published",
            "pin": "pinned", "unpin": "unpinned"}  # fmt: skip


def _act(session: Session, actor: Actor, item_id: int, action: str) -> None:
    if action == "submit":
        service.submit(session, actor=actor, item_id=item_id)
    elif action == "withdraw":
        service.withdraw(session, actor=actor, item_id=item_id)
    elif action == "publish":
        service.republish(session, actor=actor, item_id=item_id)
    else:
        service.set_pinned(session, actor=actor, item_id=item_id, pinned=action == "pin")


@router.post("/{item_id}/delete")
def delete_item(
    request: Request, user: ConsoleStaff, item_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)

    def remove() -> None:
        with unit_of_work() as session:
            service.delete_item(session, actor=actor, item_id=item_id)

    response = back_to(f"/console/news/{item_id}", remove)
    if "error=" in response.headers["location"]:
        return response
    return RedirectResponse("/console/news?done=deleted", status_code=303)


@router.post("/{item_id}/{action}")
def item_action(
    request: Request,
    user: ConsoleStaff,
    item_id: Id,
    action: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    if action not in _ACTIONS:
        return RedirectResponse(f"/console/news/{item_id}", status_code=303)
    actor = _actor(request, user)

    def act() -> None:
        with unit_of_work() as session:
            _act(session, actor, item_id, action)

    return back_to(f"/console/news/{item_id}", act, done=_ACTIONS[action])
