"""members: roster import, verification, transfers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "members_verification_attempt",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_members_verification_attempt_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members_verification_attempt")),
    )
    with op.batch_alter_table("members_verification_attempt", schema=None) as batch_op:
        batch_op.create_index(
            "ix_members_verification_attempt_user_at", ["user_id", "at"], unique=False
        )
    with op.batch_alter_table("members_verification_request", schema=None) as batch_op:
        # One pending review per user, decided by the database rather than check-then-act.
        batch_op.create_index(
            "uq_members_verification_request_pending_user",
            ["user_id"],
            unique=True,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        # Operators list the pending requests of their subtree.
        batch_op.create_index(
            "ix_members_verification_request_status_org", ["status", "org_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("members_verification_request", schema=None) as batch_op:
        batch_op.drop_index("ix_members_verification_request_status_org")
        batch_op.drop_index("uq_members_verification_request_pending_user")
    with op.batch_alter_table("members_verification_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_members_verification_attempt_user_at")
    op.drop_table("members_verification_attempt")
