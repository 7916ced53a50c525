"""activities and benefits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities_activity",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("eligibility", sa.JSON(), nullable=False),
        sa.Column("limit_total", sa.Integer(), nullable=True),
        sa.Column("limit_per_day", sa.Integer(), nullable=True),
        sa.Column("budget_cents", sa.Integer(), nullable=True),
        sa.Column("budget_points", sa.Integer(), nullable=True),
        sa.Column("seed_commitment", sa.String(length=64), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column(
            "cloned_from_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cloned_from_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_activity_cloned_from_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts_user.id"],
            name=op.f("fk_activities_activity_created_by_accounts_user"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_activities_activity_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_activity")),
    )
    with op.batch_alter_table("activities_activity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activities_activity_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_activities_activity_status_starts", ["status", "starts_at"], unique=False
        )

    op.create_table(
        "activities_quiz_question",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_activities_quiz_question_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_quiz_question")),
    )
    with op.batch_alter_table("activities_quiz_question", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_quiz_question_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "activities_lottery_prize",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("initial_stock", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_lottery_prize_activity_id_activities_activity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_lottery_prize")),
        sa.UniqueConstraint(
            "activity_id", "position", name=op.f("uq_activities_lottery_prize_activity_id_position")
        ),
    )
    op.create_table(
        "benefits_budget",
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cents_total", sa.Integer(), nullable=True),
        sa.Column("cents_spent", sa.Integer(), nullable=False),
        sa.Column("points_total", sa.Integer(), nullable=True),
        sa.Column("points_spent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_benefits_budget_activity_id_activities_activity"),
        ),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_benefits_budget")),
    )
    op.create_table(
        "activities_counter",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_counter_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_counter_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_counter")),
        sa.UniqueConstraint(
            "activity_id",
            "membership_id",
            "scope",
            name=op.f("uq_activities_counter_activity_id_membership_id_scope"),
        ),
    )
    with op.batch_alter_table("activities_counter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_counter_membership_id"), ["membership_id"], unique=False
        )

    op.create_table(
        "activities_idempotent_response",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_idempotent_response_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_idempotent_response")),
        sa.UniqueConstraint(
            "membership_id", "key", name=op.f("uq_activities_idempotent_response_membership_id_key")
        ),
    )
    op.create_table(
        "activities_lottery_draw",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("draw_no", sa.Integer(), nullable=False),
        sa.Column("client_entropy", sa.String(length=64), nullable=False),
        sa.Column("roll", sa.String(length=64), nullable=False),
        sa.Column("picked_position", sa.Integer(), nullable=False),
        sa.Column("prize_position", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("benefit_ref", sa.String(length=64), nullable=True),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_lottery_draw_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_lottery_draw_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_lottery_draw")),
        sa.UniqueConstraint(
            "activity_id",
            "membership_id",
            "draw_no",
            name=op.f("uq_activities_lottery_draw_activity_id_membership_id_draw_no"),
        ),
    )
    with op.batch_alter_table("activities_lottery_draw", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_lottery_draw_activity_id"), ["activity_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_activities_lottery_draw_membership_id"), ["membership_id"], unique=False
        )

    op.create_table(
        "activities_quiz_attempt",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("question_ids", sa.JSON(), nullable=False),
        sa.Column("started_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_activities_quiz_attempt_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_activities_quiz_attempt_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities_quiz_attempt")),
    )
    with op.batch_alter_table("activities_quiz_attempt", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activities_quiz_attempt_board",
            ["activity_id", "score", "duration_ms"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_activities_quiz_attempt_membership_id"), ["membership_id"], unique=False
        )

    op.create_table(
        "benefits_points_account",
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_benefits_points_account_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("membership_id", name=op.f("pk_benefits_points_account")),
    )
    op.create_table(
        "benefits_prize",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("address_deadline", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("address_given_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("won_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_benefits_prize_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_benefits_prize_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefits_prize")),
    )
    with op.batch_alter_table("benefits_prize", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_benefits_prize_membership_id"), ["membership_id"], unique=False
        )

    op.create_table(
        "benefits_voucher",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value_cents", sa.Integer(), nullable=False),
        sa.Column("threshold_cents", sa.Integer(), nullable=False),
        sa.Column("valid_from", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_benefits_voucher_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_benefits_voucher_membership_id_members_membership"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefits_voucher")),
        sa.UniqueConstraint("code", name=op.f("uq_benefits_voucher_code")),
    )
    with op.batch_alter_table("benefits_voucher", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_benefits_voucher_membership_id"), ["membership_id"], unique=False
        )

    op.create_table(
        "benefits_ledger_entry",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "membership_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column(
            "voucher_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("prize_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_benefits_ledger_entry_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["members_membership.id"],
            name=op.f("fk_benefits_ledger_entry_membership_id_members_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["prize_id"],
            ["benefits_prize.id"],
            name=op.f("fk_benefits_ledger_entry_prize_id_benefits_prize"),
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"],
            ["benefits_voucher.id"],
            name=op.f("fk_benefits_ledger_entry_voucher_id_benefits_voucher"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefits_ledger_entry")),
    )
    with op.batch_alter_table("benefits_ledger_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_benefits_ledger_entry_activity", ["activity_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_benefits_ledger_entry_membership_id"), ["membership_id"], unique=False
        )
    _ledger_append_only()


def downgrade() -> None:
    _drop_ledger_append_only()
    with op.batch_alter_table("benefits_ledger_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benefits_ledger_entry_membership_id"))
        batch_op.drop_index("ix_benefits_ledger_entry_activity")

    op.drop_table("benefits_ledger_entry")
    with op.batch_alter_table("benefits_voucher", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benefits_voucher_membership_id"))

    op.drop_table("benefits_voucher")
    with op.batch_alter_table("benefits_prize", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benefits_prize_membership_id"))

    op.drop_table("benefits_prize")
    op.drop_table("benefits_points_account")
    with op.batch_alter_table("activities_quiz_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_quiz_attempt_membership_id"))
        batch_op.drop_index("ix_activities_quiz_attempt_board")

    op.drop_table("activities_quiz_attempt")
    with op.batch_alter_table("activities_lottery_draw", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_lottery_draw_membership_id"))
        batch_op.drop_index(batch_op.f("ix_activities_lottery_draw_activity_id"))

    op.drop_table("activities_lottery_draw")
    op.drop_table("activities_idempotent_response")
    with op.batch_alter_table("activities_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_counter_membership_id"))

    op.drop_table("activities_counter")
    op.drop_table("benefits_budget")
    op.drop_table("activities_lottery_prize")
    with op.batch_alter_table("activities_quiz_question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_quiz_question_org_id"))

    op.drop_table("activities_quiz_question")
    with op.batch_alter_table("activities_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_activity_status_starts")
        batch_op.drop_index(batch_op.f("ix_activities_activity_org_id"))

    op.drop_table("activities_activity")


def _ledger_append_only() -> None:
    # Like the audit log: the ledger is the reconciliation record, so the database itself
    # refuses UPDATE and DELETE on it.
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER benefits_ledger_entry_no_{verb.lower()} BEFORE {verb} "
                "ON benefits_ledger_entry "
                "BEGIN SELECT RAISE(ABORT, 'benefits ledger is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION benefits_ledger_entry_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'benefits ledger is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER benefits_ledger_entry_append_only BEFORE UPDATE OR DELETE "
        "ON benefits_ledger_entry FOR EACH ROW EXECUTE FUNCTION benefits_ledger_entry_append_only()"
    )


def _drop_ledger_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS benefits_ledger_entry_no_update")
        op.execute("DROP TRIGGER IF EXISTS benefits_ledger_entry_no_delete")
        return
    op.execute("DROP TRIGGER IF EXISTS benefits_ledger_entry_append_only ON benefits_ledger_entry")
    op.execute("DROP FUNCTION IF EXISTS benefits_ledger_entry_append_only()")
