"""The console's risk page: the anomaly flags of the operator's subtree (many accounts
from one network, many actions from freshly verified accounts, a candidate's votes
jumping), each with its evidence, confirmed or dismissed with a note (the same services
as the API's ``/risk/flags``). A vote's flag links to the vote log it is about."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from gonghui.activities.models import Activity
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.risk import flags
from gonghui.risk.models import Flag, FlagKind, FlagStatus
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/risk", include_in_schema=False)

PAGE = 50
_VOTE_TARGET = re.compile(r"^target:vote:(\d+):candidate:(\d+)$")


def _log_link(flag: Flag) -> str | None:
    """Where to void a flagged candidate's votes: its vote log."""
    found = _VOTE_TARGET.match(flag.subject) if flag.kind == FlagKind.TARGET_JUMP else None
    if found is None:
        return None
    return f"/console/activities/{found[1]}/vote/log?candidate={found[2]}"


@router.get("", response_class=HTMLResponse)
def flags_page(
    request: Request,
    user: ConsoleStaff,
    status: FlagStatus | Literal[""] = FlagStatus.OPEN,
    before: Id | None = None,
    done: str = "",
    error: str = "",
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = flags.list_flags(
            session, actor=actor, status=status or None, before=before, limit=PAGE
        )
        ids = {f.activity_id for f in found if f.activity_id is not None}
        titles: dict[int | None, str] = dict(
            session.execute(select(Activity.id, Activity.title).where(Activity.id.in_(ids))).all()
        )
    items: list[dict[str, Any]] = [
        {"flag": f, "title": titles.get(f.activity_id), "log": _log_link(f)} for f in found
    ]
    context = {
        "items": items,
        "status": str(status),
        "statuses": [str(s) for s in FlagStatus],
        "older": found[-1].id if len(found) == PAGE else None,
        "done": done if done in ("confirmed", "dismissed") else None,
        "error": error if error.startswith("error.") else None,
        "csrf_token": user.csrf_token,
        "active": "nav.risk",
    }
    return render(request, "console/risk.html", context)


@router.post("/flags/{flag_id}/review")
def review(
    request: Request,
    user: ConsoleStaff,
    flag_id: Id,
    decision: Annotated[Literal["confirmed", "dismissed"], Form()],
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Confirm (the subject stays challenged) or dismiss (let through) an open flag."""
    check_csrf(request, user, csrf)

    def decide() -> None:
        with unit_of_work() as session:
            flags.review(
                session,
                actor=_actor(request, user),
                flag_id=flag_id,
                decision=FlagStatus(decision),
                note=note.strip() or None,
            )

    return back_to("/console/risk", decide, done=decision)
