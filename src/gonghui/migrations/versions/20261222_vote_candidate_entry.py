"""vote: a candidate may stand for a competition entry (the competition's public vote)

Revision ID: 20261222_vote_candidate_entry
Revises: 20261221_roster_name_prefix
Create Date: 2026-12-05 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261222_vote_candidate_entry"
down_revision: str | None = "20261221_roster_name_prefix"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activities_vote_candidate", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_activities_vote_candidate_entry_id_activities_competition_entry"),
            "activities_competition_entry",
            ["entry_id"],
            ["id"],
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_activities_vote_candidate_activity_id_entry_id"),
            ["activity_id", "entry_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("activities_vote_candidate", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_activities_vote_candidate_activity_id_entry_id"), type_="unique"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_activities_vote_candidate_entry_id_activities_competition_entry"),
            type_="foreignkey",
        )
        batch_op.drop_column("entry_id")
