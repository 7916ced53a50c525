"""Console pages for activities: the lottery wizard, publishing, the live dashboard and the
winner list with its XLSX export."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from openpyxl import Workbook  # type: ignore[import-untyped]
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gonghui import xlsx
from gonghui.activities import overview, stats
from gonghui.activities import service as activities
from gonghui.activities.lottery import dry_run, proof
from gonghui.activities.lottery.draw import LOTTERY_KINDS
from gonghui.activities.lottery.models import PrizeKind
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.schemas import ActivityCreate
from gonghui.activities.templates import service as templates
from gonghui.activities.vote import preview as vote_preview
from gonghui.activities.voucher_grab import dashboard as voucher_grab_dashboard
from gonghui.activities.voucher_grab import stocks as voucher_grab_stocks
from gonghui.benefits import export
from gonghui.cells import safe_row
from gonghui.clock import display_zone, now
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.merchants import directory as merchant_directory
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission, path_within
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.i18n import translate
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/activities", include_in_schema=False)

PRIZE_ROWS = 3
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, user: ConsoleStaff, live: int = 0) -> Response:
    """The newest activities; ``live=1`` (the home page's link): the live ones, ending
    soonest first."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = (
            overview.live_activities(session, actor=actor, limit=100)
            if live
            else activities.list_activities(session, actor=actor)
        )
        items = [{"activity": a, "status": activities.effective_status(a)} for a in found]
        names = {o.id: o.name for o in orgs.list_orgs(session, actor=actor)}
    context = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "items": items,
        "org_names": names,
        "live_only": bool(live),
    }
    return render(request, "console/activities.html", context)


def _wizard(request: Request, user: PageUser, form: dict[str, Any], **extra: Any) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        managed = [
            o
            for o in orgs.list_orgs(session, actor=actor)
            if actor.can(Permission.ACTIVITIES_MANAGE, o.path)
        ]
        # What a voucher prize may name: the open merchants of any org the operator may run
        # an activity for (the service checks each against the chosen org on saving).
        roots: list[str] = []
        for path in sorted(o.path for o in managed):
            if not any(path_within(path, root) for root in roots):
                roots.append(path)
        shops = merchant_directory.open_within(session, org_paths=roots)
        saved = templates.list_templates(session, actor=actor)
    context = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "saved_templates": saved,
        "orgs": managed,
        "form": form,
        "merchants": shops,
        "picked": {},
        "rows": range(PRIZE_ROWS),
        "kinds": [k.value for k in PrizeKind],
        "templates": [k.value for k in ActivityKind],
    }
    context.update(extra)
    return render(request, "console/activity_new.html", context)


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request, user: ConsoleStaff) -> Response:
    start = now().astimezone(display_zone()).replace(second=0, microsecond=0)
    form = {
        "starts_at": start.strftime(_LOCAL_FORMAT),
        "ends_at": (start + timedelta(days=7)).strftime(_LOCAL_FORMAT),
        "free_draws_per_day": "1",
        "max_wins_per_member": "1",
        "template": "lottery",
        "question_count": "5",
        "time_limit_s": "120",
        "pass_score": "60",
        "attempts_per_day": "3",
        "quiz_reward": "1",
        "stock_max_per_member": "1",
    }
    return _wizard(request, user, form)


def _local(value: str) -> datetime | str:
    try:
        return datetime.strptime(value, _LOCAL_FORMAT).replace(tzinfo=display_zone())
    except ValueError:
        return value  # left for the model to refuse with the field


def _prize_value(kind: str, raw: str) -> int | str:
    """Vouchers are entered in yuan and stored in cents; points as a whole number."""
    if not raw.strip():
        return 0
    try:
        amount = Decimal(raw.strip())
    except InvalidOperation:
        return raw
    return int(amount * 100) if kind == PrizeKind.VOUCHER else int(amount)


def _vote_rules(form: dict[str, str]) -> dict[str, Any]:
    """A vote's rules from the wizard's vote step (the schema checks them)."""
    rules: dict[str, Any] = {
        "votes_per_day": form.get("votes_per_day") or 1,
        "votes_per_candidate_per_day": form.get("votes_per_candidate_per_day") or 1,
        "hide_counts_until_end": form.get("hide_counts_until_end") == "on",
        "categories": [
            c.strip() for c in form.get("categories", "").replace("，", ",").split(",") if c.strip()
        ],
    }
    if form.get("votes_total"):
        rules["votes_total"] = form["votes_total"]
    return rules


