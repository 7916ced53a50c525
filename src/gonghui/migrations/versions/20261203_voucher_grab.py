"""vouchers: a voucher grab's WeChat Pay stocks and members' claims

Revision ID: 20261203_voucher_grab
Revises: 20261203_payment_notifications
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261203_voucher_grab"
down_revision: str | None = "20261203_payment_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vouchers_stock",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("coupon_amount_cents", sa.Integer(), nullable=False),
        sa.Column("threshold_cents", sa.Integer(), nullable=False),
        sa.Column("max_coupons", sa.Integer(), nullable=False),
        sa.Column("max_per_member", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("appid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("wechat_stock_id", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_vouchers_stock_activity_id_activities_activity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers_stock")),
    )
    op.create_index(
        op.f("ix_vouchers_stock_activity_id"), "vouchers_stock", ["activity_id"], unique=False
    )
    op.create_table(
        "vouchers_claim",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("stock_id", ID, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("membership_id", ID, nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("out_request_no", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("coupon_id", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("claimed_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_vouchers_claim_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_vouchers_claim_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["stock_id"],
            ["vouchers_stock.id"],
            name=op.f("fk_vouchers_claim_stock_id_vouchers_stock"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers_claim")),
        sa.UniqueConstraint("coupon_id", name=op.f("uq_vouchers_claim_coupon_id")),
        sa.UniqueConstraint("out_request_no", name=op.f("uq_vouchers_claim_out_request_no")),
    )
    op.create_index(
        op.f("ix_vouchers_claim_stock_id"), "vouchers_claim", ["stock_id"], unique=False
    )
    op.create_index("ix_vouchers_claim_member", "vouchers_claim", ["membership_id", "id"])


def downgrade() -> None:
    op.drop_table("vouchers_claim")
    op.drop_table("vouchers_stock")
