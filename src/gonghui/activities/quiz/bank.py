"""Each org's question bank: questions created one by one or imported from XLSX.

XLSX layout (first sheet, first row is the header; Chinese or English names):
``kind/题型`` (single|multiple|true_false or 单选|多选|判断), ``text/题目``,
``options/选项`` (separated by ``|``; may be empty for true/false), ``answer/答案``
(letters such as ``A`` or ``AC``; 对/错 or true/false for true/false), ``explanation/解析``,
``tag/标签``. An import is all or nothing: any bad row refuses the file, row by row.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.quiz.errors import QuizError
from gonghui.activities.quiz.models import Question, QuestionKind
from gonghui.activities.quiz.schemas import QuestionCreate
from gonghui.audit import service as audit
from gonghui.errors import InvalidInput, field_error
from gonghui.settings import get_settings
from gonghui.tenancy import Actor, Permission, require_org
from gonghui.xlsx import SheetError, sheet_rows

MANAGE = Permission.ACTIVITIES_MANAGE

_HEADERS = {
    "kind": "kind", "题型": "kind",
    "text": "text", "题目": "text",
    "options": "options", "选项": "options",
    "answer": "answer", "答案": "answer",
    "explanation": "explanation", "解析": "explanation",
    "tag": "tag", "标签": "tag",
}  # fmt: skip
_KINDS = {
    "single": QuestionKind.SINGLE, "单选": QuestionKind.SINGLE,
    "multiple": QuestionKind.MULTIPLE, "多选": QuestionKind.MULTIPLE,
    "true_false": QuestionKind.TRUE_FALSE, "判断": QuestionKind.TRUE_FALSE,
}  # fmt: skip
_TRUE = {"对", "true", "正确", "√", "t", "a"}
_FALSE = {"错", "false", "错误", "×", "f", "b"}


def create_question(
    session: Session, *, actor: Actor, org_id: int, data: QuestionCreate
) -> Question:
    org = require_org(session, actor, MANAGE, org_id)
    question = Question(org_id=org.id, **data.model_dump())
    session.add(question)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="quiz.question_create",
        org_id=org.id,
        subject_type="quiz_question",
        subject_id=question.id,
    )
    return question


def list_questions(
    session: Session, *, actor: Actor, org_id: int, tag: str | None = None
) -> list[Question]:
    org = require_org(session, actor, MANAGE, org_id)
    stmt = select(Question).where(Question.org_id == org.id)
    if tag is not None:
        stmt = stmt.where(Question.tag == tag)
    return list(session.scalars(stmt.order_by(Question.id)))


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _parse_row(values: dict[str, str]) -> QuestionCreate:
    kind = _KINDS.get(values.get("kind", "").lower())
    if kind is None:
        raise ValueError("kind: single|multiple|true_false (单选|多选|判断)")
    options = [o.strip() for o in values.get("options", "").split("|") if o.strip()]
    raw_answer = values.get("answer", "").strip().lower()
    if kind is QuestionKind.TRUE_FALSE:
        options = options or ["对", "错"]
        if raw_answer in _TRUE:
            answer = [0]
        elif raw_answer in _FALSE:
            answer = [1]
        else:
            raise ValueError("answer: 对/错 (true/false)")
    else:
        letters = [c for c in raw_answer.upper() if not c.isspace() and c not in ",，"]
        if not letters or any(not "A" <= c <= "Z" for c in letters):
            raise ValueError("answer: option letters such as A or AC")
        answer = [ord(c) - ord("A") for c in letters]
    return QuestionCreate(
        kind=kind,
        text=values.get("text", ""),
        options=options,
        answer=answer,
        explanation=values.get("explanation", ""),
        tag=values.get("tag") or None,
    )


def _bad_file(message: str) -> InvalidInput:
    return InvalidInput(
        QuizError.BAD_IMPORT, message, [field_error("file", QuizError.BAD_IMPORT, message)]
    )


def parse_xlsx(source: BinaryIO) -> list[QuestionCreate]:
    """The questions of a workbook, every row valid, or :class:`InvalidInput` listing the
    bad rows. Needs no session: callers parse before they open a write transaction.
    Rows count against ``GONGHUI_QUESTION_IMPORT_MAX_ROWS``, blank ones too."""
    rows = sheet_rows(source, max_rows=get_settings().question_import_max_rows)
    parsed: list[QuestionCreate] = []
    errors: list[dict[str, str]] = []
    try:
        _, first = next(rows, (0, ()))
        header = [_HEADERS.get(_cell(h).lower(), _HEADERS.get(_cell(h), "")) for h in first]
        if "text" not in header or "kind" not in header:
            raise InvalidInput(
                QuizError.BAD_IMPORT,
                "the first row must name the columns (kind, text, options, answer, ...)",
                [field_error("file", QuizError.BAD_IMPORT, "missing header row")],
            )
        for number, row in rows:
            values = {name: _cell(v) for name, v in zip(header, row, strict=False) if name}
            if not any(values.values()):
                continue
            try:
                parsed.append(_parse_row(values))
            except ValidationError as exc:
                message = "; ".join(e["msg"] for e in exc.errors())
                errors.append(field_error(f"row {number}", QuizError.BAD_QUESTION, message))
            except ValueError as exc:
                errors.append(field_error(f"row {number}", QuizError.BAD_QUESTION, str(exc)))
    except SheetError as exc:
        raise _bad_file(str(exc)) from exc
    finally:
        rows.close()
    if errors:
        raise InvalidInput(QuizError.BAD_IMPORT, f"{len(errors)} rows are not valid", errors)
    return parsed


def add_questions(
    session: Session, *, actor: Actor, org_id: int, questions: list[QuestionCreate]
) -> int:
    """Add imported questions (see :func:`parse_xlsx`) to the org's bank; returns how many."""
    org = require_org(session, actor, MANAGE, org_id)
    session.add_all(Question(org_id=org.id, **q.model_dump()) for q in questions)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="quiz.question_import",
        org_id=org.id,
        subject_type="org",
        subject_id=org.id,
        details={"created": len(questions)},
    )
    return len(questions)
