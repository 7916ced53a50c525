"""API shapes of competitions: registration, panels, the judge's blind view, results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gonghui.types import Count, Id


class RegistrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The form table's fields; checked by the table's own rules.
    answers: dict[str, Any] = Field(default_factory=dict, max_length=100)
    team_name: str | None = Field(default=None, min_length=1, max_length=100)
    # Teammates (not the captain), by membership id.
    member_ids: list[Id] = Field(default_factory=list, max_length=49)
    # A team short of its minimum that teammates complete with the entry's invite code.
    invite: bool = False


class TeamJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invite_code: str = Field(min_length=1, max_length=16)


class SubmissionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_ids: list[Id] = Field(max_length=20)


class MyEntry(BaseModel):
    """A member's own entry. No code: the code is what judges know the entry by."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    activity_id: int
    team_name: str | None
    team_size: int
    # For the entry's own members to pass on: teammates join with it.
    invite_code: str | None
    record_id: int
    file_ids: list[int]
    submitted_at: datetime | None
    created_at: datetime


class EntryRead(BaseModel):
    """An entry as operators see it (to hand entries to panels)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    org_id: int
    captain_membership_id: int
    team_name: str | None
    team_size: int
    record_id: int
    file_ids: list[int]
    submitted_at: datetime | None
    panel_id: int | None


class PanelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class PanelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    activity_id: int
    name: str
    closed_at: datetime | None


class JudgeAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id


class EntriesAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_ids: list[Id] = Field(min_length=1, max_length=1000)


class FileLinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    content_type: str
    url: str


class BlindEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    submitted: bool
    files: list[FileLinkRead]
    my_scores: dict[str, int] | None


class ScoresSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: dict[str, Count] = Field(max_length=20)


class ScoreRead(BaseModel):
    code: str
    scores: dict[str, int]
    updated_at: datetime


class RankedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entry_id: int
    rank: int
    score_micros: int
    judges: int


class PublicLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rank: int
    score: float
    code: str
    team_name: str | None
    names: list[str]
    org_name: str
    public_votes: int | None = Field(
        None, description="votes in the public vote, once its result is frozen"
    )


class PublicResultsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    published: bool
    public_vote_id: int | None = None
    lines: list[PublicLineRead]


class PublicVoteRequest(BaseModel):
    vote_id: Id = Field(description="a praise vote of the competition's own union")


class PublicVoteRead(BaseModel):
    vote_id: int
    added: int = Field(description="entries that became candidates now")
