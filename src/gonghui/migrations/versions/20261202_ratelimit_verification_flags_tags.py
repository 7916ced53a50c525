"""rate-limit counters; verification flags; roster tags

The shared rate-limit table (gonghui.ratelimit) replaces the per-user verification attempt
rows; ID numbers tried from several accounts are flagged to their union's staff; roster
entries carry the union's tags for the person.

Revision ID: 20261202_ratelimit
Revises: 20261202_session_kind
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261202_ratelimit"
down_revision: str | None = "20261202_session_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ratelimit_counter",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ratelimit_counter")),
    )
    op.create_index(
        op.f("ix_ratelimit_counter_window_ends_at"),
        "ratelimit_counter",
        ["window_ends_at"],
        unique=False,
    )
    op.create_table(
        "members_verification_flag",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("id_number_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("roster_entry_id", _ID, nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_members_verification_flag_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["roster_entry_id"],
            ["members_roster_entry.id"],
            name=op.f("fk_members_verification_flag_roster_entry_id_members_roster_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"],
            ["accounts_user.id"],
            name=op.f("fk_members_verification_flag_resolved_by_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members_verification_flag")),
        sa.UniqueConstraint(
            "id_number_hash", name=op.f("uq_members_verification_flag_id_number_hash")
        ),
    )
    op.create_index(
        op.f("ix_members_verification_flag_org_id"),
        "members_verification_flag",
        ["org_id"],
        unique=False,
    )
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
    with op.batch_alter_table("members_verification_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_members_verification_attempt_user_at")
    op.drop_table("members_verification_attempt")


def downgrade() -> None:
    op.create_table(
        "members_verification_attempt",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
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
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.drop_column("tags")
    op.drop_index(
        op.f("ix_members_verification_flag_org_id"), table_name="members_verification_flag"
    )
    op.drop_table("members_verification_flag")
    op.drop_index(op.f("ix_ratelimit_counter_window_ends_at"), table_name="ratelimit_counter")
    op.drop_table("ratelimit_counter")
