"""accounts: the principal change feed

Rows written where a sign-in's resolution changes (revocation, staff roles, membership, the
org tree), so every server process can trust access-token claims until it sees a change.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_principal_change",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_principal_change")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_accounts_principal_change_at"), "accounts_principal_change", ["at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_accounts_principal_change_at"), table_name="accounts_principal_change")
    op.drop_table("accounts_principal_change")
