"""benefits: the merchants a union voucher may be spent at, frozen when it is issued

Revision ID: 20261206_voucher_merchants
Revises: 20261205_mall_refund_attempts
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_voucher_merchants"
down_revision: str | None = "20261205_mall_refund_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Vouchers issued before keep NULL: any merchant of the issuing org's subtree.
    with op.batch_alter_table("benefits_voucher") as batch:
        batch.add_column(sa.Column("merchant_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("benefits_voucher") as batch:
        batch.drop_column("merchant_ids")
