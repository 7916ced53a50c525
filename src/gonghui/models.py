"""Imports every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from gonghui import idempotency
from gonghui import invalidation as core_models
from gonghui.accounts import models as accounts_models
from gonghui.activities import models as activities_models
from gonghui.activities.competition import models as competition_models
from gonghui.activities.lottery import models as lottery_models
from gonghui.activities.quiz import models as quiz_models
from gonghui.activities.templates import models as activity_templates_models
from gonghui.activities.vote import models as vote_models
from gonghui.activities.voucher_grab import models as voucher_grab_models
from gonghui.analytics import models as analytics_models
from gonghui.audit import models as audit_models
from gonghui.baas import models as baas_models
from gonghui.baas.functions import models as functions_models
from gonghui.baas.triggers import models as triggers_models
from gonghui.benefits import models as benefits_models
from gonghui.mall import models as mall_models
from gonghui.members import models as members_models
from gonghui.merchants import models as merchants_models
from gonghui.news import models as news_models
from gonghui.notifications import models as notifications_models
from gonghui.openplatform import models as openplatform_models
from gonghui.orgs import models as orgs_models
from gonghui.payments import models as payments_models
from gonghui.ratelimit import RateCounter
from gonghui.reconciliation import models as reconciliation_models
from gonghui.risk import models as risk_models
from gonghui.tasks import models as tasks_models

__all__ = [
    "accounts_models",
    "activities_models",
    "activity_templates_models",
    "analytics_models",
    "audit_models",
    "baas_models",
    "benefits_models",
    "competition_models",
    "core_models",
    "functions_models",
    "idempotency",
    "lottery_models",
    "mall_models",
    "members_models",
    "merchants_models",
    "notifications_models",
    "news_models",
    "openplatform_models",
    "orgs_models",
    "payments_models",
    "vote_models",
    "quiz_models",
    "RateCounter",
    "reconciliation_models",
    "risk_models",
    "tasks_models",
    "triggers_models",
    "voucher_grab_models",
]
