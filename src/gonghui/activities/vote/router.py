"""Praise votes over HTTP: members (H5) list candidates, vote and see the ranking;
operators (console) nominate, review, watch, void and freeze; anyone reads the published
result and downloads its log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui import hotwrite, risk
from gonghui.activities.vote import candidates, cast, media, preview, results
from gonghui.activities.vote.models import Candidate, CandidateStatus, Vote
from gonghui.db import unit_of_work
from gonghui.deps import (
    CurrentMember,
    CurrentStaff,
    MemberAction,
    SessionDep,
    public_log_download,
)
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["vote"])


class CandidateWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    profile: str = Field(default="", max_length=5000)
    category: str = Field(default="", max_length=32)
    photo_file_id: Id | None = None
    video_file_id: Id | None = None


class Nomination(CandidateWrite):
    org_id: Id = Field(description="the nominating union")


class CandidateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    profile: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, max_length=32)
    photo_file_id: Id | None = None
    video_file_id: Id | None = None


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=200)


class CandidateRead(BaseModel):
    """A candidate as members see it; ``votes`` is None while counts are hidden. The
    photo and video download by signed URLs, without a key, until ``media_expires_at``
    (epoch seconds): read the candidate again for fresh ones."""

    id: int
    activity_id: int
    org_id: int
    name: str
    profile: str
    category: str
    photo_file_id: int | None
    video_file_id: int | None
    photo_url: str | None
    photo_thumbnail_url: str | None
    video_url: str | None
    media_expires_at: int | None
    votes: int | None


class NominationRead(CandidateRead):
    status: str
    review_reason: str | None
    created_at: datetime
    reviewed_at: datetime | None


class VoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate_id: Id


class VoteRead(BaseModel):
    vote_id: int
    activity_id: int
    candidate_id: int
    at: datetime
    votes_left_today: int
    votes_left_total: int | None


class Remaining(BaseModel):
    day: str
    votes_left_today: int
    votes_left_total: int | None
    per_candidate_per_day: int
    used_by_candidate_today: dict[int, int]


class StandingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    candidate_id: int
    name: str
    org_id: int
    org_name: str
    category: str
    votes: int | None


class RankingRead(BaseModel):
    activity_id: int
    at: datetime
    frozen: bool
    counts_hidden: bool
    items: list[StandingRead]


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class LoggedVote(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    candidate_id: int
    membership_id: int
    day: str
    at: datetime
    voided_at: datetime | None
    void_reason: str | None


class ResultRead(BaseModel):
    activity_id: int
    frozen_at: datetime
    entries: int
    voided: int
    totals: list[dict[str, Any]]
    log_hash: str
    hash: str


def _candidate(c: Candidate, m: media.Media, votes: int | None) -> dict[str, Any]:
    """The fields of :class:`CandidateRead` (a nomination adds its review's)."""
    return {
        "id": c.id,
        "activity_id": c.activity_id,
        "org_id": c.org_id,
        "name": c.name,
        "profile": c.profile,
        "category": c.category,
        "photo_file_id": c.photo_file_id,
        "video_file_id": c.video_file_id,
        "photo_url": m.photo_url,
        "photo_thumbnail_url": m.photo_thumbnail_url,
        "video_url": m.video_url,
        "media_expires_at": m.expires_at,
        "votes": votes,
    }


def _nominations(session: Session, found: list[Candidate]) -> list[NominationRead]:
    signed = media.media(session, found)
    return [
        NominationRead(
            **_candidate(c, signed[c.id], c.votes),
            status=str(c.status),
            review_reason=c.review_reason,
            created_at=c.created_at,
            reviewed_at=c.reviewed_at,
        )
        for c in found
    ]


def _member_candidates(
    session: Session, found: list[Candidate], ranking: results.Ranking
) -> list[CandidateRead]:
    counts = {s.candidate_id: s.votes for s in ranking.items}
    signed = media.media(session, found)
    return [
        CandidateRead(
            **_candidate(c, signed[c.id], None if ranking.counts_hidden else counts.get(c.id, 0))
        )
        for c in found
    ]


def _ranking(r: results.Ranking) -> RankingRead:
    return RankingRead(
        activity_id=r.activity_id,
        at=r.at,
        frozen=r.frozen,
        counts_hidden=r.counts_hidden,
        items=[
            StandingRead(
                candidate_id=s.candidate_id,
                name=s.name,
                org_id=s.org_id,
                org_name=s.org_name,
                category=s.category,
                votes=None if r.counts_hidden else s.votes,
            )
            for s in r.items
        ],
    )


# -- members (H5) ------------------------------------------------------------------------------


@router.get("/activities/{activity_id}/candidates")
def list_candidates(
    activity_id: Id, member: CurrentMember, session: SessionDep, category: str | None = None
) -> list[CandidateRead]:
    """The vote's approved candidates (by id), with counts unless the vote hides them."""
    activity = candidates.member_vote(session, member=member, activity_id=activity_id)
    ranking = results.member_ranking(session, activity=activity)
    found = candidates.approved(session, activity_id=activity.id, category=category)
    return _member_candidates(session, list(found), ranking)


@router.get("/activities/{activity_id}/candidates/{candidate_id}")
def get_candidate(
    activity_id: Id, candidate_id: Id, member: CurrentMember, session: SessionDep
) -> CandidateRead:
    activity = candidates.member_vote(session, member=member, activity_id=activity_id)
    found = candidates.approved_one(session, activity_id=activity.id, candidate_id=candidate_id)
    (read,) = _member_candidates(
        session, [found], results.member_ranking(session, activity=activity)
    )
    return read


@router.post(
    "/activities/{activity_id}/votes", response_model=VoteRead, status_code=status.HTTP_201_CREATED
)
async def cast_vote(
    activity_id: Id,
    body: VoteCreate,
    caller: MemberAction,
) -> Response:
    """Vote once for an approved candidate, screened by risk control first (which may
    answer ``risk.too_fast`` or ``risk.challenge_required``). The vote is in the log and
    counted before this returns; a retry with the same ``Idempotency-Key`` gets the same
    answer."""
    member = caller.member
    await risk.check_async(risk.Action.VOTE, member, caller.risk, activity_id=activity_id)
    result = await hotwrite.run_async(
        cast.cast,
        member=member,
        activity_id=activity_id,
        candidate_id=body.candidate_id,
        idempotency_key=caller.idempotency_key,
    )
    # A candidate's votes jumping far above its recent rate are flagged for review.
    await risk.note_target_async(
        cast.rate_target(activity_id, body.candidate_id), activity_id=activity_id
    )
    return Response(
        VoteRead.model_validate(result).model_dump_json(),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
    )


@router.get("/activities/{activity_id}/votes/remaining")
def remaining(activity_id: Id, member: CurrentMember, session: SessionDep) -> Remaining:
    activity = candidates.member_vote(session, member=member, activity_id=activity_id)
    left = cast.remaining(session, activity=activity, membership_id=member.membership_id)
    return Remaining.model_validate(left)


@router.get("/activities/{activity_id}/ranking", response_model=RankingRead)
async def member_ranking(activity_id: Id, member: CurrentMember) -> Response:
    """The live ranking (refreshed every second); counts hidden while the vote hides them."""

    def read() -> RankingRead:
        with unit_of_work(read_only=True) as session:
            activity = candidates.member_vote(session, member=member, activity_id=activity_id)
            return _ranking(results.member_ranking(session, activity=activity))

    ranking = await run_in_threadpool(read)
    return Response(ranking.model_dump_json(), media_type="application/json")


# -- operators (console) -----------------------------------------------------------------------


def _fields(body: CandidateWrite | CandidateUpdate) -> candidates.CandidateFields:
    return candidates.CandidateFields(
        name=body.name,
        profile=body.profile,
        category=body.category,
        photo_file_id=body.photo_file_id,
        video_file_id=body.video_file_id,
    )


@router.post("/activities/{activity_id}/nominations", status_code=status.HTTP_201_CREATED)
def nominate(
    activity_id: Id, body: Nomination, staff: CurrentStaff, session: SessionDep
) -> NominationRead:
    """Put a candidate forward for the organiser's review (staff of a union below it)."""
    candidate = candidates.nominate(
        session, actor=staff, activity_id=activity_id, org_id=body.org_id, fields=_fields(body)
    )
    return _nominations(session, [candidate])[0]


@router.get("/activities/{activity_id}/nominations")
def nominations(
    activity_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    status: CandidateStatus | None = None,
) -> list[NominationRead]:
    """The review queue (``?status=nominated``) and every candidate, with counts."""
    found = candidates.queue(session, actor=staff, activity_id=activity_id, status=status)
    return _nominations(session, list(found))


@router.patch("/activities/{activity_id}/nominations/{candidate_id}")
def update_nomination(
    activity_id: Id,
    candidate_id: Id,
    body: CandidateUpdate,
    staff: CurrentStaff,
    session: SessionDep,
) -> NominationRead:
    candidate = candidates.update(
        session,
        actor=staff,
        activity_id=activity_id,
        candidate_id=candidate_id,
        fields=_fields(body),
        sent=set(body.model_fields_set),
    )
    return _nominations(session, [candidate])[0]


@router.delete(
    "/activities/{activity_id}/nominations/{candidate_id}", status_code=status.HTTP_204_NO_CONTENT
)
def withdraw_nomination(
    activity_id: Id, candidate_id: Id, staff: CurrentStaff, session: SessionDep
) -> Response:
    candidates.withdraw(session, actor=staff, activity_id=activity_id, candidate_id=candidate_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/activities/{activity_id}/nominations/{candidate_id}/review")
def review_nomination(
    activity_id: Id, candidate_id: Id, body: Review, staff: CurrentStaff, session: SessionDep
) -> NominationRead:
    """The organiser approves a candidate (votable) or rejects it with a reason."""
    candidate = candidates.review(
        session,
        actor=staff,
        activity_id=activity_id,
        candidate_id=candidate_id,
        approve=body.decision == "approve",
        reason=body.reason,
    )
    return _nominations(session, [candidate])[0]


@router.get("/activities/{activity_id}/vote-preview")
def vote_preview(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> preview.Preview:
    """The vote's dry run: its limits as a member will meet them over its window, and what
    does not add up (no candidates yet, daily votes members cannot spend, a total out of
    reach, nominations waiting for review). Nothing is written."""
    return preview.preview(session, actor=staff, activity_id=activity_id)


@router.get("/activities/{activity_id}/vote-ranking")
def operator_ranking(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> RankingRead:
    """The ranking with counts, read afresh (the organiser)."""
    return _ranking(results.operator_ranking(session, actor=staff, activity_id=activity_id))


@router.get("/activities/{activity_id}/vote-log")
def operator_log(
    activity_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    after: Count = 0,
    before: Id | None = None,
    candidate_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[LoggedVote]:
    """The votes in order after ``after``, or newest first before ``before``; one
    candidate's only with ``candidate_id``. With membership ids: the organiser reads it
    to void brushed votes."""
    votes = results.operator_log(
        session,
        actor=staff,
        activity_id=activity_id,
        after=after,
        newest_first=before is not None,
        before=before,
        candidate_id=candidate_id,
        limit=limit,
    )
    return [LoggedVote.model_validate(v) for v in votes]


@router.post("/activities/{activity_id}/votes/{vote_id}/void")
def void_vote(
    activity_id: Id, vote_id: Id, body: VoidRequest, staff: CurrentStaff, session: SessionDep
) -> LoggedVote:
    """Void a vote before the result is frozen; its candidate's count goes down by one."""
    vote: Vote = results.void(
        session, actor=staff, activity_id=activity_id, vote_id=vote_id, reason=body.reason
    )
    return LoggedVote.model_validate(vote)


@router.post("/activities/{activity_id}/vote-results")
def freeze(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ResultRead:
    """Freeze and publish the result of an ended vote (once; again answers the same)."""
    return ResultRead.model_validate(
        results.result_view(results.freeze(session, actor=staff, activity_id=activity_id))
    )


# -- anyone ------------------------------------------------------------------------------------


@router.get("/public/votes/{activity_id}/results")
def published_result(activity_id: Id, session: SessionDep) -> ResultRead:
    return ResultRead.model_validate(
        results.result_view(results.published(session, activity_id=activity_id))
    )


@router.get("/public/votes/{activity_id}/log", dependencies=[Depends(public_log_download)])
def published_log(activity_id: Id) -> StreamingResponse:
    """The published result, then the ordered log, as JSON lines: recompute the hash and
    the totals from it (see ``activities/vote/results.py``)."""
    with unit_of_work(read_only=True) as session:
        results.published(session, activity_id=activity_id)

    def lines() -> Any:
        with unit_of_work(read_only=True) as session:
            yield from results.log_lines(session, activity_id=activity_id)

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="vote-{activity_id}-log.jsonl"'},
    )
