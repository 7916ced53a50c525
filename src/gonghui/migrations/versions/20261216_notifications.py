"""notifications: templates and delivery rules per org, the inbox and each channel's
deliveries, WeChat one-time subscriptions, daily caps' counts, activity reminders and
reviewed broadcasts

Revision ID: 20261216_notifications
Revises: 20261218_analytics
Create Date: 2026-12-16 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261216_notifications"
down_revision: str | None = "20261218_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications_broadcast",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "reviewed_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("review_note", sa.String(length=200), nullable=False),
        sa.Column("total", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "sent_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cursor", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_broadcast_created_by_accounts_user"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_notifications_broadcast_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_broadcast_reviewed_by_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_broadcast")),
    )
    with op.batch_alter_table("notifications_broadcast", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_broadcast_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "notifications_daily_count",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_daily_count_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_daily_count")),
        sa.UniqueConstraint(
            "user_id", "day", name=op.f("uq_notifications_daily_count_user_id_day")
        ),
    )
    op.create_table(
        "notifications_org_settings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "quiet_start_minute",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "quiet_end_minute", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "daily_cap", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_notifications_org_settings_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_org_settings")),
        sa.UniqueConstraint("org_id", name=op.f("uq_notifications_org_settings_org_id")),
    )
    op.create_table(
        "notifications_template",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column("wechat_template_id", sa.String(length=64), nullable=False),
        sa.Column("wechat_page", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_notifications_template_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_template_updated_by_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_template")),
        sa.UniqueConstraint(
            "org_id",
            "event",
            "channel",
            name=op.f("uq_notifications_template_org_id_event_channel"),
        ),
    )
    op.create_table(
        "notifications_notification",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["notifications_broadcast.id"],
            name=op.f("fk_notifications_notification_broadcast_id_notifications_broadcast"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_notifications_notification_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_notification_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_notification")),
    )
    with op.batch_alter_table("notifications_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_notification_broadcast_id"), ["broadcast_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_notification_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            "ix_notifications_notification_user_id_id", ["user_id", "id"], unique=False
        )

    op.create_table(
        "notifications_reminder",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities_activity.id"],
            name=op.f("fk_notifications_reminder_activity_id_activities_activity"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_notifications_reminder_org_id_orgs_org")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_reminder_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_reminder")),
        sa.UniqueConstraint(
            "activity_id", "user_id", name=op.f("uq_notifications_reminder_activity_id_user_id")
        ),
    )
    with op.batch_alter_table("notifications_reminder", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_reminder_starts_at"), ["starts_at"], unique=False
        )

    op.create_table(
        "notifications_delivery",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("send_after", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications_notification.id"],
            name=op.f("fk_notifications_delivery_notification_id_notifications_notification"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_delivery")),
        sa.UniqueConstraint(
            "notification_id",
            "channel",
            name=op.f("uq_notifications_delivery_notification_id_channel"),
        ),
    )
    with op.batch_alter_table("notifications_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_delivery_status"), ["status"], unique=False
        )

    op.create_table(
        "notifications_subscription",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("accepted_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["notifications_delivery.id"],
            name=op.f("fk_notifications_subscription_delivery_id_notifications_delivery"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_notifications_subscription_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications_subscription")),
    )
    with op.batch_alter_table("notifications_subscription", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_subscription_user_template", ["user_id", "template_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications_subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_subscription_user_template")

    op.drop_table("notifications_subscription")
    with op.batch_alter_table("notifications_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_delivery_status"))

    op.drop_table("notifications_delivery")
    with op.batch_alter_table("notifications_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_reminder_starts_at"))

    op.drop_table("notifications_reminder")
    with op.batch_alter_table("notifications_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_notification_user_id_id")
        batch_op.drop_index(batch_op.f("ix_notifications_notification_org_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_notification_broadcast_id"))

    op.drop_table("notifications_notification")
    op.drop_table("notifications_template")
    op.drop_table("notifications_org_settings")
    op.drop_table("notifications_daily_count")
    with op.batch_alter_table("notifications_broadcast", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_broadcast_org_id"))

    op.drop_table("notifications_broadcast")
