"""baas: apps, tables, files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gonghui.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "baas_app",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("client_key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("server_key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_baas_app_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baas_app")),
        sa.UniqueConstraint("client_key_hash", name=op.f("uq_baas_app_client_key_hash")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_baas_app_org_id_name")),
        sa.UniqueConstraint("server_key_hash", name=op.f("uq_baas_app_server_key_hash")),
    )
    op.create_index(op.f("ix_baas_app_org_id"), "baas_app", ["org_id"], unique=False)
    op.create_table(
        "baas_table",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["baas_app.id"], name=op.f("fk_baas_table_app_id_baas_app")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs_org.id"], name=op.f("fk_baas_table_org_id_orgs_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baas_table")),
        sa.UniqueConstraint("app_id", "name", name=op.f("uq_baas_table_app_id_name")),
    )
    op.create_index(op.f("ix_baas_table_app_id"), "baas_table", ["app_id"], unique=False)
    op.create_table(
        "baas_field",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("table_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("column", sa.String(length=63), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("unique", sa.Boolean(), nullable=False),
        sa.Column("indexed", sa.Boolean(), nullable=False),
        sa.Column("default", sa.JSON(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("ref_table_id", _ID, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ref_table_id"], ["baas_table.id"], name=op.f("fk_baas_field_ref_table_id_baas_table")
        ),
        sa.ForeignKeyConstraint(
            ["table_id"], ["baas_table.id"], name=op.f("fk_baas_field_table_id_baas_table")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baas_field")),
        sa.UniqueConstraint("table_id", "name", name=op.f("uq_baas_field_table_id_name")),
    )
    op.create_index(op.f("ix_baas_field_table_id"), "baas_field", ["table_id"], unique=False)
    op.create_table(
        "baas_record_acl",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("table_id", _ID, nullable=False),
        sa.Column("record_id", _ID, nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["table_id"], ["baas_table.id"], name=op.f("fk_baas_record_acl_table_id_baas_table")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baas_record_acl")),
        sa.UniqueConstraint(
            "table_id",
            "record_id",
            "action",
            "user_id",
            name=op.f("uq_baas_record_acl_table_id_record_id_action_user_id"),
        ),
    )
    op.create_index(
        "ix_baas_record_acl_lookup", "baas_record_acl", ["table_id", "action", "record_id"]
    )
    op.create_table(
        "baas_file",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", _ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=255), nullable=True),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", gonghui.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["baas_app.id"], name=op.f("fk_baas_file_app_id_baas_app")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baas_file")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_baas_file_storage_key")),
    )
    op.create_index(op.f("ix_baas_file_app_id"), "baas_file", ["app_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_baas_file_app_id"), table_name="baas_file")
    op.drop_table("baas_file")
    op.drop_index("ix_baas_record_acl_lookup", table_name="baas_record_acl")
    op.drop_table("baas_record_acl")
    op.drop_index(op.f("ix_baas_field_table_id"), table_name="baas_field")
    op.drop_table("baas_field")
    op.drop_index(op.f("ix_baas_table_app_id"), table_name="baas_table")
    op.drop_table("baas_table")
    op.drop_index(op.f("ix_baas_app_org_id"), table_name="baas_app")
    op.drop_table("baas_app")
