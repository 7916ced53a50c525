"""The analytics API's answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from gonghui.analytics.service import Overview


class MonthRead(BaseModel):
    month: str
    roster_members: int
    verified_members: int
    active_members: int
    participations: int
    # Active members as a share of verified members ("one activity a month").
    coverage: float | None


class BenefitRead(BaseModel):
    month: str
    kind: str
    issued_count: int
    issued_amount: int
    used_count: int
    used_amount: int


class OrgPartRead(BaseModel):
    org_id: int
    name: str
    own: bool
    roster_members: int
    verified_members: int
    active_members: int
    coverage: float | None
    issued_count: int
    used_count: int


class ActivityFiguresRead(BaseModel):
    activity_id: int
    title: str
    kind: str
    org_name: str
    month: str
    participants: int
    participations: int
    eligible_members: int
    participation_rate: float | None
    budget_cents: int | None
    spent_cents: int
    budget_points: int | None
    spent_points: int


class BudgetRead(BaseModel):
    activities: int
    budget_cents: int
    spent_cents: int
    budget_points: int
    spent_points: int


class OverviewRead(BaseModel):
    org_id: int
    org_name: str
    months: list[str]
    computed_at: datetime | None
    monthly: list[MonthRead]
    benefits: list[BenefitRead]
    orgs: list[OrgPartRead]
    activities: list[ActivityFiguresRead]
    budget: BudgetRead

    @classmethod
    def of(cls, o: Overview) -> OverviewRead:
        return cls(
            org_id=o.org_id,
            org_name=o.org_name,
            months=o.months,
            computed_at=o.computed_at,
            monthly=[
                MonthRead(
                    month=m.month,
                    roster_members=m.roster_members,
                    verified_members=m.verified_members,
                    active_members=m.active_members,
                    participations=m.participations,
                    coverage=m.coverage,
                )
                for m in o.monthly
            ],
            benefits=[BenefitRead(**b.__dict__) for b in o.benefits],
            orgs=[OrgPartRead(**p.__dict__, coverage=p.coverage) for p in o.orgs],
            activities=[
                ActivityFiguresRead(**a.__dict__, participation_rate=a.rate) for a in o.activities
            ],
            budget=BudgetRead(
                activities=o.activity_count,
                budget_cents=o.budget_cents,
                spent_cents=o.spent_cents,
                budget_points=o.budget_points,
                spent_points=o.spent_points,
            ),
        )


class RefreshRequest(BaseModel):
    # A full run recomputes every month (platform admins only).
    full: bool = False


class RefreshQueued(BaseModel):
    task_id: int
    computed_at: datetime | None
