"""risk: per-activity limits, captcha challenges, anomaly flags

Revision ID: 20261207_risk_control
Revises: 20261207_voucher_sends_waiting
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261207_risk_control"
down_revision: str | None = "20261207_voucher_sends_waiting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = gonghui.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "risk_policy",
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_by", ID, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_risk_policy_activity_id_activities_activity"),
        ),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_risk_policy")),
    )
    op.create_table(
        "risk_challenge",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("membership_id", ID, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("answer_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", ID, nullable=False),
        sa.Column("renders", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("solved_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_challenge")),
    )
    op.create_index(
        op.f("ix_risk_challenge_membership_id"), "risk_challenge", ["membership_id"], unique=False
    )
    op.create_index(
        op.f("ix_risk_challenge_expires_at"), "risk_challenge", ["expires_at"], unique=False
    )
    op.create_table(
        "risk_flag",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("activity_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("dedupe", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("reviewed_by", ID, nullable=True),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_risk_flag_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_flag")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_risk_flag_dedupe")),
    )
    op.create_index(op.f("ix_risk_flag_activity_id"), "risk_flag", ["activity_id"], unique=False)
    op.create_index("ix_risk_flag_org_status", "risk_flag", ["org_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_table("risk_flag")
    op.drop_table("risk_challenge")
    op.drop_table("risk_policy")
