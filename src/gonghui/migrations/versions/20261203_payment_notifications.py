"""payments: WeChat Pay's notifications, each kept once by its id

Revision ID: 20261203_payment_notifications
Revises: 20261202_task_queue
Create Date: 2026-12-03 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261203_payment_notifications"
down_revision: str | None = "20261202_task_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments_notification",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("received_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments_notification")),
    )


def downgrade() -> None:
    op.drop_table("payments_notification")
