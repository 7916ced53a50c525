"""console pages: a shipped prize's courier and tracking number; indexes for the console
home's counts (an activity's prizes by status, its draws, quiz attempts and votes by time)

Revision ID: 20261219_console_pages
Revises: 20261217_membership_applications
Create Date: 2026-12-19 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261219_console_pages"
down_revision: str | None = "20261217_membership_applications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("benefits_prize") as batch:
        batch.add_column(sa.Column("courier_company", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("courier_no", sa.String(length=50), nullable=True))
        batch.add_column(
            sa.Column("shipped_at", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_benefits_prize_activity_status", "benefits_prize", ["activity_id", "status"]
    )
    # The draws' index on the activity becomes one on (activity, time): as many indexes
    # as before for every draw written.
    op.drop_index("ix_activities_lottery_draw_activity_id", table_name="activities_lottery_draw")
    op.create_index(
        "ix_activities_lottery_draw_activity_at", "activities_lottery_draw", ["activity_id", "at"]
    )
    op.create_index(
        "ix_activities_quiz_attempt_activity_started",
        "activities_quiz_attempt",
        ["activity_id", "started_at"],
    )
    op.create_index("ix_activities_vote_activity_at", "activities_vote", ["activity_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_activities_vote_activity_at", table_name="activities_vote")
    op.drop_index(
        "ix_activities_quiz_attempt_activity_started", table_name="activities_quiz_attempt"
    )
    op.drop_index("ix_activities_lottery_draw_activity_at", table_name="activities_lottery_draw")
    op.create_index(
        "ix_activities_lottery_draw_activity_id", "activities_lottery_draw", ["activity_id"]
    )
    op.drop_index("ix_benefits_prize_activity_status", table_name="benefits_prize")
    with op.batch_alter_table("benefits_prize") as batch:
        batch.drop_column("shipped_at")
        batch.drop_column("courier_no")
        batch.drop_column("courier_company")
