"""activities: competitions (entries and their members, panels, judges, declared
conflicts, scores, frozen results)

Revision ID: 20261208_competition
Revises: 20261207_bigint_columns
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261208_competition"
down_revision: str | None = "20261207_bigint_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities_competition_panel",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("closed_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_competition_panel_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs_org.id"],
            name=op.f("fk_activities_competition_panel_org_id_orgs_org"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_panel")),
    )
    with op.batch_alter_table("activities_competition_panel", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_panel_activity_id"), ["activity_id"], unique=False
        )

    op.create_table(
        "activities_competition_entry",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "captain_membership_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("team_name", sa.String(length=100), nullable=True),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("file_ids", sa.JSON(), nullable=False),
        sa.Column("submitted_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("panel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_competition_entry_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["captain_membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_competition_entry_captain_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs_org.id"],
            name=op.f("fk_activities_competition_entry_org_id_orgs_org"),
        ),
        sa.ForeignKeyConstraint(
            ["panel_id"],
            ["activities_competition_panel.id"],
            name=op.f("fk_activities_competition_entry_panel_id_activities_competition_panel"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_entry")),
        sa.UniqueConstraint(
            "activity_id", "code", name=op.f("uq_activities_competition_entry_activity_id_code")
        ),
    )
    with op.batch_alter_table("activities_competition_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_entry_activity_id"), ["activity_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_activities_competition_entry_panel_id"), ["panel_id"], unique=False
        )

    op.create_table(
        "activities_competition_judge",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("panel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["panel_id"],
            ["activities_competition_panel.id"],
            name=op.f("fk_activities_competition_judge_panel_id_activities_competition_panel"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_activities_competition_judge_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_judge")),
        sa.UniqueConstraint(
            "panel_id", "user_id", name=op.f("uq_activities_competition_judge_panel_id_user_id")
        ),
    )
    with op.batch_alter_table("activities_competition_judge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_judge_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "activities_competition_conflict",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("declared_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["activities_competition_entry.id"],
            name=op.f("fk_activities_competition_conflict_entry_id_activities_competition_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_activities_competition_conflict_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_conflict")),
        sa.UniqueConstraint(
            "entry_id", "user_id", name=op.f("uq_activities_competition_conflict_entry_id_user_id")
        ),
    )
    op.create_table(
        "activities_competition_entry_member",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_competition_entry_member_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["activities_competition_entry.id"],
            name=op.f(
                "fk_activities_competition_entry_member_entry_id_activities_competition_entry"
            ),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_competition_entry_member_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs_org.id"],
            name=op.f("fk_activities_competition_entry_member_org_id_orgs_org"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_entry_member")),
        sa.UniqueConstraint(
            "activity_id",
            "membership_id",
            name=op.f("uq_activities_competition_entry_member_activity_id_membership_id"),
        ),
    )
    with op.batch_alter_table("activities_competition_entry_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_entry_member_entry_id"),
            ["entry_id"],
            unique=False,
        )

    op.create_table(
        "activities_competition_result",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rank", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "score_micros", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("judges", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("published_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_competition_result_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["activities_competition_entry.id"],
            name=op.f("fk_activities_competition_result_entry_id_activities_competition_entry"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_result")),
        sa.UniqueConstraint(
            "activity_id",
            "entry_id",
            name=op.f("uq_activities_competition_result_activity_id_entry_id"),
        ),
    )
    with op.batch_alter_table("activities_competition_result", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_result_activity_id"),
            ["activity_id"],
            unique=False,
        )

    op.create_table(
        "activities_competition_score",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("panel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "judge_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["activities_competition_entry.id"],
            name=op.f("fk_activities_competition_score_entry_id_activities_competition_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["judge_user_id"],
            ["accounts_user.id"],
            name=op.f("fk_activities_competition_score_judge_user_id_accounts_user"),
        ),
        sa.ForeignKeyConstraint(
            ["panel_id"],
            ["activities_competition_panel.id"],
            name=op.f("fk_activities_competition_score_panel_id_activities_competition_panel"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_competition_score")),
        sa.UniqueConstraint(
            "entry_id",
            "judge_user_id",
            name=op.f("uq_activities_competition_score_entry_id_judge_user_id"),
        ),
    )
    with op.batch_alter_table("activities_competition_score", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_competition_score_panel_id"), ["panel_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("activities_competition_score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_score_panel_id"))

    op.drop_table("activities_competition_score")
    with op.batch_alter_table("activities_competition_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_result_activity_id"))

    op.drop_table("activities_competition_result")
    with op.batch_alter_table("activities_competition_entry_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_entry_member_entry_id"))

    op.drop_table("activities_competition_entry_member")
    op.drop_table("activities_competition_conflict")
    with op.batch_alter_table("activities_competition_judge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_judge_user_id"))

    op.drop_table("activities_competition_judge")
    with op.batch_alter_table("activities_competition_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_entry_panel_id"))
        batch_op.drop_index(batch_op.f("ix_activities_competition_entry_activity_id"))

    op.drop_table("activities_competition_entry")
    with op.batch_alter_table("activities_competition_panel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_competition_panel_activity_id"))

    op.drop_table("activities_competition_panel")
