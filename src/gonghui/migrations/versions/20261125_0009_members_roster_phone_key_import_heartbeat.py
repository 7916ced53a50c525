"""members: a narrow phone key index on roster entries; import jobs' heartbeat

The roster's phone lookup index moves from the 32-byte phone blind index to a 32-bit prefix
of it (``phone_key``): the random 32-byte keys made every roster import rewrite most of
that index. Import jobs get ``heartbeat_at``, refreshed while an import runs, so that an
import whose process died can be told from one still running.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_ROWS = 5000


def _narrow_key(blind: bytes) -> int:
    # Frozen copy of gonghui.pii.narrow_key as of this revision.
    return int.from_bytes(bytes(blind[:4]), "big", signed=True)


def upgrade() -> None:
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_key", sa.Integer(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_members_roster_entry_phone_hash"))
    entries = sa.table(
        "members_roster_entry",
        sa.column("id", sa.Integer()),
        sa.column("phone_hash", sa.LargeBinary()),
        sa.column("phone_key", sa.Integer()),
    )
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(entries.c.id, entries.c.phone_hash)
            .where(entries.c.id > after, entries.c.phone_hash.is_not(None))
            .order_by(entries.c.id)
            .limit(_BACKFILL_ROWS)
        ).all()
        if not rows:
            break
        connection.execute(
            entries.update()
            .where(entries.c.id == sa.bindparam("entry_id"))
            .values(phone_key=sa.bindparam("key")),
            [{"entry_id": ident, "key": _narrow_key(h)} for ident, h in rows],
        )
        after = rows[-1][0]
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_members_roster_entry_phone_key"), ["phone_key"], unique=False
        )
    with op.batch_alter_table("members_import_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("heartbeat_at", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("members_import_job", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_roster_entry_phone_key"))
        batch_op.create_index(
            batch_op.f("ix_members_roster_entry_phone_hash"), ["phone_hash"], unique=False
        )
        batch_op.drop_column("phone_key")
