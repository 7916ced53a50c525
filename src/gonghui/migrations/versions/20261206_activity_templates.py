"""activities: saved templates (an activity's design under a name, shared down the tree)

Revision ID: 20261206_activity_templates
Revises: 20261206_voucher_merchants
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261206_activity_templates"
down_revision: str | None = "20261206_voucher_merchants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "activities_activity_template",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("eligibility", sa.JSON(), nullable=False),
        sa.Column("limit_total", sa.Integer(), nullable=True),
        sa.Column("limit_per_day", sa.Integer(), nullable=True),
        sa.Column("budget_cents", sa.Integer(), nullable=True),
        sa.Column("budget_points", sa.Integer(), nullable=True),
        sa.Column("left_out", sa.JSON(), nullable=False),
        sa.Column("source_activity_id", ID, nullable=True),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs_org.id"],
            name=op.f("fk_activities_activity_template_org_id_orgs_org"),
        ),
        sa.ForeignKeyConstraint(
            ["source_activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_activity_template_source_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts_user.id"],
            name=op.f("fk_activities_activity_template_created_by_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_activity_template")),
        sa.UniqueConstraint(
            "org_id", "name", name=op.f("uq_activities_activity_template_org_id_name")
        ),
    )
    op.create_index(
        op.f("ix_activities_activity_template_org_id"),
        "activities_activity_template",
        ["org_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_activities_activity_template_org_id"), table_name="activities_activity_template"
    )
    op.drop_table("activities_activity_template")
