"""mall: products, SKUs, carts, orders

Revision ID: 20261204_mall
Revises: 20261203_merchants
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261204_mall"
down_revision: str | None = "20261203_merchants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mall_product",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("origin_region", sa.String(length=100), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("on_shelf", sa.Boolean(), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_mall_product_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_product")),
    )
    with op.batch_alter_table("mall_product", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mall_product_org_id"), ["org_id"], unique=False)

    op.create_table(
        "mall_sku",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["mall_product.id"], name=op.f("fk_mall_sku_product_id_mall_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_sku")),
    )
    with op.batch_alter_table("mall_sku", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mall_sku_product_id"), ["product_id"], unique=False)

    op.create_table(
        "mall_cart_item",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sku_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("added_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_mall_cart_item_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["mall_sku.id"], name=op.f("fk_mall_cart_item_sku_id_mall_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_cart_item")),
        sa.UniqueConstraint(
            "membership_id", "sku_id", name=op.f("uq_mall_cart_item_membership_id_sku_id")
        ),
    )
    op.create_table(
        "mall_order",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "member_org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("subsidy_month", sa.String(length=7), nullable=True),
        sa.Column(
            "voucher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("goods_cents", sa.Integer(), nullable=False),
        sa.Column("subsidy_cents", sa.Integer(), nullable=False),
        sa.Column("voucher_cents", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("refund_from", sa.String(length=20), nullable=True),
        sa.Column("due_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("appid", sa.String(length=64), nullable=True),
        sa.Column("openid", sa.String(length=128), nullable=True),
        sa.Column("prepay_id", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=32), nullable=True),
        sa.Column("refund_reason", sa.String(length=200), nullable=True),
        sa.Column("courier_company", sa.String(length=50), nullable=True),
        sa.Column("courier_no", sa.String(length=50), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_mall_order_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["member_org_id"], ["orgs_org.id"], name=op.f("fk_mall_order_member_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_mall_order_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_mall_order_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"],
            ["benefits_voucher.id"],
            name=op.f("fk_mall_order_voucher_id_benefits_voucher"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_order")),
        sa.UniqueConstraint("out_refund_no", name=op.f("uq_mall_order_out_refund_no")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_mall_order_out_trade_no")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_mall_order_transaction_id")),
    )
    with op.batch_alter_table("mall_order", schema=None) as batch_op:
        batch_op.create_index("ix_mall_order_member", ["membership_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mall_order_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_mall_order_state_due", ["state", "due_at"], unique=False)

    op.create_table(
        "mall_order_line",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("sku_name", sa.String(length=100), nullable=False),
        sa.Column("origin_region", sa.String(length=100), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["mall_order.id"], name=op.f("fk_mall_order_line_order_id_mall_order")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["mall_product.id"],
            name=op.f("fk_mall_order_line_product_id_mall_product"),
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["mall_sku.id"], name=op.f("fk_mall_order_line_sku_id_mall_sku")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_order_line")),
    )
    with op.batch_alter_table("mall_order_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mall_order_line_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mall_order_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_order_line_order_id"))

    op.drop_table("mall_order_line")
    with op.batch_alter_table("mall_order", schema=None) as batch_op:
        batch_op.drop_index("ix_mall_order_state_due")
        batch_op.drop_index(batch_op.f("ix_mall_order_org_id"))
        batch_op.drop_index("ix_mall_order_member")

    op.drop_table("mall_order")
    op.drop_table("mall_cart_item")
    with op.batch_alter_table("mall_sku", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_sku_product_id"))

    op.drop_table("mall_sku")
    with op.batch_alter_table("mall_product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_product_org_id"))

    op.drop_table("mall_product")
