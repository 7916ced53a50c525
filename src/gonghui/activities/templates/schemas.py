"""API shapes of saved activity templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gonghui.activities.models import ActivityKind
from gonghui.types import Id

# Trimmed, so "月度抽奖" and "月度抽奖 " are one name of the org.
TemplateName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class TemplateSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_id: Id
    name: TemplateName


class TemplateRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TemplateName


class FormChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: Id
    table: str = Field(min_length=1, max_length=63)


class TemplateUse(BaseModel):
    """A new draft from a template: where, when, and optionally under another title."""

    model_config = ConfigDict(extra="forbid")

    org_id: Id
    starts_at: datetime
    ends_at: datetime
    title: str | None = Field(default=None, min_length=1, max_length=200)
    # A competition's registration form in the new draft's union (a template travels down
    # the tree, its form is a table of an app of the union that saved it); its questions'
    # labels stay the template's.
    form: FormChoice | None = None


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    org_name: str
    name: str
    kind: ActivityKind
    title: str
    description: str
    config: dict[str, Any]
    eligibility: dict[str, Any]
    limit_total: int | None
    limit_per_day: int | None
    budget_cents: int | None
    budget_points: int | None
    left_out: list[str]
    source_activity_id: int | None
    created_at: datetime
    updated_at: datetime
