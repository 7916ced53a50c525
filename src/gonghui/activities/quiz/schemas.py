from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gonghui.activities.quiz.models import QuestionKind
from gonghui.types import Count, Id


class QuestionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: QuestionKind
    text: str = Field(min_length=1, max_length=2000)
    options: list[str] = Field(min_length=2, max_length=8)
    answer: list[Count] = Field(min_length=1, description="indexes of the right options")
    explanation: str = Field(default="", max_length=2000)
    tag: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _answer_fits(self) -> QuestionCreate:
        if any(not 0 <= i < len(self.options) for i in self.answer):
            raise ValueError("answer indexes must point at options")
        if len(set(self.answer)) != len(self.answer):
            raise ValueError("answer indexes repeat")
        if self.kind is not QuestionKind.MULTIPLE and len(self.answer) != 1:
            raise ValueError(f"a {self.kind} question has exactly one right answer")
        if self.kind is QuestionKind.TRUE_FALSE and len(self.options) != 2:
            raise ValueError("a true/false question has two options")
        return self


class QuestionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    kind: QuestionKind
    text: str
    options: list[str]
    answer: list[int]
    explanation: str
    tag: str | None


class ImportResult(BaseModel):
    created: int


class AskedQuestion(BaseModel):
    """A question as a member sees it during an attempt: no answer, no explanation."""

    id: int
    kind: QuestionKind
    text: str
    options: list[str]


class AttemptRead(BaseModel):
    attempt_id: int
    activity_id: int
    deadline: datetime
    questions: list[AskedQuestion]


class SubmitRequest(BaseModel):
    answers: dict[Id, list[Count]] = Field(default_factory=dict)


class QuestionResult(BaseModel):
    id: int
    chosen: list[int]
    answer: list[int]
    correct: bool
    explanation: str


class SubmitResult(BaseModel):
    attempt_id: int
    score: int
    correct: int
    total: int
    passed: bool
    timed_out: bool
    duration_ms: int
    reward: str | None
    results: list[QuestionResult]


class BoardEntry(BaseModel):
    rank: int
    name: str | None
    score: int
    duration_ms: int


class Leaderboard(BaseModel):
    top: list[BoardEntry]
    me: BoardEntry | None