def _competition_rules(form: dict[str, str]) -> dict[str, Any]:
    """A competition's rules from the wizard's step: individuals, the form table, the
    windows and up to PRIZE_ROWS rubric criteria (keys c1, c2, ...)."""
    rubric = [
        {
            "key": f"c{i + 1}",
            "name": form.get(f"criterion_{i}_name", "").strip(),
            "weight": form.get(f"criterion_{i}_weight") or 1,
            "max_score": form.get(f"criterion_{i}_max") or 10,
        }
        for i in range(PRIZE_ROWS)
        if form.get(f"criterion_{i}_name", "").strip()
    ]
    return {
        "form": {"app_id": form.get("form_app_id") or 0, "table": form.get("form_table", "")},
        "registration_opens_at": _local(form.get("registration_opens_at", "")),
        "registration_closes_at": _local(form.get("registration_closes_at", "")),
        "submission_deadline": _local(form.get("submission_deadline", "")),
        "max_files": form.get("max_files") or 5,
        "rubric": rubric,
    }


@router.post("/new", response_class=HTMLResponse)
async def create(request: Request, user: ConsoleStaff) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    check_csrf(request, user, form.get("csrf"))
    # The merchants picked for each prize (a multi-select sends one field per choice).
    picked = {i: [str(v) for v in raw.getlist(f"prize_{i}_merchants")] for i in range(PRIZE_ROWS)}
    prizes = []
    for i in range(PRIZE_ROWS):
        name = form.get(f"prize_{i}_name", "").strip()
        if not name:
            continue
        kind = form.get(f"prize_{i}_kind", "")
        prize: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "stock": form.get(f"prize_{i}_stock") or 0,
            "weight": form.get(f"prize_{i}_weight") or 0,
            "value": _prize_value(kind, form.get(f"prize_{i}_value", "")),
        }
        if picked[i]:
            prize["merchant_ids"] = picked[i]
        prizes.append(prize)
    budget = form.get("budget_yuan", "").strip()
    template = form.get("template", "lottery")
    lottery = {
        "prizes": prizes,
        "free_draws_per_day": form.get("free_draws_per_day") or 0,
        "max_wins_per_member": form.get("max_wins_per_member") or None,
    }
    quiz: dict[str, Any] = {
        "question_count": form.get("question_count") or 0,
        "time_limit_s": form.get("time_limit_s") or 0,
        "pass_score": form.get("pass_score") or 0,
        "attempts_per_day": form.get("attempts_per_day") or 1,
        "question_tag": form.get("question_tag", "").strip() or None,
    }
    reward = form.get("quiz_reward", "").strip()
    if template == "quiz_lottery" and reward:
        quiz["reward"] = {"type": "chances", "chances": reward}
    elif template == "quiz" and reward:
        quiz["reward"] = {"type": "points", "points": reward}
    config: dict[str, Any] = {"kind": template}
    if template == "voucher_grab":
        config["voucher_grab"] = {
            "stocks": [
                {
                    "name": form.get("stock_name", "").strip(),
                    "coupon_amount_cents": _prize_value(
                        PrizeKind.VOUCHER, form.get("stock_amount_yuan", "")
                    ),
                    "threshold_cents": _prize_value(
                        PrizeKind.VOUCHER, form.get("stock_threshold_yuan", "")
                    ),
                    "max_coupons": form.get("stock_max_coupons") or 0,
                    "max_per_member": form.get("stock_max_per_member") or 1,
                }
            ],
            "max_per_org": form.get("max_per_org") or None,
        }
    if template == "mall":
        config["mall"] = {
            "subsidy_percent": form.get("subsidy_percent") or 0,
            "member_cap_cents_per_month": _prize_value(
                PrizeKind.VOUCHER, form.get("member_cap_yuan", "")
            ),
        }
    if template == "vote":
        config["vote"] = _vote_rules(form)
    if template == "competition":
        config["competition"] = _competition_rules(form)
    if template in ("lottery", "quiz_lottery"):
        config["lottery"] = lottery
    if template in ("quiz", "quiz_lottery"):
        config["quiz"] = quiz
    try:
        data = ActivityCreate.model_validate(
            {
                "org_id": form.get("org_id"),
                "title": form.get("title", "").strip(),
                "description": form.get("description", ""),
                "starts_at": _local(form.get("starts_at", "")),
                "ends_at": _local(form.get("ends_at", "")),
                "config": config,
                "eligibility": {
                    "min_membership_days": form.get("min_membership_days") or 0,
                    "tags_any": [
                        tag.strip()
                        for tag in form.get("tags_any", "").replace("，", ",").split(",")
                        if tag.strip()
                    ],
                },
                "budget_cents": _prize_value(PrizeKind.VOUCHER, budget) if budget else None,
            }
        )
    except ValidationError as exc:
        problems = [
            ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
            + f": {e['msg']}"
            for e in exc.errors()
        ]
        return _wizard(request, user, form, problems=problems, picked=picked)
    try:
        with unit_of_work() as session:
            activity_id = activities.create_activity(
                session, actor=_actor(request, user), data=data
            ).id
    except DomainError as exc:
        return _wizard(
            request, user, form, error=error_key(exc), message=exc.message, picked=picked
        )
    return RedirectResponse(f"/console/activities/{activity_id}?created=1", status_code=303)


