"""merchants: merchants, cashiers and redemptions of union vouchers

Revision ID: 20261203_merchants
Revises: 20261203_voucher_grab
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261203_merchants"
down_revision: str | None = "20261203_voucher_grab"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchants_merchant",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_merchants_merchant_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants_merchant")),
    )
    op.create_index(op.f("ix_merchants_merchant_org_id"), "merchants_merchant", ["org_id"])

    op.create_table(
        "merchants_cashier",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("merchant_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants_merchant.id"],
            name=op.f("fk_merchants_cashier_merchant_id_merchants_merchant"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_merchants_cashier_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants_cashier")),
        sa.UniqueConstraint("user_id", name=op.f("uq_merchants_cashier_user_id")),
    )
    op.create_index(op.f("ix_merchants_cashier_merchant_id"), "merchants_cashier", ["merchant_id"])

    op.create_table(
        "merchants_redemption",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("voucher_id", ID, nullable=False),
        sa.Column("merchant_id", ID, nullable=False),
        sa.Column("cashier_id", ID, nullable=False),
        sa.Column("membership_id", ID, nullable=False),
        sa.Column("value_cents", sa.Integer(), nullable=False),
        sa.Column("order_cents", sa.Integer(), nullable=False),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cashier_id"],
            ["merchants_cashier.id"],
            name=op.f("fk_merchants_redemption_cashier_id_merchants_cashier"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_merchants_redemption_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants_merchant.id"],
            name=op.f("fk_merchants_redemption_merchant_id_merchants_merchant"),
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"],
            ["benefits_voucher.id"],
            name=op.f("fk_merchants_redemption_voucher_id_benefits_voucher"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants_redemption")),
        sa.UniqueConstraint("voucher_id", name=op.f("uq_merchants_redemption_voucher_id")),
    )
    op.create_index(
        "ix_merchants_redemption_merchant_at", "merchants_redemption", ["merchant_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("merchants_redemption")
    op.drop_table("merchants_cashier")
    op.drop_table("merchants_merchant")
