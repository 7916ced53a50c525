"""open scopes: staff approvals of the scopes that act for a client's org

Revision ID: 20261211_open_scopes
Revises: 20261213_service_catalogue
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261211_open_scopes"
down_revision: str | None = "20261213_service_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "openplatform_staff_approval",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("approved_by", _ID, nullable=False),
        sa.Column("approved_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by"],
            ["accounts_user.id"],
            name=op.f("fk_openplatform_staff_approval_approved_by_accounts_user"),
        ),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["openplatform_client.id"],
            name=op.f("fk_openplatform_staff_approval_client_pk_openplatform_client"),
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by"],
            ["accounts_user.id"],
            name=op.f("fk_openplatform_staff_approval_withdrawn_by_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openplatform_staff_approval")),
    )
    with op.batch_alter_table("openplatform_staff_approval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_openplatform_staff_approval_client_pk"), ["client_pk"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("openplatform_staff_approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_openplatform_staff_approval_client_pk"))
    op.drop_table("openplatform_staff_approval")
