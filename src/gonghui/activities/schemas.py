"""API shapes of activities; the kind-specific configuration is a discriminated union."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gonghui.activities.lottery.models import PrizeKind
from gonghui.activities.models import ActivityKind, ActivityStatus
from gonghui.types import Amount, Count, Id


class PrizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: PrizeKind
    weight: int = Field(ge=0, le=1_000_000)
    stock: int = Field(default=0, ge=0, le=10_000_000)
    # Cents for a voucher, points for points; unused for physical prizes and no-prize.
    value: int = Field(default=0, ge=0, le=100_000_000)
    threshold_cents: Amount = 0
    valid_days: int = Field(default=30, ge=1, le=3650)
    # A voucher spent only at these merchants (open, of the activity's org subtree);
    # empty: at any merchant of that subtree.
    merchant_ids: list[Id] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _value_for_kind(self) -> PrizeConfig:
        if self.kind in (PrizeKind.VOUCHER, PrizeKind.POINTS) and self.value <= 0:
            raise ValueError(f"a {self.kind} prize needs a positive value")
        if self.merchant_ids and self.kind is not PrizeKind.VOUCHER:
            raise ValueError("only a voucher prize names merchant_ids")
        return self

    @field_validator("merchant_ids")
    @classmethod
    def _each_merchant_once(cls, merchant_ids: list[int]) -> list[int]:
        if len(set(merchant_ids)) != len(merchant_ids):
            raise ValueError("a merchant is named twice")
        return merchant_ids


class LotteryRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prizes: list[PrizeConfig] = Field(min_length=1, max_length=50)
    free_draws_per_day: int = Field(default=1, ge=0, le=100)
    max_wins_per_member: Count | None = Field(default=1, ge=1)
    address_deadline_hours: int = Field(default=72, ge=1, le=24 * 90)

    @model_validator(mode="after")
    def _some_weight(self) -> LotteryRules:
        if sum(p.weight for p in self.prizes) <= 0:
            raise ValueError("at least one prize needs a positive weight")
        return self


class PointsReward(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["points"]
    points: int = Field(ge=1, le=1_000_000)


class ChancesReward(BaseModel):
    """Lottery chances for passing: in ``lottery_activity_id``, or in this activity itself
    (a quiz_lottery) when that is omitted."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["chances"]
    chances: int = Field(ge=1, le=100)
    lottery_activity_id: Id | None = None


Reward = Annotated[PointsReward | ChancesReward, Field(discriminator="type")]


class QuizRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question_count: int = Field(ge=1, le=100)
    time_limit_s: int = Field(ge=10, le=3600)
    pass_score: int = Field(ge=0, le=100, description="percent of questions right to pass")
    attempts_per_day: int = Field(default=3, ge=1, le=100)
    question_tag: str | None = None
    reward: Reward | None = None


class QuizConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["quiz"]
    quiz: QuizRules

    @model_validator(mode="after")
    def _chances_need_a_lottery(self) -> QuizConfig:
        reward = self.quiz.reward
        if isinstance(reward, ChancesReward) and reward.lottery_activity_id is None:
            raise ValueError("a quiz that rewards lottery chances names lottery_activity_id")
        return self


class LotteryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["lottery"]
    lottery: LotteryRules


class QuizLotteryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["quiz_lottery"]
    quiz: QuizRules
    lottery: LotteryRules


class VoucherStockRules(BaseModel):
    """One WeChat Pay 代金券 stock of a voucher grab: ``max_coupons`` coupons of
    ``coupon_amount_cents`` each, spendable on orders of at least ``threshold_cents``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=20, description="WeChat Pay's stock_name")
    coupon_amount_cents: int = Field(ge=1, le=100_000_00)
    threshold_cents: int = Field(default=0, ge=0, le=10_000_000_00)
    max_coupons: int = Field(ge=1, le=10_000_000)
    max_per_member: int = Field(default=1, ge=1, le=60)


class VoucherGrabRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stocks: list[VoucherStockRules] = Field(min_length=1, max_length=10)
    # The WeChat app whose openid receives the coupons; empty: the mini program's.
    appid: str = Field(default="", max_length=64)
    # At most this many coupons of the campaign (all its stocks) for the members of one
    # org (their own union, where their membership is); None: no cap per org.
    max_per_org: int | None = Field(default=None, ge=1, le=10_000_000)


class VoucherGrabConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["voucher_grab"]
    voucher_grab: VoucherGrabRules


class MallRules(BaseModel):
    """A mall sale (see :mod:`gonghui.mall`): the union pays ``subsidy_percent`` of an
    order's goods from the activity's ``budget_cents``, at most
    ``member_cap_cents_per_month`` per member in a calendar month (display time zone)."""

    model_config = ConfigDict(extra="forbid")

    subsidy_percent: int = Field(ge=0, le=100)
    member_cap_cents_per_month: Amount


class MallConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["mall"]
    mall: MallRules


class VoteRules(BaseModel):
    """A praise vote's rules (see :mod:`gonghui.activities.vote`). A member's votes are
    limited per day (Asia/Shanghai), per candidate per day (the usual rule of 评选: one
    can support the same candidate again tomorrow) and, optionally, in all."""

    model_config = ConfigDict(extra="forbid")

    votes_per_day: int = Field(default=1, ge=1, le=1000)
    votes_per_candidate_per_day: int = Field(default=1, ge=1, le=1000)
    votes_total: int | None = Field(default=None, ge=1, le=100_000)
    # Members see no counts (nor the order they make) until the vote ends; operators do.
    hide_counts_until_end: bool = False
    # Empty: candidates name any category; otherwise one of these.
    categories: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("categories")
    @classmethod
    def _categories(cls, categories: list[str]) -> list[str]:
        if any(not 1 <= len(c) <= 32 for c in categories):
            raise ValueError("a category is 1 to 32 characters")
        if len(set(categories)) != len(categories):
            raise ValueError("a category is named twice")
        return categories

    @model_validator(mode="after")
    def _limits_fit(self) -> VoteRules:
        if self.votes_per_candidate_per_day > self.votes_per_day:
            raise ValueError("votes_per_candidate_per_day cannot exceed votes_per_day")
        return self


class VoteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["vote"]
    vote: VoteRules


class Criterion(BaseModel):
    """One line of a judging rubric: a judge scores it from 0 to ``max_score``; its
    ``weight`` is its share of the entry's score (see :mod:`.competition.results`)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str = Field(min_length=1, max_length=100)
    weight: int = Field(ge=1, le=100)
    max_score: int = Field(ge=1, le=1000)


