"""activity templates keep their source's start (a competition's dates move with it)

Revision ID: 20261223_template_anchor
Revises: 20261222_vote_candidate_entry
Create Date: 2026-12-05 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261223_template_anchor"
down_revision: str | None = "20261222_vote_candidate_entry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activities_activity_template", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("anchor_at", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Templates saved before: their source's start, where the source is still there.
    op.execute(
        "UPDATE activities_activity_template SET anchor_at = (SELECT a.starts_at"
        " FROM activities_activity a WHERE a.id = activities_activity_template.source_activity_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("activities_activity_template", schema=None) as batch_op:
        batch_op.drop_column("anchor_at")
