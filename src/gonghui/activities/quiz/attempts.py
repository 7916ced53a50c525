"""Quiz attempts: N random questions, answers kept server-side until submission, a
server-enforced time limit, scoring, the reward for passing, and the leaderboard."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gonghui import idempotency
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.lottery.draw import LOTTERY_KINDS
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import (
    chain_ids,
    claim_participation,
    live_activity,
    visible_activity,
)
from gonghui.activities.quiz.errors import QuizError
from gonghui.activities.quiz.models import Attempt, Question
from gonghui.activities.quiz.schemas import (
    AskedQuestion,
    AttemptRead,
    BoardEntry,
    Leaderboard,
    QuestionResult,
    SubmitResult,
)
from gonghui.activities.schemas import ChancesReward, PointsReward, QuizRules
from gonghui.activities.service import quiz_rules
from gonghui.benefits import service as benefits
from gonghui.clock import local_day, now
from gonghui.db import rowcount
from gonghui.errors import Conflict, NotFound
from gonghui.members.models import Membership, RosterEntry
from gonghui.pii import PiiField, masked

QUIZ_KINDS = {ActivityKind.QUIZ, ActivityKind.QUIZ_LOTTERY}
# Network latency between the last answer and the server: not extra thinking time.
SUBMIT_GRACE = timedelta(seconds=2)
_random = secrets.SystemRandom()


def _rules(activity: Activity) -> QuizRules:
    rules = quiz_rules(activity)
    assert rules is not None
    return rules


def start_attempt(session: Session, *, member: MemberInfo, activity_id: int) -> AttemptRead:
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=QUIZ_KINDS)
    rules = _rules(activity)
    if not counters.claim(
        session,
        activity_id=activity.id,
        membership_id=member.membership_id,
        scope=f"attempts:{local_day().isoformat()}",
        granted=rules.attempts_per_day,
    ):
        raise Conflict(QuizError.ATTEMPTS_TODAY, "no attempts left today; come back tomorrow")
    if activity.kind == ActivityKind.QUIZ:
        claim_participation(session, member=member, activity=activity)
    stmt = select(Question.id).where(Question.org_id == activity.org_id)
    if rules.question_tag:
        stmt = stmt.where(Question.tag == rules.question_tag)
    bank = list(session.scalars(stmt))
    if len(bank) < rules.question_count:
        raise Conflict(QuizError.NOT_ENOUGH_QUESTIONS, "the question bank is too small")
    chosen = _random.sample(bank, rules.question_count)
    instant = now()
    attempt = Attempt(
        activity_id=activity.id,
        membership_id=member.membership_id,
        question_ids=chosen,
        started_at=instant,
        deadline=instant + timedelta(seconds=rules.time_limit_s),
    )
    session.add(attempt)
    session.flush()
    questions = {q.id: q for q in session.scalars(select(Question).where(Question.id.in_(chosen)))}
    return AttemptRead(
        attempt_id=attempt.id,
        activity_id=activity.id,
        deadline=attempt.deadline,
        questions=[
            AskedQuestion(id=q.id, kind=q.kind, text=q.text, options=q.options)
            for q in (questions[i] for i in chosen)
        ],
    )


def _reward(
    session: Session, *, member: MemberInfo, activity: Activity, rules: QuizRules
) -> str | None:
    reward = rules.reward
    if isinstance(reward, PointsReward):
        if not benefits.charge_budget(session, activity_id=activity.id, points=reward.points):
            return "budget_exhausted"
        benefits.add_points(
            session,
            membership_id=member.membership_id,
            activity_id=activity.id,
            points=reward.points,
            source=f"quiz:{activity.id}",
        )
        return f"points:{reward.points}"
    if isinstance(reward, ChancesReward):
        target_id = reward.lottery_activity_id or activity.id
        target = session.get(Activity, target_id)
        if (
            target is None
            or target.kind not in LOTTERY_KINDS
            or target.org_id not in chain_ids(member.org_path)
        ):
            return None
        counters.grant(
            session,
            activity_id=target.id,
            membership_id=member.membership_id,
            scope="earned",
            units=reward.chances,
        )
        return f"chances:{reward.chances}@{target.id}"
    return None


def _submit(
    session: Session, *, member: MemberInfo, attempt_id: int, answers: dict[int, list[int]]
) -> dict[str, Any]:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.membership_id != member.membership_id:
        raise NotFound(QuizError.ATTEMPT_NOT_FOUND, f"attempt {attempt_id} not found")
    instant = now()
    # Exactly one submission counts, however many race.
    closed = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.submitted_at.is_(None))
        .values(submitted_at=instant)
        .execution_options(synchronize_session=False)
    )
    if rowcount(closed) != 1:
        raise Conflict(QuizError.ALREADY_SUBMITTED, "this attempt was already submitted")
    session.refresh(attempt)
    activity = session.get(Activity, attempt.activity_id)
    assert activity is not None
    rules = _rules(activity)
    timed_out = instant > attempt.deadline + SUBMIT_GRACE
    ids = [int(i) for i in attempt.question_ids]
    questions = {q.id: q for q in session.scalars(select(Question).where(Question.id.in_(ids)))}
    results = []
    for qid in ids:
        question = questions[qid]
        chosen = [] if timed_out else sorted(set(answers.get(qid, [])))
        results.append(
            QuestionResult(
                id=qid,
                chosen=chosen,
                answer=sorted(question.answer),
                correct=chosen == sorted(question.answer),
                explanation=question.explanation,
            )
        )
    correct = sum(r.correct for r in results)
    score = correct * 100 // len(ids)
    passed = not timed_out and score >= rules.pass_score
    limit_ms = rules.time_limit_s * 1000
    duration_ms = min(int((instant - attempt.started_at).total_seconds() * 1000), limit_ms)
    reward = _reward(session, member=member, activity=activity, rules=rules) if passed else None
    attempt.answers = {str(k): v for k, v in answers.items()}
    attempt.score = score
    attempt.duration_ms = duration_ms
    attempt.passed = passed
    return SubmitResult(
        attempt_id=attempt.id,
        score=score,
        correct=correct,
        total=len(ids),
        passed=passed,
        timed_out=timed_out,
        duration_ms=duration_ms,
        reward=reward,
        results=results,
    ).model_dump(mode="json")


def submit(
    session: Session,
    *,
    member: MemberInfo,
    attempt_id: int,
    answers: dict[int, list[int]],
    idempotency_key: str | None,
) -> SubmitResult:
    body = idempotency.run_once(
        session,
        membership_id=member.membership_id,
        key=idempotency_key,
        operation=f"quiz.submit:{attempt_id}",
        action=lambda: _submit(session, member=member, attempt_id=attempt_id, answers=answers),
    )
    return SubmitResult.model_validate(body)


def score_distribution(session: Session, *, activity_id: int) -> list[tuple[int, int]]:
    """How many submitted attempts scored each score, lowest score first (the organiser's
    view: the caller has checked the activity is theirs to see)."""
    rows = session.execute(
        select(Attempt.score, func.count())
        .where(Attempt.activity_id == activity_id, Attempt.score.is_not(None))
        .group_by(Attempt.score)
        .order_by(Attempt.score)
    )
    return [(int(score or 0), int(n)) for score, n in rows]


def leaderboard(
    session: Session, *, member: MemberInfo, activity_id: int, limit: int = 20
) -> Leaderboard:
    """Each member's best attempt; score desc, duration asc, earlier finish first."""
    activity = visible_activity(session, member=member, activity_id=activity_id)
    order = (Attempt.score.desc(), Attempt.duration_ms.asc(), Attempt.submitted_at.asc())
    best = (
        select(
            Attempt.membership_id,
            Attempt.score,
            Attempt.duration_ms,
            Attempt.submitted_at,
            func.row_number().over(partition_by=Attempt.membership_id, order_by=order).label("nth"),
        )
        .where(Attempt.activity_id == activity.id, Attempt.score.is_not(None))
        .subquery()
    )
    ranked = (
        select(
            best.c.membership_id,
            best.c.score,
            best.c.duration_ms,
            func.rank()
            .over(
                order_by=(
                    best.c.score.desc(),
                    best.c.duration_ms.asc(),
                    best.c.submitted_at.asc(),
                )
            )
            .label("rank"),
        )
        .where(best.c.nth == 1)
        .subquery()
    )
    named = (
        select(ranked, RosterEntry.name_enc)
        .join(Membership, Membership.id == ranked.c.membership_id)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
    )
    rows = session.execute(named.order_by(ranked.c.rank).limit(min(max(limit, 1), 100))).all()
    mine = session.execute(named.where(ranked.c.membership_id == member.membership_id)).first()

    def entry(row: Any) -> BoardEntry:
        return BoardEntry(
            rank=int(row.rank),
            name=masked(PiiField.NAME, row.name_enc),
            score=int(row.score),
            duration_ms=int(row.duration_ms),
        )

    return Leaderboard(top=[entry(r) for r in rows], me=entry(mine) if mine else None)