def _dashboard(request: Request, user: PageUser, activity_id: Id) -> dict[str, Any]:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
        # Draws and prizes won exist only in lotteries, stocks only in voucher grabs: an
        # activity's dashboard asks only for what its kind can hold.
        lottery = activity.kind in LOTTERY_KINDS
        numbers = stats.activity_stats(session, actor=actor, activity_id=activity_id)
        hourly = (
            stats.draws_by_hour(session, actor=actor, activity_id=activity_id) if lottery else []
        )
        org_name = orgs.get_org(session, actor=actor, org_id=activity.org_id).name
        winners = (
            proof.winners(session, activity_id=activity.id, limit=100)
            if lottery and activity.status != ActivityStatus.DRAFT
            else []
        )
        opening = (
            voucher_grab_dashboard.opening_minute(session, actor=actor, activity_id=activity.id)
            if activity.kind == ActivityKind.VOUCHER_GRAB
            else None
        )
        context: dict[str, Any] = {
            "activity": activity,
            "org_name": org_name,
            "stats": numbers,
            "winners": winners,
            "opening": opening,
            "csrf_token": user.csrf_token,
            "live": numbers["status"] in (ActivityStatus.LIVE, ActivityStatus.SCHEDULED),
            "prizes_left": sum(p["stock"] for p in numbers["prizes"]),
            "preview": {
                "kind": activity.kind,
                "title": activity.title,
                "org_name": org_name,
                "status": numbers["status"],
                "ends_at": activity.ends_at,
                "me": {
                    "chances_left": (
                        activity.config.get("lottery", {}).get("free_draws_per_day", 0)
                        if lottery
                        else None
                    )
                },
            },
            "by_org": (
                stats.draws_by_org(session, actor=actor, activity_id=activity.id) if lottery else []
            ),
            "chart": {
                "labels": [p["name"] for p in numbers["prizes"]],
                "won": [p["won"] for p in numbers["prizes"]],
                "left": [p["stock"] for p in numbers["prizes"]],
                "hours": [
                    h["hour"].astimezone(display_zone()).strftime("%m-%d %H:00") for h in hourly
                ],
                "draws": [h["draws"] for h in hourly],
            },
        }
    return context


def _prize_lines(session: Session, activity: Activity) -> list[dict[str, Any]]:
    """The lottery's prizes as configured, a voucher's with the merchants it names."""
    rules = activities.lottery_rules(activity)
    if rules is None:
        return []
    names = merchant_directory.names(session, {m for p in rules.prizes for m in p.merchant_ids})
    return [
        {
            "name": p.name,
            "kind": p.kind,
            "value": p.value,
            "merchants": [names[m] for m in p.merchant_ids if m in names],
        }
        for p in rules.prizes
    ]


@router.get("/{activity_id}", response_class=HTMLResponse)
def activity_page(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    created: int = 0,
    saved: int = 0,
    repeated: int = 0,
    cloned: int = 0,
    template_saved: int = 0,
    error: str = "",
) -> Response:
    context = _dashboard(request, user, activity_id)
    claims_by_org = None
    if context["activity"].kind == ActivityKind.VOUCHER_GRAB:
        with unit_of_work(read_only=True) as session:
            claims_by_org = voucher_grab_dashboard.claims_by_org(
                session, actor=_actor(request, user), activity_id=activity_id
            )
    prizes = None
    if context["activity"].kind in LOTTERY_KINDS:
        with unit_of_work(read_only=True) as session:
            prizes = _prize_lines(session, context["activity"])
    context.update(
        prizes=prizes,
        claims_by_org=claims_by_org,
        active="nav.activities",
        created=bool(created),
        saved=bool(saved),
        repeated=bool(repeated),
        cloned=bool(cloned),
        template_saved=bool(template_saved),
        error=error if error.startswith("error.") else None,
    )
    return render(request, "console/activity.html", context)


