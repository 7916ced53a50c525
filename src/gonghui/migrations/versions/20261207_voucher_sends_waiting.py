"""vouchers: a claim's send waits while its stock is paused (state 'waiting', since when)

Revision ID: 20261207_voucher_sends_waiting
Revises: 20261208_competition
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261207_voucher_sends_waiting"
down_revision: str | None = "20261208_competition"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("state = 'waiting'")


def upgrade() -> None:
    with op.batch_alter_table("vouchers_claim") as batch:
        batch.add_column(
            sa.Column("waiting_since", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_vouchers_claim_waiting",
        "vouchers_claim",
        ["stock_id", "waiting_since"],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_vouchers_claim_waiting", table_name="vouchers_claim")
    with op.batch_alter_table("vouchers_claim") as batch:
        batch.drop_column("waiting_since")
