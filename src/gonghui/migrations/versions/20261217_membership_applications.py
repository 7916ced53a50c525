"""members: requests to join, move and leave (入会, 转会, 退会); a roster entry's end; whether
an org accepts applications

Revision ID: 20261217_membership_applications
Revises: 20261220_team_invites
Create Date: 2026-12-17 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261217_membership_applications"
down_revision: str | None = "20261220_team_invites"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_PENDING = sa.text("status = 'pending'")
_TABLE = "members_membership_request"


def upgrade() -> None:
    with op.batch_alter_table("orgs_org", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "accepts_applications", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("left_at", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        _TABLE,
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("from_org_id", _ID, nullable=True),
        sa.Column("roster_entry_id", _ID, nullable=True),
        sa.Column("name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("name_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("id_number_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("employer", sa.String(length=200), nullable=True),
        sa.Column("job", sa.String(length=100), nullable=True),
        sa.Column("proof_path", sa.String(length=255), nullable=True),
        sa.Column("proof_content_type", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("decided_by", _ID, nullable=True),
        sa.Column("decided_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["accounts_user.id"], name=op.f(f"fk_{_TABLE}_decided_by_accounts_user")
        ),
        sa.ForeignKeyConstraint(
            ["from_org_id"], ["orgs_org.id"], name=op.f(f"fk_{_TABLE}_from_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f(f"fk_{_TABLE}_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["roster_entry_id"],
            ["members_roster_entry.id"],
            name=op.f(f"fk_{_TABLE}_roster_entry_id_members_roster_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["accounts_user.id"], name=op.f(f"fk_{_TABLE}_user_id_accounts_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_TABLE}")),
    )
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{_TABLE}_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f(f"ix_{_TABLE}_user_id"), ["user_id"], unique=False)
        # One open request per account, decided by the database rather than check-then-act.
        batch_op.create_index(
            "uq_members_membership_request_pending_user",
            ["user_id"],
            unique=True,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        # Staff list the pending requests of one kind in their subtree.
        batch_op.create_index(
            "ix_members_membership_request_status_kind_org",
            ["status", "kind", "org_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_members_membership_request_status_kind_org")
        batch_op.drop_index("uq_members_membership_request_pending_user")
        batch_op.drop_index(batch_op.f(f"ix_{_TABLE}_user_id"))
        batch_op.drop_index(batch_op.f(f"ix_{_TABLE}_org_id"))
    op.drop_table(_TABLE)
    with op.batch_alter_table("members_roster_entry", schema=None) as batch_op:
        batch_op.drop_column("left_at")
    with op.batch_alter_table("orgs_org", schema=None) as batch_op:
        batch_op.drop_column("accepts_applications")
