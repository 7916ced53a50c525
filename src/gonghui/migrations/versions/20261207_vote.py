"""activities: praise votes (candidates, the vote log, the frozen result)

Revision ID: 20261207_vote
Revises: 20261207_risk_control
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261207_vote"
down_revision: str | None = "20261207_risk_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = gonghui.db.UTCDateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
    )


def upgrade() -> None:
    t = "activities_vote_candidate"
    op.create_table(
        t,
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("photo_file_id", ID, nullable=True),
        sa.Column("video_file_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_reason", sa.String(length=200), nullable=True),
        sa.Column("votes", sa.BigInteger(), nullable=False),
        sa.Column("nominated_by", ID, nullable=True),
        sa.Column("reviewed_by", ID, nullable=True),
        sa.Column("reviewed_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk(t, "activity_id", "activities_activity"),
        _fk(t, "org_id", "orgs_org"),
        _fk(t, "nominated_by", "accounts_user"),
        _fk(t, "reviewed_by", "accounts_user"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_activity_id"), t, ["activity_id"], unique=False)
    op.create_index(op.f(f"ix_{t}_org_id"), t, ["org_id"], unique=False)

    t = "activities_vote"
    op.create_table(
        t,
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("candidate_id", ID, nullable=False),
        sa.Column("membership_id", ID, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("voided_at", WHEN, nullable=True),
        sa.Column("voided_by", ID, nullable=True),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        _fk(t, "activity_id", "activities_activity"),
        _fk(t, "candidate_id", "activities_vote_candidate"),
        _fk(t, "membership_id", "members_membership"),
        _fk(t, "voided_by", "accounts_user"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_activities_vote_activity_id_id", t, ["activity_id", "id"], unique=False)
    op.create_index(op.f(f"ix_{t}_membership_id"), t, ["membership_id"], unique=False)

    t = "activities_vote_result"
    op.create_table(
        t,
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("frozen_at", WHEN, nullable=False),
        sa.Column("frozen_by", ID, nullable=True),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("voided", sa.BigInteger(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("log_hash", sa.String(length=64), nullable=False),
        _fk(t, "activity_id", "activities_activity"),
        _fk(t, "frozen_by", "accounts_user"),
        sa.PrimaryKeyConstraint("activity_id", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    op.drop_table("activities_vote_result")
    op.drop_index(op.f("ix_activities_vote_membership_id"), table_name="activities_vote")
    op.drop_index("ix_activities_vote_activity_id_id", table_name="activities_vote")
    op.drop_table("activities_vote")
    op.drop_index(
        op.f("ix_activities_vote_candidate_org_id"), table_name="activities_vote_candidate"
    )
    op.drop_index(
        op.f("ix_activities_vote_candidate_activity_id"), table_name="activities_vote_candidate"
    )
    op.drop_table("activities_vote_candidate")
