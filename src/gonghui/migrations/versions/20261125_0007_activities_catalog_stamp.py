"""activities: the catalog stamp that tells hub caches when activities or orgs changed

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:10:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities_catalog_stamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_catalog_stamp")),
    )
    # Present from the start, so hub caches work on a database upgraded with its data.
    op.execute(
        sa.text("INSERT INTO activities_catalog_stamp (id, stamp) VALUES (1, :stamp)").bindparams(
            stamp=secrets.token_hex(16)
        )
    )


def downgrade() -> None:
    op.drop_table("activities_catalog_stamp")
