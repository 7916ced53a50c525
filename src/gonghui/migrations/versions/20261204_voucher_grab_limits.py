"""vouchers: each org's share of a campaign, the org a claim counts against, and the index
of the opening-minute dashboard

Revision ID: 20261204_voucher_grab_limits
Revises: 20261204_reconciliation
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_voucher_grab_limits"
down_revision: str | None = "20261204_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vouchers_org_share",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_vouchers_org_share_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_vouchers_org_share_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers_org_share")),
        sa.UniqueConstraint(
            "activity_id", "org_id", name=op.f("uq_vouchers_org_share_activity_id_org_id")
        ),
    )
    with op.batch_alter_table("vouchers_claim") as batch:
        batch.add_column(sa.Column("org_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_vouchers_claim_org_id_orgs_org"), "orgs_org", ["org_id"], ["id"]
        )
    op.create_index(
        "ix_vouchers_claim_activity_state",
        "vouchers_claim",
        ["activity_id", "state", "claimed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_vouchers_claim_activity_state", table_name="vouchers_claim")
    with op.batch_alter_table("vouchers_claim") as batch:
        batch.drop_constraint(op.f("fk_vouchers_claim_org_id_orgs_org"), type_="foreignkey")
        batch.drop_column("org_id")
    op.drop_table("vouchers_org_share")
