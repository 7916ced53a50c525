"""mall: refund attempts, why one failed, the abnormal refund applied and where the
money went

Revision ID: 20261205_mall_refund_attempts
Revises: 20261204_voucher_grab_limits
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_mall_refund_attempts"
down_revision: str | None = "20261204_voucher_grab_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mall_order") as batch:
        batch.add_column(
            sa.Column("refund_attempt", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("refund_failure", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("refund_error", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("abnormal_refund", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("refund_account", sa.String(length=64), nullable=True))
    # Orders approved before attempts were counted made their first (``<out_trade_no>R``).
    op.execute("UPDATE mall_order SET refund_attempt = 1 WHERE out_refund_no IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("mall_order") as batch:
        batch.drop_column("refund_account")
        batch.drop_column("abnormal_refund")
        batch.drop_column("refund_error")
        batch.drop_column("refund_failure")
        batch.drop_column("refund_attempt")
