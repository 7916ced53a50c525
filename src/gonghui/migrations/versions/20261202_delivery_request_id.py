"""baas: the id of the request that stored an event delivery

A delivery (a webhook sent, a function run by a trigger) is work a request started; its
logs and its function invocation carry that request's id, so an operator follows one
request from the access log to the deliveries it caused. Empty for events no request
caused (cron ticks) and for deliveries stored before this revision.

Revision ID: 20261202_delivery_request_id
Revises: 20261202_cache_feed
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_delivery_request_id"
down_revision: str | None = "20261202_cache_feed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("baas_delivery", schema=None) as batch_op:
        batch_op.drop_column("request_id")
