"""tasks: the task queue's table; deliveries become tasks

Background work (event deliveries, roster imports, cron ticks, housekeeping) is a row of
``tasks_task`` written with the transaction that asks for it, carried to workers by the
broker; ``tasks_worker`` lists the workers alive (their heartbeats). The deliveries' own
lease and due index go: their task holds both. Deliveries pending at the upgrade get
their task here, due when they were.

Revision ID: 20261202_task_queue
Revises: 20261202_delivery_request_id
Create Date: 2026-12-02 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261202_task_queue"
down_revision: str | None = "20261202_delivery_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tasks_task",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks_task")),
        sa.UniqueConstraint("key", name=op.f("uq_tasks_task_key")),
    )
    op.create_index("ix_tasks_task_due", "tasks_task", ["status", "run_at"], unique=False)
    op.create_table(
        "tasks_worker",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("started_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks_worker")),
    )

    args = (
        "json_object('delivery_id', d.id, 'app_id', d.app_id)"
        if op.get_bind().dialect.name == "sqlite"
        else "json_build_object('delivery_id', d.id, 'app_id', d.app_id)"
    )
    op.execute(
        "INSERT INTO tasks_task (name, args, status, attempts, max_attempts, run_at,"
        " request_id, created_at)"
        f" SELECT 'deliveries.send', {args}, 'queued', d.attempts,"
        " CASE WHEN t.max_attempts > d.attempts THEN t.max_attempts ELSE d.attempts + 1 END,"
        " d.next_attempt_at, d.request_id, d.created_at"
        " FROM baas_delivery d JOIN baas_trigger t ON t.id = d.trigger_id"
        " WHERE d.status = 'pending' ORDER BY d.id"
    )
    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_baas_delivery_due")
        batch_op.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked_until", gonghui.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_baas_delivery_due", ["status", "next_attempt_at"], unique=False)
    op.drop_table("tasks_worker")
    op.drop_index("ix_tasks_task_due", table_name="tasks_task")
    op.drop_table("tasks_task")
