"""accounts: how a sign-in session was started (staff or member)

Staff roles and the platform-admin flag come only with a session started by the staff
sign-in. Sessions that exist before this revision become member sessions: their channel
tag cannot tell them apart (a phone-code sign-in may name any channel, "console"
included), so a staff member signs in again once with password (and TOTP) after the
upgrade.

Revision ID: 20261202_session_kind
Revises: 0010
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_session_kind"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="member", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.drop_column("kind")
