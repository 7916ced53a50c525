"""core: one change feed for every per-process cache

``core_cache_change`` replaces the principal change feed (``accounts_principal_change``)
and the catalog stamp (``activities_catalog_stamp``); see ``gonghui.invalidation``. Nothing
is carried over: a process starting reads back the replay window of the new feed, which is
empty, and every process caches afresh.

Revision ID: 20261202_cache_feed
Revises: 20261202_ratelimit
Create Date: 2026-12-02 11:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261202_cache_feed"
down_revision: str | None = "20261202_ratelimit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "core_cache_change",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=True),
        sa.Column("committed_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_cache_change")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_core_cache_change_committed_at"),
        "core_cache_change",
        ["committed_at"],
        unique=False,
    )
    op.drop_index(op.f("ix_accounts_principal_change_at"), table_name="accounts_principal_change")
    op.drop_table("accounts_principal_change")
    op.drop_table("activities_catalog_stamp")


def downgrade() -> None:
    op.create_table(
        "activities_catalog_stamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_catalog_stamp")),
    )
    op.execute(
        sa.text("INSERT INTO activities_catalog_stamp (id, stamp) VALUES (1, :stamp)").bindparams(
            stamp=secrets.token_hex(16)
        )
    )
    op.create_table(
        "accounts_principal_change",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _BIG_ID, nullable=True),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_principal_change")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_accounts_principal_change_at"), "accounts_principal_change", ["at"], unique=False
    )
    op.drop_index(op.f("ix_core_cache_change_committed_at"), table_name="core_cache_change")
    op.drop_table("core_cache_change")
