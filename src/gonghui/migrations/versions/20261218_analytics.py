"""analytics: the scheduled aggregates per (org, month), per benefit kind and per activity

Revision ID: 20261218_analytics
Revises: 20261219_console_pages
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261218_analytics"
down_revision: str | None = "20261219_console_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analytics_org_month",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("roster_members", _ID, nullable=False),
        sa.Column("verified_members", _ID, nullable=False),
        sa.Column("active_members", _ID, nullable=False),
        sa.Column("participations", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_analytics_org_month_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("org_id", "month", name=op.f("pk_analytics_org_month")),
    )
    op.create_table(
        "analytics_benefit_month",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issued_count", _ID, nullable=False),
        sa.Column("issued_amount", _ID, nullable=False),
        sa.Column("used_count", _ID, nullable=False),
        sa.Column("used_amount", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_analytics_benefit_month_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("org_id", "month", "kind", name=op.f("pk_analytics_benefit_month")),
    )
    op.create_table(
        "analytics_activity",
        sa.Column("activity_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("participants", _ID, nullable=False),
        sa.Column("participations", _ID, nullable=False),
        sa.Column("eligible_members", _ID, nullable=False),
        sa.Column("budget_cents", _ID, nullable=True),
        sa.Column("spent_cents", _ID, nullable=False),
        sa.Column("budget_points", _ID, nullable=True),
        sa.Column("spent_points", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_analytics_activity_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_analytics_activity_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_analytics_activity")),
    )
    with op.batch_alter_table("analytics_activity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_activity_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_analytics_activity_month"), ["month"], unique=False)
    op.create_table(
        "analytics_run",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("computed_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("full_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("months", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_run")),
    )


def downgrade() -> None:
    op.drop_table("analytics_run")
    with op.batch_alter_table("analytics_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_activity_month"))
        batch_op.drop_index(batch_op.f("ix_analytics_activity_org_id"))
    op.drop_table("analytics_activity")
    op.drop_table("analytics_benefit_month")
    op.drop_table("analytics_org_month")
