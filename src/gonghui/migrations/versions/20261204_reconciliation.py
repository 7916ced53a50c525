"""reconciliation: daily reports and their differences

Revision ID: 20261204_reconciliation
Revises: 20261204_mall
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261204_reconciliation"
down_revision: str | None = "20261204_mall"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconciliation_report",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("made_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_report")),
        sa.UniqueConstraint("day", name=op.f("uq_reconciliation_report_day")),
    )
    op.create_table(
        "reconciliation_difference",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("report_id", ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("ours_cents", sa.Integer(), nullable=True),
        sa.Column("theirs_cents", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reconciliation_report.id"],
            name=op.f("fk_reconciliation_difference_report_id_reconciliation_report"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_difference")),
    )
    op.create_index(
        op.f("ix_reconciliation_difference_report_id"), "reconciliation_difference", ["report_id"]
    )


def downgrade() -> None:
    op.drop_table("reconciliation_difference")
    op.drop_table("reconciliation_report")