class FormTable(BaseModel):
    """The registration form: a BaaS table of an app of the organiser's org (or below it);
    each registration's answers are one record of it."""

    model_config = ConfigDict(extra="forbid")

    app_id: Id
    table: str = Field(min_length=1, max_length=63)
    # What the member is asked for each field (the table's names are a developer's, e.g.
    # "title"): field name → the question, "作品名称". A field without one shows its name.
    labels: dict[str, Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=dict, max_length=100
    )


class CompetitionRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Teams: a captain registers with ``min_team_size - 1`` to ``max_team_size - 1``
    # teammates; individuals: both sizes are 1.
    teams: bool = False
    min_team_size: int = Field(default=1, ge=1, le=50)
    max_team_size: int = Field(default=1, ge=1, le=50)
    form: FormTable
    registration_opens_at: datetime
    registration_closes_at: datetime
    submission_deadline: datetime
    max_files: int = Field(default=5, ge=0, le=20)
    rubric: list[Criterion] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> CompetitionRules:
        if not self.teams and (self.min_team_size, self.max_team_size) != (1, 1):
            raise ValueError("an individual competition has team sizes of 1")
        if self.min_team_size > self.max_team_size:
            raise ValueError("min_team_size is above max_team_size")
        if self.registration_closes_at <= self.registration_opens_at:
            raise ValueError("registration must close after it opens")
        if self.submission_deadline < self.registration_closes_at:
            raise ValueError("the submission deadline is before registration closes")
        keys = [c.key for c in self.rubric]
        if len(set(keys)) != len(keys):
            raise ValueError("a rubric criterion key is used twice")
        return self


class CompetitionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["competition"]
    competition: CompetitionRules


ActivityConfig = Annotated[
    QuizConfig
    | LotteryConfig
    | QuizLotteryConfig
    | VoucherGrabConfig
    | MallConfig
    | VoteConfig
    | CompetitionConfig,
    Field(discriminator="kind"),
]


class Eligibility(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_membership_days: int = Field(default=0, ge=0, le=36500)
    # Empty: every member; otherwise the member needs at least one of these tags.
    tags_any: list[str] = Field(default_factory=list, max_length=50)


class ActivityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Id
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    starts_at: datetime
    ends_at: datetime
    config: ActivityConfig
    eligibility: Eligibility = Field(default_factory=Eligibility)
    limit_total: Count | None = Field(default=None, ge=1)
    limit_per_day: Count | None = Field(default=None, ge=1)
    budget_cents: Amount | None = None
    budget_points: Amount | None = None


class ActivityUpdate(BaseModel):
    """Only the fields sent change; once published only ``SAFE_WHEN_PUBLISHED`` may."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    config: ActivityConfig | None = None
    eligibility: Eligibility | None = None
    limit_total: Count | None = Field(default=None, ge=1)
    limit_per_day: Count | None = Field(default=None, ge=1)
    budget_cents: Amount | None = None
    budget_points: Amount | None = None


class ActivityRead(BaseModel):
    id: int
    org_id: int
    kind: ActivityKind
    title: str
    description: str
    status: ActivityStatus
    starts_at: datetime
    ends_at: datetime
    config: ActivityConfig
    eligibility: Eligibility
    limit_total: int | None
    limit_per_day: int | None
    budget_cents: int | None
    budget_points: int | None
    seed_commitment: str | None
    cloned_from_id: int | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    ended_at: datetime | None


class MemberState(BaseModel):
    joined: bool
    chances_left: int | None
    prizes_won: int


class HubItem(BaseModel):
    id: int
    org_id: int
    org_name: str
    kind: ActivityKind
    title: str
    status: ActivityStatus
    starts_at: datetime
    ends_at: datetime
    eligible: bool
    me: MemberState


class HubPage(BaseModel):
    items: list[HubItem]
    next_cursor: str | None


class TeaserItem(BaseModel):
    id: int
    org_name: str
    kind: ActivityKind
    title: str
    status: ActivityStatus
    starts_at: datetime
    ends_at: datetime


class TeaserPage(BaseModel):
    items: list[TeaserItem]
    next_cursor: str | None


class PublishedLine(BaseModel):
    rank: int
    # The entry's team name or entrants' names (a competition), the candidate's (a vote).
    name: str
    score: float | None  # a competition's normalised score
    votes: int | None  # a vote's valid votes


class PublishedItem(BaseModel):
    id: int
    org_id: int
    org_name: str
    kind: ActivityKind
    title: str
    published_at: datetime
    top: list[PublishedLine]


class PublishedPage(BaseModel):
    items: list[PublishedItem]
    next_cursor: str | None
