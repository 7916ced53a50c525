"""accounts: staff TOTP second factor

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_totp",
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("enabled_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["accounts_user.id"], name=op.f("fk_accounts_totp_user_id_accounts_user")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_accounts_totp")),
    )


def downgrade() -> None:
    op.drop_table("accounts_totp")
