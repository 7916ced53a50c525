"""openplatform: OAuth clients' webhook endpoints; deliveries of the triggers' engine name
a trigger or an endpoint

Revision ID: 20261210_oauth_webhooks
Revises: 20261211_open_scopes
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "20261210_oauth_webhooks"
down_revision: str | None = "20261211_open_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "openplatform_webhook_endpoint",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", _ID, nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", gonghui.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["openplatform_client.id"],
            name=op.f("fk_openplatform_webhook_endpoint_client_pk_openplatform_client"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openplatform_webhook_endpoint")),
    )
    with op.batch_alter_table("openplatform_webhook_endpoint", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_openplatform_webhook_endpoint_client_pk"), ["client_pk"], unique=False
        )

    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("endpoint_id", _ID, nullable=True))
        batch_op.alter_column("trigger_id", existing_type=_ID, nullable=True)
        batch_op.alter_column("app_id", existing_type=_ID, nullable=True)
        batch_op.create_index(batch_op.f("ix_baas_delivery_endpoint_id"), ["endpoint_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_baas_delivery_endpoint_id_openplatform_webhook_endpoint"),
            "openplatform_webhook_endpoint",
            ["endpoint_id"],
            ["id"],
        )


def downgrade() -> None:
    op.execute("DELETE FROM baas_delivery_attempt WHERE delivery_id IN "
               "(SELECT id FROM baas_delivery WHERE endpoint_id IS NOT NULL)")  # fmt: skip
    op.execute("DELETE FROM baas_delivery WHERE endpoint_id IS NOT NULL")
    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_baas_delivery_endpoint_id_openplatform_webhook_endpoint"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_baas_delivery_endpoint_id"))
        batch_op.alter_column("app_id", existing_type=_ID, nullable=False)
        batch_op.alter_column("trigger_id", existing_type=_ID, nullable=False)
        batch_op.drop_column("endpoint_id")

    with op.batch_alter_table("openplatform_webhook_endpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_openplatform_webhook_endpoint_client_pk"))
    op.drop_table("openplatform_webhook_endpoint")
