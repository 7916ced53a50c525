"""Console: an activity's risk limits (rates per account, device, address and network at
which a member is challenged or refused, the anomaly thresholds, and the count of open
flags that pauses it), set through the same service as ``PUT /api/v1/activities/{id}/
risk-limits``. An empty box means "no such threshold"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui.activities import service as activities
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.risk import policy
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/activities", include_in_schema=False)

RATES = ("account", "device", "ip", "network")
THRESHOLDS = ("challenge", "refuse")
NUMBERS = ("network_accounts", "network_window_s", "fresh_account_actions", "pass_s",
           "pause_after_flags")  # fmt: skip
FIELDS = [f"{r}_{t}" for r in RATES for t in THRESHOLDS] + list(NUMBERS)
MAX_DIGITS = 9


def _form_of(limits: policy.Limits) -> dict[str, str]:
    data = limits.model_dump()
    form = {f"{r}_{t}": data[r][t] for r in RATES for t in THRESHOLDS}
    form.update({name: data[name] for name in NUMBERS})
    shown = {name: "" if value is None else str(value) for name, value in form.items()}
    shown["require_device_id"] = "on" if limits.require_device_id else ""
    return shown


def _limits_of(form: dict[str, str]) -> dict[str, Any]:
    """The form as the service's model reads it: empty is None, digits are numbers, and
    anything else is passed on for the model to refuse, naming the field."""

    def value(name: str) -> Any:
        raw = form.get(name, "").strip()
        if not raw:
            return None
        return int(raw) if raw.isdigit() and len(raw) <= MAX_DIGITS else raw

    body: dict[str, Any] = {r: {t: value(f"{r}_{t}") for t in THRESHOLDS} for r in RATES}
    body.update({name: value(name) for name in NUMBERS})
    if body["network_window_s"] is None:
        body.pop("network_window_s")  # required by the model: the default stands
    if body["pass_s"] is None:
        body.pop("pass_s")
    body["require_device_id"] = form.get("require_device_id") == "on"
    return body


def _page(
    request: Request,
    user: PageUser,
    activity_id: int,
    form: dict[str, str] | None = None,
    *,
    fields: dict[str, str] | None = None,
    error: str | None = None,
    saved: bool = False,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
        current = policy.get_limits(session, actor=actor, activity_id=activity_id)
    context = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "activity": activity,
        "form": form or _form_of(current),
        "defaults": _form_of(policy.DEFAULTS),
        "rates": RATES,
        "thresholds": THRESHOLDS,
        "fields": fields or {},
        "error": error,
        "saved": saved,
    }
    return render(request, "console/risk_limits.html", context, status=200)


@router.get("/{activity_id}/risk-limits", response_class=HTMLResponse)
def limits_page(request: Request, user: ConsoleStaff, activity_id: Id, saved: str = "") -> Response:
    return _page(request, user, activity_id, saved=saved == "1")


@router.post("/{activity_id}/risk-limits", response_class=HTMLResponse)
async def save(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    posted = await request.form(max_files=0, max_fields=40)
    check_csrf(request, user, str(posted.get("csrf", "")))
    form = {name: str(posted.get(name, ""))[:32] for name in [*FIELDS, "require_device_id"]}
    t = translator(request_locale(request))
    try:
        limits = policy.Limits.model_validate(_limits_of(form))
    except ValidationError as exc:
        fields = {
            "_".join(str(part) for part in e["loc"]): t("risk.limit_invalid") for e in exc.errors()
        }
        return _page(request, user, activity_id, form, fields=fields)
    try:
        with unit_of_work() as session:
            policy.set_limits(
                session, actor=_actor(request, user), activity_id=activity_id, limits=limits
            )
    except DomainError as exc:
        return _page(request, user, activity_id, form, error=error_key(exc))
    return RedirectResponse(
        f"/console/activities/{activity_id}/risk-limits?saved=1", status_code=303
    )
