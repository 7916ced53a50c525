"""competition: teams formed with an invite code (team_size, invite_code)

Revision ID: 20261220_team_invites
Revises: 20261210_oauth_webhooks
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261220_team_invites"
down_revision: str | None = "20261210_oauth_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activities_competition_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "team_size",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="1",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("invite_code", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_activities_competition_entry_activity_id_invite_code"),
            ["activity_id", "invite_code"],
        )
    # Entries registered before: their size is their members (all named at registration).
    op.execute(
        "UPDATE activities_competition_entry SET team_size = (SELECT count(*) FROM "
        "activities_competition_entry_member m WHERE m.entry_id = activities_competition_entry.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("activities_competition_entry", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_activities_competition_entry_activity_id_invite_code"), type_="unique"
        )
        batch_op.drop_column("invite_code")
        batch_op.drop_column("team_size")
