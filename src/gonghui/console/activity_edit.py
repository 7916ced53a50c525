"""Console: editing an activity through the same update service as the API, which decides
what may change once the activity is published (the form only greys those fields out)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui.activities import service as activities
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery.models import PrizeKind
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.schemas import ActivityUpdate
from gonghui.clock import display_zone
from gonghui.console.activities import _LOCAL_FORMAT, _local, _prize_value
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.types import Id
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/activities", include_in_schema=False)

# The service's field names, as the form names them.
_FORM_FIELD = {"budget_cents": "budget_yuan", "eligibility": "min_membership_days"}


def _form_of(activity: Activity) -> dict[str, str]:
    zone = display_zone()
    budget = activity.budget_cents
    return {
        "title": activity.title,
        "description": activity.description,
        "starts_at": activity.starts_at.astimezone(zone).strftime(_LOCAL_FORMAT),
        "ends_at": activity.ends_at.astimezone(zone).strftime(_LOCAL_FORMAT),
        "min_membership_days": str(activity.eligibility.get("min_membership_days", 0)),
        "tags_any": ", ".join(activity.eligibility.get("tags_any", [])),
        "budget_yuan": "" if budget is None else f"{budget / 100:.2f}",
    }


def _changes(activity: Activity, form: dict[str, str]) -> dict[str, Any]:
    """Only what the operator changed: a published activity refuses any other field sent."""
    before = _form_of(activity)
    changes: dict[str, Any] = {}
    for name in ("title", "description"):
        if form[name].strip() != before[name]:
            changes[name] = form[name].strip()
    for name in ("starts_at", "ends_at"):
        if form[name] != before[name]:
            changes[name] = _local(form[name])
    if (form["min_membership_days"], form["tags_any"]) != (
        before["min_membership_days"],
        before["tags_any"],
    ):
        changes["eligibility"] = {
            "min_membership_days": form["min_membership_days"] or 0,
            "tags_any": [
                tag.strip() for tag in form["tags_any"].replace("，", ",").split(",") if tag.strip()
            ],
        }
    if form["budget_yuan"].strip() != before["budget_yuan"]:
        raw = form["budget_yuan"].strip()
        changes["budget_cents"] = _prize_value(PrizeKind.VOUCHER, raw) if raw else None
    return changes


def _page(
    request: Request,
    user: PageUser,
    activity: Activity,
    form: dict[str, str],
    *,
    fields: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    state = activities.effective_status(activity)
    context = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "activity": activity,
        "status": state,
        "form": form,
        "fields": fields or {},
        "error": error,
        "published": state is not ActivityStatus.DRAFT,
        "closed": state in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED),
        "safe_fields": activities.SAFE_WHEN_PUBLISHED,
    }
    return render(request, "console/activity_edit.html", context, status=status)


@router.get("/{activity_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(
            session, actor=_actor(request, user), activity_id=activity_id
        )
    return _page(request, user, activity, _form_of(activity))


@router.post("/{activity_id}/edit", response_class=HTMLResponse)
def save(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    title: Annotated[str, Form(max_length=400)] = "",
    description: Annotated[str, Form(max_length=40_000)] = "",
    starts_at: Annotated[str | None, Form(max_length=32)] = None,
    ends_at: Annotated[str, Form(max_length=32)] = "",
    min_membership_days: Annotated[str | None, Form(max_length=16)] = None,
    tags_any: Annotated[str | None, Form(max_length=2000)] = None,
    budget_yuan: Annotated[str | None, Form(max_length=32)] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    locale = request_locale(request)
    t = translator(locale)

    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
    current = _form_of(activity)
    # Disabled inputs are not submitted: those fields keep their current values.
    form = {
        "title": title,
        "description": description,
        "starts_at": current["starts_at"] if starts_at is None else starts_at,
        "ends_at": ends_at,
        "min_membership_days": (
            current["min_membership_days"] if min_membership_days is None else min_membership_days
        ),
        "tags_any": current["tags_any"] if tags_any is None else tags_any,
        "budget_yuan": current["budget_yuan"] if budget_yuan is None else budget_yuan,
    }
    changes = _changes(activity, form)
    if not changes:
        return RedirectResponse(f"/console/activities/{activity_id}", status_code=303)
    try:
        data = ActivityUpdate.model_validate(changes)
    except ValidationError as exc:
        fields = {
            _FORM_FIELD.get(str(e["loc"][0]), str(e["loc"][0])): t("edit.invalid_field")
            for e in exc.errors()
        }
        return _page(request, user, activity, form, fields=fields)
    try:
        with unit_of_work() as session:
            activities.update_activity(session, actor=actor, activity_id=activity_id, data=data)
    except DomainError as exc:
        found = field_errors(exc, t)
        fields = {_FORM_FIELD.get(k, k): v for k, v in found.items()}
        if exc.code == ActivitiesError.BAD_WINDOW and "ends_at" in data.model_fields_set:
            if activities.effective_status(activity) is not ActivityStatus.DRAFT:
                fields["ends_at"] = t("edit.ends_at_future")
        return _page(
            request, user, activity, form, fields=fields, error=None if fields else error_key(exc)
        )
    return RedirectResponse(f"/console/activities/{activity_id}?saved=1", status_code=303)
