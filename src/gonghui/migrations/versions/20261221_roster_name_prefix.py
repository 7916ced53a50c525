"""members: an expression index on the first 4 bytes of a roster entry's name blind index

Staff search the roster by exact name; the index finds a name's candidates (confirmed by
the full ``name_hash``) without reading the subtree's rows. An expression index rather than
a column, so that every write (bulk imports included) keeps it up to date by itself.

Revision ID: 20261221_roster_name_prefix
Revises: 20261215_news
Create Date: 2026-12-04 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261221_roster_name_prefix"
down_revision: str | None = "20261215_news"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_members_roster_entry_name_prefix",
        "members_roster_entry",
        [sa.text("substr(name_hash, 1, 4)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_members_roster_entry_name_prefix", table_name="members_roster_entry")