@router.get("/{activity_id}/dry-run", response_class=HTMLResponse)
def dry_run_page(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    members: Annotated[int, Query(ge=1, le=10_000_000)] = 1000,
    participation: Annotated[int, Query(ge=1, le=100)] = 30,
    draws_per_day: Annotated[str, Query(pattern=r"^([1-9][0-9]?|100)?$")] = "",
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    run: int = 0,
) -> Response:
    """The form and, once submitted (``run``), the dry run's answer: the same service as
    the API's. A GET: nothing is written."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
    result, error = None, None
    if run:
        scenario = dry_run.Scenario(
            members=members,
            participation=participation / 100,
            draws_per_day=int(draws_per_day) if draws_per_day else None,
            seed=seed,
        )
        try:
            with unit_of_work(read_only=True) as session:
                result = dry_run.dry_run(
                    session, actor=actor, activity_id=activity_id, scenario=scenario
                )
        except DomainError as exc:
            error = error_key(exc)
    form = {
        "members": members,
        "participation": participation,
        "draws_per_day": draws_per_day,
        "seed": seed,
    }
    context = {
        "activity": activity,
        "form": form,
        "result": result,
        "error": error,
        "draws_max": dry_run.DRAWS_MAX,
        "active": "nav.activities",
    }
    return render(request, "console/activity_dry_run.html", context)


@router.get("/{activity_id}/vote-preview", response_class=HTMLResponse)
def vote_preview_page(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    """The vote's dry run: its limits as members will meet them, and what does not add up
    (the API's ``GET /activities/{id}/vote-preview``)."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
        found = vote_preview.preview(session, actor=actor, activity_id=activity_id)
    context = {"activity": activity, "preview": found, "active": "nav.activities"}
    return render(request, "console/activity_vote_preview.html", context)


@router.get("/{activity_id}/stats", response_class=HTMLResponse)
def stats_fragment(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    """The figures HTMX polls while the activity runs."""
    return render(request, "console/_stats.html", _dashboard(request, user, activity_id))


@router.post("/{activity_id}/publish")
def publish(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)

    def publish_it() -> None:
        with unit_of_work() as session:
            activities.publish(session, actor=_actor(request, user), activity_id=activity_id)

    return back_to(f"/console/activities/{activity_id}", publish_it)


@router.post("/{activity_id}/stocks/{stock_id}/{move}")
def move_stock(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    stock_id: Id,
    move: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Pause or restart a voucher stock at WeChat Pay: the same service as the API's."""
    check_csrf(request, user, csrf)
    target = f"/console/activities/{activity_id}"
    if move not in ("pause", "restart"):
        return RedirectResponse(target, status_code=303)
    return back_to(
        target,
        lambda: voucher_grab_stocks.move_stock(
            actor=_actor(request, user),
            activity_id=activity_id,
            stock_id=stock_id,
            move="pause" if move == "pause" else "restart",
        ),
    )


_LIFECYCLE = {
    "pause": activities.pause,
    "resume": activities.resume,
    "end": activities.end,
}


@router.post("/{activity_id}/{action}")
def change_state(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    action: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Pause, resume or end: the same service calls as the API's."""
    check_csrf(request, user, csrf)
    target = f"/console/activities/{activity_id}"
    step = _LIFECYCLE.get(action)
    if step is None:
        return RedirectResponse(target, status_code=303)

    def take_step() -> None:
        with unit_of_work() as session:
            step(session, actor=_actor(request, user), activity_id=activity_id)

    return back_to(target, take_step)


@router.get("/{activity_id}/winners.xlsx")
def winners_xlsx(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    locale = request_locale(request)
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(
            session, actor=_actor(request, user), activity_id=activity_id
        )
        draft = activity.status == ActivityStatus.DRAFT or activity.kind == "quiz"
        rows = [] if draft else proof.winners(session, activity_id=activity.id, limit=1000)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = translate(locale, "dash.winners")
    sheet.append([translate(locale, k) for k in ("dash.winner", "dash.prize", "dash.won_at")])
    zone = display_zone()
    for row in reversed(rows):  # oldest first, as a list to work through
        at = row["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        sheet.append(safe_row([row["name"], row["prize"], at]))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return xlsx.attachment(buffer.getvalue(), f"winners-{activity_id}.xlsx")


@router.get("/{activity_id}/ledger.xlsx")
def ledger_xlsx(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        activity = activities.get_activity(
            session, actor=_actor(request, user), activity_id=activity_id
        )
        body = export.to_xlsx(session, activity_id=activity.id)
    return xlsx.attachment(body, f"ledger-{activity_id}.xlsx")
