"""An activity's design: what a copy, a repeat and a saved template take from it.

The design is the kind, texts, configuration (rules, prize table, voucher stocks as
designed), eligibility, per-member limits and budgets. Everything an activity gathers
once published lives in other tables (prize pools and the stock taken, the draw seed,
voucher stocks with their WeChat Pay ids, counters, draws, claims, orders, ledger rows)
and is never read here, so a copy starts with none of it. Two things in a configuration
point outside the design and are left out (:func:`portable_config`):

- a quiz's chances reward naming another activity (``quiz.reward.lottery_activity_id``):
  that is last month's lottery, over or about to be; the copy's quiz rewards nothing
  until the operator links this month's lottery. A quiz_lottery's own chances (no id)
  stay.
- in a template only, a voucher grab's ``appid`` (which WeChat app's members receive the
  coupons): the template travels down to orgs that may use another app, so there it
  falls back to the deployment's mini program. A repeat stays in its org and keeps it.

A competition's registration window and submission deadline are instants in its
configuration: a copy moves them with its start (:func:`shift_dates`), so "repeat last
month's" opens registration a month later too; a template keeps its source's start
(``anchor_at``) and an activity made from it moves them the same way.

The configuration references no images or files today; anything added that does should be
copied as the reference, never as the bytes.
"""

from __future__ import annotations

import calendar
import copy
from datetime import datetime, timedelta
from typing import Any

from gonghui.clock import display_zone

LINKED_LOTTERY = "config.quiz.reward.lottery_activity_id"
VOUCHER_APPID = "config.voucher_grab.appid"


def portable_config(
    config: dict[str, Any], *, for_template: bool
) -> tuple[dict[str, Any], list[str]]:
    """A deep copy of ``config`` without what ties it to its activity or its org, and the
    fields left out (as ``config.…`` paths, for the operator to see)."""
    out = copy.deepcopy(config)
    left_out: list[str] = []
    quiz: dict[str, Any] = out.get("quiz") or {}
    reward = quiz.get("reward") or {}
    if reward.get("lottery_activity_id") is not None:
        # Without its lottery a quiz's chances reward is invalid: drop the reward whole.
        quiz["reward"] = None
        left_out.append(LINKED_LOTTERY)
    grab = out.get("voucher_grab")
    if for_template and grab and grab.get("appid"):
        grab["appid"] = ""
        left_out.append(VOUCHER_APPID)
    return out, left_out


COMPETITION_DATES = ("registration_opens_at", "registration_closes_at", "submission_deadline")


def shift_dates(config: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """``config`` (JSON, as stored) with a competition's dates moved by ``delta``."""
    rules = config.get("competition")
    if not rules or not delta:
        return config
    out = copy.deepcopy(config)
    for name in COMPETITION_DATES:
        out["competition"][name] = (datetime.fromisoformat(rules[name]) + delta).isoformat()
    return out


def one_month_later(instant: datetime) -> datetime:
    """The same day of the month and wall-clock time one month on, in the display time zone
    (where operators read "the 15th at 10:00"); a day the next month lacks becomes its last
    day: Jan 31 → Feb 28 (29 in a leap year), Mar 31 → Apr 30."""
    local = instant.astimezone(display_zone())
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)
